"""The posture checks against real DNS and servers: knotd serving a DNSSEC-signed zone, unbound
validating it (the AD bit), SMTP servers with and without STARTTLS, an HTTPS server for MTA-STS, and
blocklist zones (the built-in Spamhaus table's zones served locally). Every lab domain and sender fails
exactly the check its definition in lab/posture/zones.py names, with that reason, and nothing else."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.posture import PostureLab, zones
from mailpulse import main, parse_config
from mailpulse.exporter.features.posture.config import PostureConfig
from mailpulse.exporter.features.posture.feature import Posture
from mailpulse.exporter.features.posture.result import CHECKS, CheckResult
from mailpulse.exporter.features.posture.service import run_once
from tests.helpers import free_port, scrape, value, wait_for

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plab() -> Iterator[PostureLab]:
    missing = [b for b in ("knotd", "unbound", "openssl", "opendkim-genkey", "rspamadm") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"the posture lab needs {', '.join(missing)} (Debian packages knot, unbound, opendkim-tools, "
                    "rspamd)")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="mplab-posture-"))
    lab = PostureLab.up(root)
    try:
        yield lab
    finally:
        lab.down()
        if not os.environ.get("MAILPULSE_LAB_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def section(lab: PostureLab, **overrides: Any) -> PostureConfig:
    feature = Posture()
    config = parse_config({"posture": lab.config(**overrides)}, with_features=[feature])
    parsed = config.section(feature)
    assert parsed is not None
    return parsed


@pytest.fixture(scope="module")
def results(plab: PostureLab) -> list[CheckResult]:
    return asyncio.run(run_once(section(plab)))


def failures(results: list[CheckResult], **where: str) -> set[tuple[str, str]]:
    return {(r.target.check, r.reason) for r in results
            if not r.ok and all(getattr(r.target, k) == v for k, v in where.items())}  # fmt: skip


@pytest.mark.parametrize("domain", zones.DOMAINS, ids=[d.name for d in zones.DOMAINS])
def test_each_domain_fails_exactly_its_one_check(results: list[CheckResult], domain: zones.Domain) -> None:
    """The good domain (and spf-mx9, whose 27 MX address lookups do not count) passes every check; each
    broken domain fails exactly one, with the reason its defect calls for."""
    expected = {domain.expect} if domain.expect else set()
    assert expected == failures(results, domain=domain.fqdn)
    checked = {r.target.check for r in results if r.target.domain == domain.fqdn}
    assert {"spf", "dkim", "dmarc", "mta_sts", "tlsrpt", "mx_tls"} <= checked


@pytest.mark.parametrize("sender", zones.SENDERS, ids=[s.name for s in zones.SENDERS])
def test_each_sender_fails_its_rdns_and_zones(results: list[CheckResult], sender: zones.Sender) -> None:
    """Reverse DNS and every blocklist zone, per sender: Spamhaus's 127.255.255.254 and the lab's
    wildcard error zone are errors (never listings), the dead zone fails its test point, 127.0.0.4 on zen
    is an XBL listing, and an unknown code is reported as such, not as a listing."""
    rdns = failures(results, check="rdns", item=sender.name)
    assert ({sender.expect} if sender.expect else set()) == rdns
    zone_failures = {(r.target.zone, r.reason) for r in results
                     if r.target.check == "dnsbl" and r.target.item == sender.name and not r.ok}  # fmt: skip
    assert set(sender.zones) == zone_failures


def test_good_domain_details(results: list[CheckResult]) -> None:
    """What the good domain's checks measured: SPF lookups, both DKIM keys (OpenDKIM RSA and rspamd
    ed25519) match their key files, DMARC reject with an authorized external rua, an enforcing MTA-STS
    policy, TLS 1.3 with a certificate 30 days from expiry, and a DNSSEC-validated DANE-EE match."""
    good = {(r.target.check, r.target.item): r for r in results if r.target.domain == "good.posture.test"}
    assert {"lookups": 2.0, "void_lookups": 0.0} == good[("spf", "")].values
    assert 1.0 == good[("dkim", "sel1")].values["key_match"] == good[("dkim", "ed1")].values["key_match"]
    assert ("rsa", "ed25519") == (good[("dkim", "sel1")].infos["key_type"], good[("dkim", "ed1")].infos["key_type"])
    assert {"p": "reject", "sp": "reject", "np": "reject"} == good[("dmarc", "")].infos
    assert "enforce" == good[("mta_sts", "")].infos["mode"]
    tls = good[("mx_tls", "mx.posture.test")]
    assert "TLSv1.3" == tls.infos["version"]
    assert 29 * 86400 < tls.values["not_after"] - time.time() < 31 * 86400
    dane = good[("dane", "mx.posture.test")]
    assert {"validated": 1.0, "records": 1.0, "match": 1.0} == dane.values
    mx9 = next(r for r in results if r.target.domain == "spf-mx9.posture.test" and r.target.check == "spf")
    assert 9.0 == mx9.values["lookups"]


def test_dqs_key_queries_dqs_zones_and_never_shows(plab: PostureLab, tmp_path: Path) -> None:
    """With a DQS key the Spamhaus zones are queried as <key>.zen.dq.spamhaus.net (served by the lab with
    the same codes), with the same verdicts; the key appears in no result."""
    key_file = tmp_path / "dqs.key"
    key_file.write_text(zones.DQS_KEY + "\n")
    key_file.chmod(0o600)
    raw = plab.config()
    raw["dnsbl"] = {"zones": ["spamhaus-zen"], "dqs_key_file": str(key_file)}
    feature = Posture()
    config = parse_config({"posture": raw}, with_features=[feature]).section(feature)
    assert config is not None
    got = asyncio.run(run_once(config, ["dnsbl"]))
    verdicts = {r.target.item: r.reason for r in got}
    assert {"bl-listed": "listed", "bl-error": "zone_error", "bl-unknown": "unknown_code"} == {
        k: v for k, v in verdicts.items() if v != "ok"
    }
    assert zones.DQS_KEY not in json.dumps([r.as_json() for r in got])


def test_a_zone_that_never_answers_delays_no_other(plab: PostureLab) -> None:
    """A blocklist whose server never answers times out (dns_timeout, not a listing) while the other
    zones' and checks' results are all in before its first query has timed out (3 s)."""
    raw = plab.config()
    raw["dnsbl"]["custom"].append({"name": "lab-slow", "zone": "slowbl.test"})
    raw["checks"] = {"dnsbl": {"timeout": "10s"}}
    raw["dns_timeout"] = "3s"
    feature = Posture()
    config = parse_config({"posture": raw}, with_features=[feature]).section(feature)
    assert config is not None
    started = time.monotonic()
    finished: dict[tuple[str, str, str, str], float] = {}
    got = asyncio.run(run_once(config, on_result=lambda r: finished.setdefault(r.target.key, time.monotonic())))
    slow = [r for r in got if r.target.zone == "lab-slow"]
    assert len(slow) == len(zones.SENDERS)
    assert {("dns_timeout", False)} == {(r.reason, r.up) for r in slow}
    others = {r.target.label(): finished[r.target.key] - started for r in got if r.target.zone != "lab-slow"}
    slowest = max(others, key=others.__getitem__)
    assert others[slowest] < 3.0, (slowest, others[slowest])  # each query's limit is 3 s
    assert min(finished[r.target.key] - started for r in slow) >= 3.0


def test_posture_command_table_json_and_exit_status(plab: PostureLab, tmp_path: Path) -> None:
    """`mailpulse posture --once` prints a table and exits 1 when a check fails; --json gives the same
    verdicts as JSON; only the good domain's checks exit 0."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"posture": plab.config()}))
    out, err = io.StringIO(), io.StringIO()
    assert 1 == main(["posture", "--once", "-c", str(path)], out=out, err=err), err.getvalue()
    table = out.getvalue()
    assert "dkim-mismatch.posture.test" in table
    assert "key_mismatch" in table
    out = io.StringIO()
    assert 1 == main(["posture", "--once", "--json", "-c", str(path)], out=out, err=err)
    doc = json.loads(out.getvalue())
    assert doc["ok"] is False
    assert {"check": "dmarc", "reason": "policy_none"}.items() <= next(
        r for r in doc["results"] if r["domain"] == "dmarc-none.posture.test" and r["check"] == "dmarc"
    ).items()
    raw = plab.config()
    raw["domains"] = [d for d in raw["domains"] if d["name"] == "good.posture.test"]
    raw["senders"] = [s for s in raw["senders"] if s["name"] == "out-good"]
    raw["dnsbl"] = {"zones": ["spamhaus-zen", "spamhaus-dbl"]}
    path.write_text(yaml.safe_dump({"posture": raw}))
    out = io.StringIO()
    assert 0 == main(["posture", "--once", "-c", str(path)], out=out, err=err), out.getvalue()


def test_daemon_exports_the_posture_families(plab: PostureLab, tmp_path: Path) -> None:
    """`mailpulse run` with a posture section schedules the checks and /metrics shows their verdicts and
    measurements with config-named labels."""
    port = free_port()
    path = tmp_path / "config.yaml"
    raw = plab.config()
    raw["checks"] = {check: {"interval": "4s"} for check in CHECKS}  # first runs spread over one interval
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "http": {"listen": f"127.0.0.1:{port}"},
                                    "posture": raw}))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        targets = len(asyncio.run(run_once(section(plab))))
        wait_for(lambda: value(scrape(port), "mailpulse_posture_check_runs_total") >= 2 * targets, timeout=40)
        s = scrape(port)
        assert 0 == value(s, "mailpulse_posture_check_ok", check="dkim", domain="dkim-mismatch.posture.test",
                          reason="key_mismatch")  # fmt: skip
        assert 1 == value(s, "mailpulse_posture_check_ok", check="dkim", domain="good.posture.test", item="sel1")
        assert 0 == value(s, "mailpulse_posture_dkim_key_match", domain="dkim-mismatch.posture.test")
        assert 1 == value(s, "mailpulse_posture_dkim_key_match", domain="good.posture.test", selector="ed1")
        assert 11 == value(s, "mailpulse_posture_spf_dns_lookups", domain="spf-lookups.posture.test")
        assert 3 == value(s, "mailpulse_posture_spf_void_lookups", domain="spf-voids.posture.test")
        assert 1 == value(s, "mailpulse_posture_dmarc_policy_info", domain="dmarc-none.posture.test", p="none")
        assert 1 == value(s, "mailpulse_posture_tlsa_match", domain="good.posture.test")
        assert 0 == value(s, "mailpulse_posture_tlsa_dnssec_validated", domain="dane-insecure.posture.test")
        assert 1 == value(s, "mailpulse_posture_dnsbl_listed", zone="spamhaus-zen", ip="bl-listed")
        assert 1 <= value(
            s, "mailpulse_posture_dnsbl_errors_total", zone="spamhaus-zen", **{"class": "public_resolver"}
        )
        assert 604800 == value(s, "mailpulse_posture_mta_sts_max_age_seconds", domain="good.posture.test")
        assert time.time() + 86400 < value(s, "mailpulse_posture_mx_cert_not_after_timestamp_seconds",
                                           domain="mx-expiring.posture.test") < time.time() + 3 * 86400  # fmt: skip
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert 0 == proc.returncode, out.decode()[-2000:]


ORACLE = """
import json, sys
import dns.nameserver
from checkdmarc.spf import check_spf
port = int(sys.argv[1])
out = {}
for d in sys.argv[2:]:
    r = check_spf(d, nameservers=[dns.nameserver.Do53Nameserver("127.0.0.1", port)], timeout=2.0)
    out[d] = [r.get("valid"), r.get("dns_lookups"), r.get("void_dns_lookups")]
print(json.dumps(out))
"""


def test_spf_counts_against_checkdmarc(plab: PostureLab, results: list[CheckResult]) -> None:
    """checkdmarc as an oracle (never a dependency): set MAILPULSE_CHECKDMARC_PYTHON to a Python that has it
    (e.g. a throwaway venv). Lookup counts agree on every lab domain it can count; void lookups agree except
    where checkdmarc does not count an `exists:` term whose A query found nothing (RFC 7208 §4.6.4 counts
    every term whose query returns NXDOMAIN or no answers; spf-voids has one)."""
    python = os.environ.get("MAILPULSE_CHECKDMARC_PYTHON")
    if not python:
        pytest.skip("set MAILPULSE_CHECKDMARC_PYTHON to a python with checkdmarc installed")
    names = ["good", "spf-mx9", "spf-lookups", "spf-voids", "dmarc-none"]
    proc = subprocess.run([python, "-c", ORACLE, str(plab.dns_port), *(f"{n}.{zones.ZONE}" for n in names)],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    oracle = json.loads(proc.stdout)
    ours = {r.target.domain: r.values for r in results if r.target.check == "spf"}
    for name in names:
        domain = f"{name}.{zones.ZONE}"
        _valid, lookups, voids = oracle[domain]
        assert lookups == ours[domain]["lookups"], domain
        expected_voids = voids + 1 if name == "spf-voids" else voids
        assert expected_voids == ours[domain]["void_lookups"], domain
