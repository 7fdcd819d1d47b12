"""The ``rspamd:`` config section: defaults, values, and problems reported with their key path."""

from __future__ import annotations

import pytest

from mailpulse import parse_config
from mailpulse.exporter.config_rspamd import RspamdConfig, parse_rspamd
from mailpulse.exporter.configtools import ConfigError, Node
from mailpulse.exporter.features import RspamdLogs
from mailpulse.parsers.rspamd.vocab import ANTIVIRUS_SYMBOLS

MINIMAL = {"sources": [{"name": "rspamd", "type": "file", "format": "rspamd", "path": "/var/log/rspamd/rspamd.log"}]}


def problems(section: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, "rspamd": section})
    return info.value.problems


def test_defaults() -> None:
    """No rspamd section: no signing domains, no symbol counters, rspamd's antivirus symbols."""
    cfg = parse_config(MINIMAL).section(RspamdLogs())
    assert cfg == RspamdConfig()
    assert dict(cfg.antivirus) == ANTIVIRUS_SYMBOLS
    assert "greylist" in cfg.forced_labels()


def test_values() -> None:
    """Domains are lower-cased and deduplicated; the antivirus map replaces the default one."""
    section = {
        "signing_domains": ["Example.TEST.", "example.test", "other.test"],
        "symbols": ["BAYES_SPAM", "RBL_SPAMHAUS_SBL", "BAYES_SPAM"],
        "antivirus": {"CLAM_VIRUS": "clamav", "MY_AV": "myav"},
        "forced_modules": ["lab", "My Prefilter"],
    }
    cfg = parse_config({**MINIMAL, "rspamd": section}).section(RspamdLogs())
    assert cfg.signing_domains == ("example.test", "other.test")
    assert cfg.symbols == ("BAYES_SPAM", "RBL_SPAMHAUS_SBL")
    assert dict(cfg.antivirus) == {"CLAM_VIRUS": "clamav", "MY_AV": "myav"}
    assert {"lab", "my_prefilter"} <= cfg.forced_labels()


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"signing_domains": ["not a domain"]}, "rspamd.signing_domains[0]: 'not a domain' does not match"),
        ({"symbols": ["BAD SYMBOL"]}, "rspamd.symbols[0]: 'BAD SYMBOL' does not match"),
        ({"symbols": [f"S{i}" for i in range(201)]}, "rspamd.symbols: at most 200 symbols (got 201)"),
        ({"antivirus": {"CLAM_VIRUS": "Clam AV"}}, "rspamd.antivirus.CLAM_VIRUS: 'Clam AV' does not match"),
        ({"antivirus": {"bad symbol": "x"}}, "rspamd.antivirus.bad symbol: 'bad symbol' is not a symbol name"),
        ({"antivirus": ["CLAM_VIRUS"]}, "rspamd.antivirus: must be a mapping of strings"),
        ({"signing_domain": ["example.test"]}, "rspamd.signing_domain: unknown key"),
        ("yes", "rspamd: must be a mapping"),
    ],
)
def test_problems_name_the_key_path(section: object, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(section)), problems(section)


def test_parse_rspamd_directly() -> None:
    """The section parser records problems on the node, never raises."""
    found: list[str] = []
    cfg = parse_rspamd(Node({"signing_domains": 5}, "rspamd", found))
    assert cfg.signing_domains == ()
    assert found == ["rspamd.signing_domains: must be a list of strings (got int 5)"]
