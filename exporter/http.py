"""The HTTP endpoint: /metrics (Prometheus or OpenMetrics text), /health, the status page at /, optional TLS
and basic auth (which guards / and /metrics; /health stays open for load balancers).

A small threaded stdlib server rather than prometheus_client's ``start_http_server``, which has no
basic auth and performs the TLS handshake in its accept loop (one slow client stalls every scrape).
Here the handshake runs in the request's own thread, with a timeout.
"""

from __future__ import annotations

import base64
import gzip
import hmac
import json
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

log = structlog.get_logger(__name__)

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
StatusPage = Callable[[], bytes]  # the rendered page at /
REQUEST_TIMEOUT = 15.0

INDEX = b"""<!doctype html><html><head><title>mailpulse</title></head><body>
<h1>mailpulse</h1><p><a href="/metrics">/metrics</a> &middot; <a href="/health">/health</a></p>
</body></html>
"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    registry: CollectorRegistry
    health: HealthCheck
    status_page: StatusPage | None
    ssl_context: ssl.SSLContext | None
    credentials: tuple[bytes, bytes] | None

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(REQUEST_TIMEOUT)
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    _head = False

    def do_HEAD(self) -> None:
        """Same status and headers as GET, no body (RFC 9110 9.3.2): uptime checkers and load balancers
        probe with HEAD, and every path answers it."""
        self._head = True  # the handler serves every request of a keep-alive connection: reset after
        try:
            self.do_GET()
        finally:
            self._head = False

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/health":
            ok, detail = self.server.health()
            body = json.dumps({"status": "ok" if ok else "degraded", **detail}).encode()
            self._send(200 if ok else 503, "application/json", body)
            return
        if not self._authorised():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mailpulse"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(self.server.registry)
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                self._send(200, content_type, gzip.compress(body), gzipped=True)
            else:
                self._send(200, content_type, body)
        elif path == "/":
            page = self.server.status_page
            self._send(200, "text/html; charset=utf-8", page() if page is not None else INDEX, private=True)
        else:
            self._send(404, "text/plain", b"not found\n")

    def _authorised(self) -> bool:
        creds = self.server.credentials
        if creds is None:
            return True
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).partition(b":")
        except ValueError:
            return False
        # both compared in constant time, and both always compared
        user_ok = hmac.compare_digest(user, creds[0])
        password_ok = hmac.compare_digest(password, creds[1])
        return user_ok and password_ok

    def _send(self, status: int, content_type: str, body: bytes, gzipped: bool = False, private: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if private:
            # a page of live state behind auth: no cache keeps it, and it takes no script, style or frame
            # from anywhere (its CSS is inline)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                             "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")  # fmt: skip
            self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        if not self._head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per scrape is noise; errors surface as metrics and in Prometheus


class MetricsServer:
    """Serve ``registry`` on ``host:port`` in a background thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        *,
        health: HealthCheck,
        status_page: StatusPage | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server = _Server((host, port), family)
        self._server.registry = registry
        self._server.health = health
        self._server.status_page = status_page
        self._server.ssl_context = None
        if tls_cert_file and tls_key_file:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(tls_cert_file, tls_key_file)
            self._server.ssl_context = ctx
        self._server.credentials = (
            (username.encode(), password.encode()) if username is not None and password is not None else None
        )
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self._server.ssl_context else "http"
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port}/metrics"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="mailpulse-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
