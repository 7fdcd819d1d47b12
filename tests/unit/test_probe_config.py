"""The probes: section: a full config parses into typed objects; every mistake is reported with its key path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mailpulse import parse_config
from mailpulse.exporter.configtools import ConfigError
from mailpulse.probes.feature import Probes


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, text in (("secret", "0123456789abcdef0123456789abcdef"), ("password", "pw"), ("ca", "x"),
                       ("cert", "x"), ("key", "x"), ("dkim", "x"), ("token", "tok")):  # fmt: skip
        path = tmp_path / name
        path.write_text(text + "\n")
        path.chmod(0o600)
        out[name] = str(path)
    return out


def base(files: dict[str, str]) -> dict[str, Any]:
    return {
        "probes": {
            "secret_file": files["secret"],
            "dns": {"nameservers": ["127.0.0.1"], "port": 5353},
            "routes": [
                {"name": "sub", "host": "127.0.0.1", "port": 587, "tls": "starttls", "ca_file": files["ca"],
                 "username": "probe@example.test", "password_file": files["password"],
                 "mail_from": "probe@example.test"},
                {"name": "relay", "host": "127.0.0.1", "port": 2525, "tls": "starttls", "client_cert": files["cert"],
                 "client_key": files["key"], "mail_from": "probe@example.test",
                 "dkim": {"domain": "example.test", "selector": "probe", "key_file": files["dkim"]}},
                {"name": "gmail-out", "host": "smtp.gmail.com", "port": 465, "tls": "implicit",
                 "username": "me@gmail.com", "xoauth2": {"token_command": ["get-token", "gmail"]},
                 "mail_from": "me@gmail.com"},
            ],
            "targets": [
                {"name": "remote", "kind": "imap", "address": "probe@remote.test", "host": "127.0.0.1",
                 "port": 993, "tls": "implicit", "username": "probe@remote.test",
                 "password_file": files["password"], "provider": "dovecot"},
                {"name": "gmail", "address": "me@gmail.com", "host": "imap.gmail.com", "tls": "implicit",
                 "username": "me@gmail.com", "xoauth2": {"token_file": files["token"]}, "provider": "gmail",
                 "authserv_id": "mx.google.com"},
            ],
            "probes": [
                {"name": "sub-remote", "route": "sub", "target": "remote", "interval": "5m", "jitter": "30s",
                 "deadline": "2m", "late_window": "1h"},
                {"name": "relay-gmail", "route": "relay", "target": "gmail", "headers": {"X-Lab-Score": "8"},
                 "body_lines": ["hello"]},
            ],
        }
    }  # fmt: skip


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.problems


def test_full_config_parses(files: dict[str, str]) -> None:
    """Routes, targets and probes come out typed, with defaults and provider-specific cleanup."""
    cfg = parse_config(base(files)).section(Probes())
    assert cfg is not None
    assert cfg.secret is not None
    assert cfg.secret.value.startswith("0123")
    assert (("127.0.0.1",), 5353) == (cfg.dns.nameservers, cfg.dns.port)
    sub, relay, gmail_out = cfg.routes
    assert ("password", "client_cert", "xoauth2") == (sub.auth, relay.auth, gmail_out.auth)
    assert relay.dkim is not None
    assert relay.dkim.selector == "probe"
    remote, gmail = cfg.targets
    assert ("delete", "trash") == (remote.cleanup, gmail.cleanup)
    assert gmail.port == 993
    assert gmail.folders == ("INBOX", "\\Junk")
    p1, p2 = cfg.probes
    assert (300.0, 30.0, 120.0, 3600.0) == (p1.interval, p1.jitter, p1.deadline, p1.late_window)
    assert (("X-Lab-Score", "8"),) == p2.headers


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("routes", 0, "tls"), "opportunistic", "probes.routes[0].tls: must be one of implicit, starttls"),
        (("routes", 0, "tls"), None, "probes.routes[0].tls:"),
        (("probes", 0, "route"), "nope", "probes.probes[0].route: unknown route 'nope' (known: sub, relay, "
                                         "gmail-out)"),
        (("probes", 1, "target"), "nope", "probes.probes[1].target: unknown target 'nope'"),
        (("probes", 0, "jitter"), "10m", "probes.probes[0].jitter: must be smaller than interval"),
        (("probes", 0, "late_window"), "1m", "probes.probes[0].late_window: must not be shorter than deadline"),
        (("routes", 1, "client_key"), None, "probes.routes[1].client_key: client_cert and client_key go together"),
        (("routes", 0, "ca_file"), "/no/such/ca.pem", "probes.routes[0].ca_file: /no/such/ca.pem: no such file"),
        (("targets", 0, "provider"), "aol", "probes.targets[0].provider: must be one of"),
        (("targets", 0, "username"), None, "probes.targets[0].username:"),
        (("routes", 0, "mail_from"), "nobody", "probes.routes[0].mail_from: must be an address"),
        (("probes", 1, "headers"), {"Message-ID": "<x@y>"}, "probes.probes[1].headers.Message-ID: 'Message-ID' is "
                                                            "not a header name a probe may set"),
        (("targets", 0, "watch"), "push", "probes.targets[0].watch: must be one of idle, poll"),
        (("routes", 2, "xoauth2"), {}, "probes.routes[2].xoauth2: set exactly one of token_file and token_command"),
    ],
)  # fmt: skip
def test_mistakes_name_their_key_path(files: dict[str, str], path: tuple[Any, ...], value: Any, expected: str) -> None:
    """Each mistake yields one problem line starting with the full key path."""
    data = copy.deepcopy(base(files))
    node: Any = data["probes"]
    for key in path[:-1]:
        node = node[key]
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_duplicate_names_and_password_plus_oauth(files: dict[str, str]) -> None:
    """A name used twice and a login with both a password and xoauth2 are both reported."""
    data = copy.deepcopy(base(files))
    data["probes"]["probes"][1]["name"] = "sub-remote"
    data["probes"]["targets"][0]["xoauth2"] = {"token_file": files["token"]}
    found = problems(data)
    assert "probes.probes[1].name: 'sub-remote' is used twice" in found
    assert "probes.targets[0].xoauth2: set either a password or xoauth2, not both" in found


def test_secret_is_required_and_long_enough(files: dict[str, str], tmp_path: Path) -> None:
    """Without secret_file/secret_env, or with a short key, the config is refused."""
    data = copy.deepcopy(base(files))
    del data["probes"]["secret_file"]
    assert "probes.secret: required: set secret_file or secret_env" in problems(data)
    short = tmp_path / "short"
    short.write_text("abc\n")
    short.chmod(0o600)
    data["probes"]["secret_file"] = str(short)
    assert "probes.secret: the HMAC key must have at least 16 characters" in problems(data)


def test_unknown_keys_are_typos(files: dict[str, str]) -> None:
    """A misspelt key inside a route is reported, not ignored."""
    data = copy.deepcopy(base(files))
    data["probes"]["routes"][0]["pasword_file"] = files["password"]
    assert any(p.startswith("probes.routes[0].pasword_file: unknown key") for p in problems(data))
