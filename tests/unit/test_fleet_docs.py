"""docs/fleet.md's config snippets marked *checked* pass the tool named in the marker: `promtool check config`
(`--agent` for the agent's), or `mailpulse check-config --config-only` for a probe runner's config."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailpulse import main
from tests.dashboards.promql import ALERTS_DIR

FLEET = Path(__file__).resolve().parents[2] / "docs" / "fleet.md"
SNIPPET_RE = re.compile(r"^\*checked: (.+?)\*\n\n```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
SNIPPETS = SNIPPET_RE.findall(FLEET.read_text())


def test_the_page_has_its_checked_snippets() -> None:
    """Three Prometheus configs, the agent's, and a runner's config are marked and found."""
    tools = [tool for tool, _ in SNIPPETS]
    assert 3 == tools.count("promtool check config")
    assert 1 == tools.count("promtool check config --agent")
    assert 1 == tools.count("mailpulse check-config --config-only")


def _etc(tmp_path: Path) -> Path:
    """A stand-in for /etc/prometheus: the repository's rules under mailpulse/, the password files."""
    etc = tmp_path / "etc-prometheus"
    etc.mkdir()
    (etc / "mailpulse").symlink_to(ALERTS_DIR)
    for name in ("mailpulse.password", "remote-write.password"):
        (etc / name).write_text("secret\n")
    return etc


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
@pytest.mark.parametrize(("tool", "text"), [s for s in SNIPPETS if s[0].startswith("promtool")],
                         ids=lambda v: v.split("\n")[0][:30] if isinstance(v, str) else "")  # fmt: skip
def test_prometheus_snippets_pass_promtool(tool: str, text: str, tmp_path: Path) -> None:
    """promtool checks the config and every rule file it names (the shipped alerts/*.yml)."""
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/", f"{_etc(tmp_path)}/"))
    done = subprocess.run([*tool.split(), str(config)], capture_output=True, text=True, timeout=60, check=False)
    assert 0 == done.returncode, done.stdout + done.stderr
    if "rule_files" in text:
        assert "fleet.yml" in done.stdout  # the quorum rules were loaded and checked


def test_runner_snippet_passes_check_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe runner's config from the page is valid, with the location coming from the environment."""
    (text,) = [t for tool, t in SNIPPETS if tool.startswith("mailpulse")]
    config = tmp_path / "mailpulse.yaml"
    config.write_text(text)
    config.chmod(0o600)
    for name in ("MAILPULSE_PROBE_SECRET", "MAILPULSE_PROBE_PASSWORD", "MAILPULSE_GMAIL_APP_PASSWORD"):
        monkeypatch.setenv(name, "0123456789abcdef-" + name.lower())
    monkeypatch.setenv("MAILPULSE_PROBE_LOCATION", "fra")
    out, err = io.StringIO(), io.StringIO()
    assert 0 == main(["check-config", "--config-only", "-c", str(config)], out=out, err=err), err.getvalue()
