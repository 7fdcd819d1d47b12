"""Probe expectations on the receiver's Authentication-Results (the lab's forward route: SPF must pass for
the forwarder's SRS domain, DKIM must survive) and the route's source address."""

from __future__ import annotations

import copy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from mailpulse import parse_config
from mailpulse.exporter.configtools import ConfigError
from mailpulse.probes.config import ProbeConfig
from mailpulse.probes.feature import Probes
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.runner import _check_expectations
from mailpulse.probes.verdicts import judge, parse_headers

SRS = "SRS0=Aa/d=JW=sender.test=probe@srs.example.test"
# rspamd's milter at the outside receiver, as the lab writes it (mx.outside.test)
FORWARDED = (
    "Return-Path: <" + SRS + ">\r\n"
    "Authentication-Results: mx.outside.test;\r\n"
    "\tdkim=pass header.d=sender.test header.s=lab header.b=VjZGdigA;\r\n"
    '\tspf=pass (mx.outside.test: domain of "' + SRS + '" designates 127.0.0.4 as permitted sender) '
    'smtp.mailfrom="' + SRS + '";\r\n'
    "\tdmarc=pass (policy=none) header.from=sender.test\r\n"
    "Authentication-Results: mx.example.test;\r\n"
    "\tdkim=pass header.d=sender.test header.s=lab header.b=VjZGdigA;\r\n"
    "\tspf=pass (mx.example.test: domain of probe@sender.test designates 127.0.0.3 as permitted sender) "
    "smtp.mailfrom=probe@sender.test\r\n"
    "From: probe@sender.test\r\nSubject: x\r\n\r\nbody\r\n"
).encode()


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    secret, password, ca = tmp_path / "secret", tmp_path / "pw", tmp_path / "ca"
    for path, text in ((secret, "0123456789abcdef0123"), (password, "pw"), (ca, "x")):
        path.write_text(text + "\n")
        path.chmod(0o600)
    return {"probes": {
        "secret_file": str(secret),
        "routes": [{"name": "fwd", "host": "127.0.0.1", "port": 25, "tls": "starttls", "ca_file": str(ca),
                    "mail_from": "probe@sender.test", "source_address": "127.0.0.3"}],
        "targets": [{"name": "out", "address": "forward@example.test", "host": "127.0.0.1", "tls": "implicit",
                     "username": "probe@outside.test", "password_file": str(password),
                     "authserv_id": "mx.outside.test"}],
        "probes": [{"name": "p", "route": "fwd", "target": "out",
                    "expect": {"spf": "pass", "spf_domain": "srs.example.test", "dkim": "pass"}}],
    }}  # fmt: skip


def test_expect_and_source_address_parse(config: dict[str, Any]) -> None:
    """A no-auth STARTTLS route from a given source address, and a probe with expectations."""
    cfg = parse_config(config).section(Probes())
    assert cfg is not None
    (route,) = cfg.routes
    assert ("none", "127.0.0.3") == (route.auth, route.source_address)
    assert (("spf", "pass"), ("spf_domain", "srs.example.test"), ("dkim", "pass")) == cfg.probes[0].expect


@pytest.mark.parametrize(
    ("expect", "problem"),
    [
        ({"arc": "pass"}, "probes.probes[0].expect.arc: unknown expectation 'arc'"),
        ({"spf": "passed"}, "probes.probes[0].expect.spf: must be one of pass"),
    ],
)
def test_bad_expectations_name_their_key(config: dict[str, Any], expect: dict[str, str], problem: str) -> None:
    """An unknown method or result is refused at load, naming the key path."""
    data = copy.deepcopy(config)
    data["probes"]["probes"][0]["expect"] = expect
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert any(p.startswith(problem) for p in exc.value.problems), exc.value.problems


def _judged(raw: bytes, authserv_id: str | None) -> ProbeResult:
    msg: Message = parse_headers(raw)
    verdict = judge(msg, authserv_id)
    result = ProbeResult("p", "fwd", "out", outcome="delivered")
    result.dkim, result.spf, result.dmarc = (verdict.auth.get(m) for m in ("dkim", "spf", "dmarc"))
    result.spf_domain = verdict.spf_domain
    return result


def _probe(**expect: str) -> ProbeConfig:
    return ProbeConfig("p", "fwd", "out", 60.0, 0.0, 60.0, 600.0, expect=tuple(expect.items()))


def test_spf_domain_is_the_srs_domain_of_the_trusted_receiver() -> None:
    """The receiver's (mx.outside.test) SPF result is for the SRS domain; the earlier hop's for the sender."""
    assert "srs.example.test" == _judged(FORWARDED, "mx.outside.test").spf_domain
    assert "sender.test" == _judged(FORWARDED, "mx.example.test").spf_domain


def test_met_expectations_keep_the_run_delivered() -> None:
    """SPF passed for the SRS domain and DKIM survived: delivered."""
    result = _judged(FORWARDED, "mx.outside.test")
    _check_expectations(result, _probe(spf="pass", spf_domain="srs.example.test", dkim="pass"))
    assert ("delivered", None) == (result.outcome, result.reason)


def test_unmet_expectation_fails_at_deliver_with_a_bounded_reason() -> None:
    """Without SRS the receiver saw SPF for the original sender: the run fails (deliver, auth_unexpected),
    and the error says what the receiver said."""
    unrewritten = FORWARDED.replace(b'smtp.mailfrom="' + SRS.encode() + b'"', b"smtp.mailfrom=probe@sender.test")
    result = _judged(unrewritten, "mx.outside.test")
    _check_expectations(result, _probe(spf="pass", spf_domain="srs.example.test", dkim="pass"))
    assert ("failed", "deliver", "auth_unexpected") == (result.outcome, result.stage, result.reason)
    assert result.error is not None
    assert "spf_domain=sender.test (expected srs.example.test)" in result.error
    broken = _judged(FORWARDED.replace(b"\tdkim=pass header.d=sender.test header.s=lab header.b=VjZGdigA;\r\n\tspf",
                                       b"\tdkim=fail header.d=sender.test header.s=lab;\r\n\tspf", 1),
                     "mx.outside.test")  # fmt: skip
    _check_expectations(broken, _probe(dkim="pass"))
    assert "dkim=fail (expected pass)" in (broken.error or "")
