"""The status page at /: the kernel renders every active feature's section, escapes untrusted text, and
serves it behind the same basic auth and TLS as /metrics."""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

import mailpulse
from mailpulse.exporter.app import App
from mailpulse.exporter.feature import Feature
from mailpulse.exporter.http import MetricsServer
from mailpulse.exporter.status import Cell, State, StatusSection, Table, row
from mailpulse.exporter.statuspage import render
from mailpulse.probes.feature import Probes
from mailpulse.probes.outcome import ProbeResult
from tests.unit.test_http import get

HOSTILE = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;"


class _Text(HTMLParser):
    """The page as a browser would show it: text nodes, and every tag (to find injected ones)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: bytes) -> _Text:
    parser = _Text()
    parser.feed(page.decode())
    return parser


def test_a_hostile_string_stays_text_everywhere() -> None:
    """Title, note, caption, column, cell: a string with markup is shown as the same text and adds no tag."""
    section = StatusSection(HOSTILE, (Table((HOSTILE,), (row(HOSTILE, Cell(HOSTILE, State.FAIL)),), caption=HOSTILE),),
                            note=HOSTILE)  # fmt: skip
    page = render([section], version=HOSTILE, now=0)
    parsed = parse(page)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert b"<script" not in page
    assert b"<img" not in page
    assert sum(HOSTILE in t for t in parsed.text) >= 6  # shown as written (the parser unescapes entities)
    assert "fail" == section.state


def test_section_state_is_the_worst_cell() -> None:
    """fail beats warn beats unknown beats ok; a section without judged cells has no state."""
    table = Table(("a",), (row(Cell("x", State.OK)), row(Cell("y", State.WARN)), row(Cell("z", State.UNKNOWN))))
    assert State.WARN == StatusSection("s", (table,)).state
    assert StatusSection("s", (Table(("a",), (row("plain"),)),)).state is None


def _app(tmp_path: Path, **http: str) -> tuple[App, Probes]:
    log = tmp_path / "mail.log"
    log.write_text("")
    secret = tmp_path / "hmac"
    secret.write_text("k" * 32)
    secret.chmod(0o600)
    data = {
        "state_dir": str(tmp_path / "state"),
        "http": {"listen": "127.0.0.1:9", **http},
        "sources": [{"name": "mail", "path": str(log)}],
        "probes": {
            "secret_file": str(secret),
            "routes": [{"name": "r", "host": "127.0.0.1", "port": 1, "tls": "starttls", "mail_from": "a@example.test"}],
            "targets": [
                {
                    "name": "box",
                    "address": "b@example.test",
                    "host": "127.0.0.1",
                    "port": 1,
                    "tls": "starttls",
                    "username": "b",
                    "password_env": "MAILPULSE_TEST_UNSET_PW",
                }
            ],
            "probes": [{"name": "p", "route": "r", "target": "box", "interval": "1h"}],
        },
    }
    features = mailpulse.features()
    config = mailpulse.parse_config(data, with_features=features)
    app = App(config, features)
    app._build(config)  # the wiring of a (re)load, without running the services
    (probes,) = [f for f in features if isinstance(f, Probes)]
    return app, probes


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPULSE_TEST_UNSET_PW", "pw")


def test_the_daemons_page_shows_sources_probes_runs_and_watchers(tmp_path: Path) -> None:
    """After a delivered run and a failed one (whose server reply is hostile), the page shows both runs
    with outcome, latency, placement, auth results and the failure, escaped; the source and the watcher."""
    app, probes = _app(tmp_path)
    assert probes.service is not None
    now = time.time()
    probes.service.record(ProbeResult("p", "r", "box", outcome="delivered", latency_seconds=1.25, folder="junk",
                                      dkim="pass", spf="pass", dmarc="fail", finished_at=now - 60))  # fmt: skip
    probes.service.record(ProbeResult("p", "r", "box", finished_at=now).fail("send", "rejected_5xx", f"554 {HOSTILE}"))
    late = ProbeResult("p", "r", "box", outcome="delivered_late", latency_seconds=95.0, folder="inbox",
                       finished_at=now)  # fmt: skip
    assert probes.service.parts.runner.on_late is not None
    probes.service.parts.runner.on_late(late)  # what the runner calls when a lost probe's message turns up
    page = app.status_page()
    parsed = parse(page)
    text = " ".join(parsed.text)
    assert "delivered_late" in text
    assert "95 s" in text
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    for expected in ("Log sources", "mail", "End-to-end probes", "r → box", "failing", "delivered", "1.25 s",
                     "Junk", "dkim=pass spf=pass dmarc=fail", f"send/rejected_5xx: 554 {HOSTILE}",
                     "Mailbox watchers", "box", "starting"):  # fmt: skip
        assert expected in text, expected
    # the runs table lists the newest first
    assert text.index("send/rejected_5xx") < text.index("1.25 s")
    assert b'class="fail"' in page
    assert b'class="warn"' in page


def test_a_section_that_raises_is_shown_as_broken_not_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in one feature's section leaves the rest of the page."""
    app, _probes = _app(tmp_path)

    def broken(self: Feature[object]) -> StatusSection:
        raise RuntimeError("bug")

    monkeypatch.setattr(Probes, "status", broken)
    text = " ".join(parse(app.status_page()).text)
    assert "Log sources" in text
    assert "could not be built" in text


def test_health_counts_a_failing_probe_but_not_against_the_daemon(tmp_path: Path) -> None:
    """A failing probe is listed in /health's `failing` and leaves it ok; a probe with no outcome for two
    intervals plus its deadline (a stuck scheduler) makes it degraded."""
    app, probes = _app(tmp_path)
    service = probes.service
    assert service is not None
    service.record(ProbeResult("p", "r", "box", finished_at=time.time()).fail("send", "connect", "refused"))
    # (the services do not run here: the source is not up, the watcher is starting; judge the probes' part)
    _, detail = app.health()
    assert ("ok", ["p"], []) == (detail["probes"]["status"], detail["probes"]["failing"], detail["probes"]["overdue"])
    deadline = service.config.probes[0].deadline
    service._now = lambda: time.time() + 2 * 3600 + deadline + 61  # two 1 h intervals + the deadline + slack
    _, detail = app.health()
    assert ("degraded", ["p"]) == (detail["probes"]["status"], detail["probes"]["overdue"])


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
         "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
         str(cert)], check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_the_page_needs_the_same_auth_and_tls_as_metrics(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    """Over HTTPS with basic auth: / is 401 without credentials and the page with them (no-store, a CSP that
    allows no script); /metrics the same."""
    cert, key = tls_files
    app, _ = _app(tmp_path)
    server = MetricsServer(app.registry, "127.0.0.1", 0, health=app.health, status_page=app.status_page,
                           tls_cert_file=str(cert), tls_key_file=str(key), username="u", password="pw")  # fmt: skip
    server.start()
    try:
        base = server.url.removesuffix("/metrics")
        assert base.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        assert 401 == get(base + "/", context=context)[0]
        assert 401 == get(server.url, context=context)[0]
        auth = {"Authorization": "Basic " + base64.b64encode(b"u:pw").decode()}
        status, headers, body = get(base + "/", auth, context=context)
        assert 200 == status
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "no-store" == headers["Cache-Control"]
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert b"End-to-end probes" in body
        assert b"<script" not in body
        assert 200 == get(server.url, auth, context=context)[0]
        with pytest.raises(OSError):
            get(base.replace("https", "http") + "/")
    finally:
        server.stop()
