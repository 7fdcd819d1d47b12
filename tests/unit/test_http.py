"""The /metrics endpoint over real sockets: plain, TLS, basic auth, health, OpenMetrics negotiation."""

from __future__ import annotations

import base64
import gzip
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailpulse.exporter.http import MetricsServer
from mailpulse.exporter.metrics.collector import MailpulseCollector, SelfMetrics, make_registry


def _server(**kwargs: object) -> MetricsServer:
    registry = make_registry(MailpulseCollector(threading.Lock(), SelfMetrics("test")))
    return MetricsServer(registry, "127.0.0.1", 0, health=lambda: (True, {"sources": {}}), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def plain() -> Iterator[MetricsServer]:
    server = _server()
    server.start()
    yield server
    server.stop()


def get(
    url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_metrics_and_health(plain: MetricsServer) -> None:
    """Prometheus text by default, OpenMetrics when asked, gzip when accepted, JSON health."""
    status, headers, body = get(plain.url)
    assert 200 == status
    assert headers["Content-Type"].startswith("text/plain")
    assert b"mailpulse_build_info{" in body
    assert b"process_resident_memory_bytes" in body
    status, headers, body = get(plain.url, {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    status, headers, body = get(plain.url, {"Accept-Encoding": "gzip"})
    assert "gzip" == headers["Content-Encoding"]
    assert b"mailpulse_build_info" in gzip.decompress(body)
    status, _, body = get(plain.url.replace("/metrics", "/health"))
    assert (200, b'{"status": "ok", "sources": {}}') == (status, body)
    assert 404 == get(plain.url.replace("/metrics", "/nope"))[0]


def test_basic_auth() -> None:
    """Without or with wrong credentials: 401; with them: the metrics. Health stays open for probes."""
    server = _server(username="prom", password="s3cret")
    server.start()
    try:
        assert 401 == get(server.url)[0]
        wrong = base64.b64encode(b"prom:nope").decode()
        assert 401 == get(server.url, {"Authorization": f"Basic {wrong}"})[0]
        assert 401 == get(server.url, {"Authorization": "Basic !!!"})[0]
        right = base64.b64encode(b"prom:s3cret").decode()
        status, _, body = get(server.url, {"Authorization": f"Basic {right}"})
        assert 200 == status
        assert b"mailpulse_build_info" in body
        assert 200 == get(server.url.replace("/metrics", "/health"))[0]
    finally:
        server.stop()


def test_tls(tmp_path: Path) -> None:
    """HTTPS with the configured certificate; the handshake of a plain-HTTP client fails alone."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
         "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
         str(cert)], check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server = _server(tls_cert_file=str(cert), tls_key_file=str(key))
    server.start()
    try:
        assert server.url.startswith("https://")
        with pytest.raises(OSError):  # reset or URLError, depending on timing
            get(server.url.replace("https", "http"))
        context = ssl.create_default_context(cafile=str(cert))
        status, _, body = get(server.url, context=context)
        assert 200 == status
        assert b"mailpulse_build_info" in body
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/metrics", "/health", "/", "/nope"])
def test_head_answers_like_get_without_a_body(plain: MetricsServer, path: str) -> None:
    """HEAD on every path gets GET's status and Content-Length, and no body (it was 501 before)."""
    import http.client

    host, port = plain.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        got = conn.getresponse()
        get_status, get_body = got.status, got.read()
        conn.request("HEAD", path)  # same keep-alive connection: a stray body would corrupt the next reply
        head = conn.getresponse()
        head_body = head.read()
        head_status, length = head.status, head.getheader("Content-Length")
        conn.request("GET", path)
        again = conn.getresponse()
        again.read()
    finally:
        conn.close()
    assert (get_status, b"") == (head_status, head_body)
    assert get_status == again.status
    if path != "/metrics":  # the exposition carries live numbers (scrape durations) and may change length
        assert str(len(get_body)) == length
    else:
        assert int(length or 0) > 0
