"""The config file: every problem named by its key path, secrets from files or the environment."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mailpulse import load_config, main, parse_config
from mailpulse.exporter.cli import EX_CONFIG
from mailpulse.exporter.configtools import ConfigError, parse_duration, parse_listen
from mailpulse.exporter.features import PostfixQueue
from mailpulse.probes.feature import Probes

MINIMAL = {"sources": [{"name": "postfix", "path": "/var/log/mail.log"}]}


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_minimal_config_has_sane_defaults() -> None:
    """One source is enough; everything else has a default."""
    cfg = parse_config(MINIMAL)
    assert ("127.0.0.1", 9947) == (cfg.http.host, cfg.http.port)
    assert cfg.sources[0].formats == ("postfix",)
    assert cfg.sources[0].start_at == "end"
    assert cfg.section(PostfixQueue()).enabled is False
    assert cfg.section(Probes()) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"sources": [{"name": "x"}]}, "sources[0].path: required key is missing"),
        ({"sources": [{"name": "Bad Name", "path": "/x"}]}, "sources[0].name: 'Bad Name' does not match"),
        ({"sources": [{"name": "x", "path": "/x", "format": "exim"}]}, "sources[0].format: must be one of postfix"),
        ({"sources": [{"name": "x", "path": "/x", "typo": 1}]}, "sources[0].typo: unknown key"),
        ({**MINIMAL, "http": {"listen": "localhost"}}, "http.listen: must be host:port"),
        ({**MINIMAL, "http": {"listen": "127.0.0.1:99999"}}, "http.listen: port must be between 1 and 65535"),
        ({**MINIMAL, "log": {"level": "loud"}}, "log.level: must be one of debug, info, warning, error"),
        ({**MINIMAL, "postfix": {"queue": {"interval": "soon"}}}, "postfix.queue.interval: not a duration"),
        ({**MINIMAL, "postfix": {"reject_reasons": [{"pattern": "(", "reason": "rbl"}]}},
         "postfix.reject_reasons[0].pattern: not a valid regular expression"),
        ({**MINIMAL, "postfix": {"reject_reasons": [{"pattern": "x", "reason": "mine"}]}},
         "postfix.reject_reasons[0].reason: must be one of rbl"),
        ({"sources": [{"name": "a", "path": "/x"}, {"name": "a", "path": "/y"}]}, "sources[1].name: 'a' is used twice"),
        ({}, "sources: nothing to do"),
        ([1, 2], "(top level): must be a mapping"),
        ({**MINIMAL, "http": {"basic_auth": {"username": "prom"}}}, "http.basic_auth.password: required"),
    ],
)  # fmt: skip
def test_problems_name_the_key_path(data: object, expected: str) -> None:
    """A bad value is reported with where it is and what is wrong."""
    assert any(p.startswith(expected) for p in problems(data)), problems(data)


def test_all_problems_are_reported_at_once() -> None:
    """One check-config run lists every problem, not just the first."""
    found = problems({"sources": [{"name": "x"}, {"path": "/y"}], "log": {"format": "xml"}})
    assert len(found) == 3


def test_secret_from_file_env_and_insecure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords come from a 0600 file or an environment variable; a world-readable file is refused."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value\n")
    secret.chmod(0o600)
    cfg = parse_config({**MINIMAL, "http": {"basic_auth": {"username": "u", "password_file": str(secret)}}})
    assert cfg.http.basic_auth_password is not None
    assert "s3cret-value" == cfg.http.basic_auth_password.value
    assert "s3cret" not in repr(cfg)

    monkeypatch.setenv("MP_PW", "from-env")
    cfg = parse_config({**MINIMAL, "http": {"basic_auth": {"username": "u", "password_env": "MP_PW"}}})
    assert cfg.http.basic_auth_password is not None
    assert "from-env" == cfg.http.basic_auth_password.value

    secret.chmod(0o644)
    found = problems({**MINIMAL, "http": {"basic_auth": {"username": "u", "password_file": str(secret)}}})
    assert any("readable by group or others" in p for p in found)
    monkeypatch.delenv("MP_PW")
    found = problems({**MINIMAL, "http": {"basic_auth": {"username": "u", "password_env": "MP_PW"}}})
    assert any("MP_PW is not set" in p for p in found)


def test_durations_and_listen_addresses() -> None:
    """The small syntaxes users type."""
    assert 30.0 == parse_duration("30s")
    assert 300.0 == parse_duration("5m")
    assert 5400.0 == parse_duration("1.5h")
    assert 0.25 == parse_duration("250ms")
    assert 12.0 == parse_duration(12)
    with pytest.raises(ValueError):
        parse_duration("-1")
    assert ("::1", 9947) == parse_listen("[::1]:9947")
    assert ("", 9947) == parse_listen(":9947")


def test_yaml_errors_say_where(tmp_path: Path) -> None:
    """A YAML syntax error gives the line and column."""
    path = tmp_path / "bad.yaml"
    path.write_text("sources:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert "line" in info.value.problems[0]


def test_check_config_exit_codes(tmp_path: Path) -> None:
    """check-config exits 0 on a good file and 78 (EX_CONFIG) on a bad one, listing the problems."""
    good = tmp_path / "good.yaml"
    good.write_text("sources:\n  - name: postfix\n    path: /var/log/mail.log\n")
    out, err = io.StringIO(), io.StringIO()
    assert 0 == main(["check-config", "--config-only", "-c", str(good)], out=out, err=err)
    assert "OK" in out.getvalue()
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - name: postfix\n")
    out, err = io.StringIO(), io.StringIO()
    assert EX_CONFIG == main(["check-config", "-c", str(bad)], out=out, err=err)
    assert "sources[0].path: required key is missing" in err.getvalue()
    assert EX_CONFIG == main(["check-config", "-c", str(tmp_path / "missing.yaml")], out=out, err=err)


def test_the_systemd_unit_does_not_restart_on_a_config_error() -> None:
    """EX_CONFIG is listed in RestartPreventExitStatus, so a bad config does not restart-loop."""
    unit = (Path(__file__).resolve().parents[2] / "packaging" / "mailpulse.service").read_text()
    assert f"RestartPreventExitStatus={EX_CONFIG}" in unit
    assert os.path.basename("mailpulse.service")
