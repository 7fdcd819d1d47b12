"""docs/config.md is generated from the config readers: every key read is described, every description
names a key that is read, the committed file is fresh, and the complete example it is built from is valid."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import assert_type

import pytest
import yaml

from mailpulse import features, load_config, main
from mailpulse.exporter import docsgen
from mailpulse.exporter.config import parse_config
from mailpulse.exporter.configtools import Node, Schema
from mailpulse.exporter.feature import Feature

# Every file the example names lives here; the test puts them under a temporary directory.
SECRETS_DIR = "/etc/mailpulse/"
ENV = {"MAILPULSE_IMAP_PASSWORD": "imap-password-from-env"}


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docs/config.example.yaml with its files created (mode 0600) and its environment set."""
    text = docsgen.EXAMPLE.read_text()
    for name in sorted(set(re.findall(re.escape(SECRETS_DIR) + r"([\w.-]+)", text))):
        path = tmp_path / name
        path.write_text("a-secret-of-more-than-sixteen-characters\n")
        path.chmod(0o600)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    config = tmp_path / "config.yaml"
    config.write_text(text.replace(SECRETS_DIR, f"{tmp_path}/"))
    return config


def test_config_reference_is_up_to_date() -> None:
    """The tables of docs/config.md are what the readers and their descriptions say; regenerate them with
    python -m mailpulse.docsgen."""
    feats = features()
    assert docsgen.CONFIG.read_text() == docsgen.config_doc(docsgen.config_schema(feats), feats)


def test_every_key_read_is_described_and_every_description_is_read() -> None:
    """A key a reader reads has a description in its section's module, and no description is left over."""
    feats = features()
    assert [] == docsgen.config_problems(docsgen.config_schema(feats), feats)


def test_every_section_has_its_table_kernel_first() -> None:
    """docs/config.md has the kernel's table, then one per feature section, titled by the feature."""
    text = docsgen.CONFIG.read_text()
    titles = [docsgen.KERNEL_TITLE] + [f"{f.title} (`{'.'.join(f.section)}`)" for f in features() if f.section]
    positions = [text.find(f"\n## {title}\n") for title in titles]
    assert all(p > 0 for p in positions), positions
    assert sorted(positions) == positions


def test_example_config_is_valid(example: Path) -> None:
    """The complete example passes `mailpulse check-config --config-only` with every feature active (its
    paths and hosts are an example's: the machine checks would rightly fail here)."""
    out, err = io.StringIO(), io.StringIO()
    assert 0 == main(["check-config", "--config-only", "-c", str(example)], out=out, err=err), err.getvalue()
    assert "features: postfix, queue, rspamd, probes, posture" in out.getvalue()
    config = load_config(str(example))
    assert {"file", "journald"} == {s.type for s in config.sources}


def test_example_exercises_every_route_and_target_form(example: Path) -> None:
    """The example shows each way to authenticate a route, both TLS modes, DKIM signing, and every target kind."""
    feats = features()
    probes = load_config(str(example), feats).section(next(f for f in feats if f.name == "probes"))
    assert probes is not None
    assert {"password", "xoauth2", "client_cert"} <= {r.auth for r in probes.routes}
    assert {"implicit", "starttls"} == {r.tls for r in probes.routes}
    assert any(r.dkim is not None for r in probes.routes)
    assert any(r.oauth2 is not None and r.oauth2.token_file for r in probes.routes)
    assert any(r.oauth2 is not None and r.oauth2.token_command for r in probes.routes)
    assert {"imap", "autoresponder"} == {t.kind for t in probes.targets}
    assert any(t.oauth2 is not None for t in probes.targets)
    assert any(t.password is not None and t.password.source.startswith("$") for t in probes.targets)


def test_recording_changes_nothing(example: Path) -> None:
    """Reading with a schema gives the same config as reading without one."""
    data = yaml.safe_load(example.read_text())
    schema = Schema()
    assert parse_config(data, features(), schema=schema) == parse_config(data, features())
    assert schema.keys


def test_schema_names_list_items_and_merges_their_defaults() -> None:
    """Items of a list are one key (`routes[].port`); a default computed per item keeps each value."""
    schema = Schema()
    node = Node(
        {"routes": [{"tls": "implicit", "password_env": "X"}, {"tls": "starttls"}]}, "probes", [], schema=schema
    )

    def route(item: Node) -> None:
        tls = item.string("tls", choices=("implicit", "starttls"))
        item.integer("port", 993 if tls == "implicit" else 143, minimum=1)
        item.secret("password", required=False)

    node.list_of("routes", route)
    assert ["probes.routes", "probes.routes[].tls", "probes.routes[].port", "probes.routes[].password"] == list(
        schema.keys
    )
    port = schema.keys["probes.routes[].port"]
    assert ([993, 143], 1, False) == (port.defaults, port.minimum, port.required)
    assert ("implicit", "starttls") == schema.keys["probes.routes[].tls"].choices
    assert schema.keys["probes.routes[].tls"].required
    assert "| `probes.routes[].password` | secret: `password_file`, `password_env` or `password` | none |" in (
        docsgen._config_row(schema.keys["probes.routes[].password"], "x")
    )


def test_readers_are_typed_by_their_default() -> None:
    """A required key reads as its type, a key with a None default as optional (mypy checks the types)."""
    node = Node({"s": "x", "n": 3, "d": "5m", "b": True, "l": "one", "m": {"k": 1}}, "", [])
    assert "x" == assert_type(node.string("s"), str)
    assert None is assert_type(node.string("absent", None), str | None)
    assert 3 == assert_type(node.integer("n"), int)
    assert 300.0 == assert_type(node.duration("d"), float)
    assert assert_type(node.boolean("b"), bool)
    assert ["one"] == assert_type(node.str_list("l"), list[str])
    assert None is assert_type(node.str_list("absent_list", None), list[str] | None)
    assert {"k": "1"} == assert_type(node.str_map("m"), dict[str, str])
    assert None is assert_type(node.path_str("absent_path", None), str | None)
    assert [] == node.problems


def test_without_a_schema_nothing_is_recorded() -> None:
    """Recording is off unless a schema is given, for children and list items too."""
    node = Node({"a": {"b": 1}, "l": [{"c": "x"}]}, "", [])
    assert node.child("a").schema is None
    assert ["x"] == node.list_of("l", lambda item: item.string("c"))


class _Demo(Feature[str]):
    name = "demo"
    title = "Demo"
    section = ("demo",)
    standalone = True
    key_docs = {"demo": "The demo section.", "demo.gone": "A key the reader no longer reads."}

    def parse_config(self, node: Node) -> str:
        return node.string("new", "x")

    def absent(self) -> str:
        return ""


def test_missing_and_stray_descriptions_are_problems(tmp_path: Path) -> None:
    """A key read without a description, and a description of a key nobody reads, both fail the check."""
    example = tmp_path / "example.yaml"
    example.write_text("demo: {new: y}\n")
    feats = [_Demo()]
    found = [p for p in docsgen.config_problems(docsgen.config_schema(feats, example), feats) if p.startswith("demo")]
    docs = f"{_Demo.__module__}._Demo.key_docs"
    assert [
        f"demo.new: read by the config readers, but {docs} does not describe it",
        f"demo.gone: described in {docs}, but no reader read it (a typo, a removed key, or a branch "
        "docs/config.example.yaml misses)",
    ] == found


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.0, "0s"), (0.05, "50ms"), (0.2, "200ms"), (1.0, "1s"), (90.0, "90s"), (300.0, "5m"), (3600.0, "1h"),
     (86400.0, "1d"), (1.5, "1500ms")],
)  # fmt: skip
def test_durations_are_shown_as_the_config_writes_them(seconds: float, expected: str) -> None:
    """Defaults in seconds are shown in the unit a user would write."""
    assert expected == docsgen.format_duration(seconds)
