"""The status page in a real browser: headless Chromium (Debian's ``chromium``) against mailpulse on the lab.

Used by tests/lab/test_status_page_browser.py and by ``scripts/screenshot`` (which runs
``python -m tests.browser --lab-dir DIR --out docs/img/status-page.png``).

:class:`StatusDaemon` runs ``mailpulse run`` on a lab's own config (its sources, queue and the six
probes through the lab's routes), served over HTTPS with the lab's server certificate and behind basic
auth, plus one probe whose route is a closed port, so the page shows a failing probe too. Chromium
trusts exactly that certificate's key (``--ignore-certificate-errors-spki-list``: any other certificate
still fails) and sends the credentials from the URL. :func:`posture_and_reports` adds the ``posture:``
section (the posture lab, started for it) and the ``reports:`` section (the lab's postmaster@ mailbox, fed
by :func:`send_report_mails`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "admin", "status-page-test"
FAILING_PROBE = "closed-port-to-remote"


def chromium() -> str | None:
    return shutil.which("chromium")


def spki_sha256(cert: Path) -> str:
    """base64 SHA-256 of the certificate's public key (SubjectPublicKeyInfo), as Chromium's pin list takes it."""
    pem = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"], capture_output=True,
                         check=True, timeout=30).stdout  # fmt: skip
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem, capture_output=True,
                         check=True, timeout=30).stdout  # fmt: skip
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def run_chromium(url: str, *args: str, spki: str, timeout: float = 90.0) -> bytes:
    """Run headless Chromium once on ``url`` with ``args`` (``--dump-dom``, ``--screenshot=...``); its stdout.

    A fresh profile each time; no sandbox (the tests run as root, where Chromium refuses its sandbox)."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (Debian package chromium; scripts/setup installs it)")
    with tempfile.TemporaryDirectory(prefix="mp-chromium-") as profile:
        proc = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--ignore-certificate-errors-spki-list={spki}", *args, url],
            capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stdout


Cells = list[tuple[str, str | None]]  # (text, state class) per cell


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[Cells]] = {}
        self._caption = self._first_header = ""
        self._rows: list[Cells] = []
        self._cell: list[str] | None = None
        self._class: str | None = None
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._caption, self._first_header, self._rows = "", "", []
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._class = [], dict(attrs).get("class")

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell)
            if tag == "th" and not self._first_header:
                self._first_header = text
            if tag == "td":
                self._rows[-1].append((text, self._class))
            self._cell = None
        elif tag == "table":
            self.tables[self._caption or self._first_header] = [r for r in self._rows if r]

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self._caption += data
        elif self._cell is not None:
            self._cell.append(data)


def tables(dom: str) -> dict[str, list[Cells]]:
    """Every table of the page by its caption (or its first column's header): rows of (text, state) cells."""
    parser = _Tables()
    parser.feed(dom)
    return parser.tables


def empty_report_folders(lab_dir: Path) -> None:
    """Empty the lab's postmaster@ mailbox (the rua address): the report counts are then this run's."""
    import imaplib

    from lab.envfile import LabEnv
    from lab.layout import POSTMASTER
    from tests.lab.reports_mail import FAILED, PROCESSED

    env = LabEnv.load(lab_dir / "lab.env")
    ctx = ssl.create_default_context(cafile=env["LAB_CA_FILE"])
    conn = imaplib.IMAP4_SSL(env["LAB_HOST"], int(env["LAB_IMAPS_PORT"]), ssl_context=ctx, timeout=10)
    try:
        conn.login(POSTMASTER, env["LAB_PASSWORD"])
        for folder in ("INBOX", PROCESSED, FAILED):
            typ, data = conn.select(f'"{folder}"')
            if typ == "OK" and int(data[0] or 0):
                conn.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
                conn.expunge()
    finally:
        conn.logout()


@contextmanager
def posture_and_reports(lab_dir: Path, work: Path, only: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """The ``posture:`` and ``reports:`` sections for :class:`StatusDaemon`: the posture lab (its own DNS,
    SMTP and HTTPS servers, lab/posture) up until the context ends, and the mail lab's postmaster@ mailbox
    (emptied first) as the report mailbox; send the report mails with :func:`send_report_mails`. ``only``:
    check just these posture lab domains and senders (by name, e.g. ``good``), not all of them."""
    from lab.envfile import LabEnv
    from lab.posture import PostureLab
    from tests.lab.reports_mail import mailbox

    empty_report_folders(lab_dir)
    posture_lab = PostureLab.up(work / "posture-lab")
    try:
        # every check every 20 s: all have run within seconds of the start (first runs spread over the interval)
        checks = {c: {"interval": "20s"} for c in ("spf", "dkim", "dmarc", "mta_sts", "tlsrpt", "mx_tls", "dane",
                                                  "rdns", "dnsbl")}  # fmt: skip
        posture = posture_lab.config(checks=checks)
        if only:
            posture["domains"] = [d for d in posture["domains"] if d["name"].split(".")[0] in only]
            posture["senders"] = [s for s in posture["senders"] if s["name"] in only]
        yield {
            "posture": posture,
            "reports": {"domains": ["example.com", "example.org"], "authorized_networks": ["192.0.2.0/24"],
                        "new_series_delay": "0s", "mailboxes": [mailbox(LabEnv.load(lab_dir / "lab.env"))]},
        }  # fmt: skip
    finally:
        posture_lab.down()


def send_report_mails(lab_dir: Path) -> int:
    """Every kind of report mail (tests/lab/reports_mail.py) through the lab MX to postmaster@; how many."""
    from lab.envfile import LabEnv
    from tests.lab.reports_mail import all_mails, send_all

    mails = all_mails()
    send_all(LabEnv.load(lab_dir / "lab.env"), mails)
    return len(mails)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StatusDaemon:
    """``mailpulse run`` on the lab in ``lab_dir`` with TLS and basic auth, until the context ends."""

    def __init__(self, lab_dir: Path, work: Path, extra: dict[str, Any] | None = None) -> None:
        self.lab_dir = lab_dir
        self.work = work
        self.extra = extra or {}  # more top-level config sections (posture:, reports:)
        self.port = _free_port()
        self.cert = lab_dir / "tls" / "server.pem"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def browser_url(self) -> str:
        return f"https://{USER}:{PASSWORD}@127.0.0.1:{self.port}/"

    def write_config(self) -> Path:
        config: dict[str, Any] = yaml.safe_load((self.lab_dir / "mailpulse.yaml").read_text())
        password = self.work / "http-password"
        password.write_text(PASSWORD)
        password.chmod(0o600)
        config["state_dir"] = str(self.work / "state")
        config["http"] = {
            "listen": f"127.0.0.1:{self.port}",
            "tls": {"cert_file": str(self.cert), "key_file": str(self.lab_dir / "tls" / "server.key")},
            "basic_auth": {"username": USER, "password_file": str(password)},
        }
        probes = config["probes"]
        closed = dict(probes["routes"][0], name="closed-port", port=_free_port())
        probes["routes"].append(closed)
        probes["probes"].append(dict(probes["probes"][0], name=FAILING_PROBE, route="closed-port"))
        config.update(self.extra)
        path = self.work / "mailpulse.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def health(self) -> dict[str, Any]:
        """/health (open, no auth), over the same TLS."""
        context = ssl.create_default_context(cafile=str(self.lab_dir / "tls" / "ca.pem"))
        request = urllib.request.Request(self.base + "/health")
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as resp:
                body: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        return body

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """The samples named ``name`` from /metrics (with the credentials): (labels, value)."""
        context = ssl.create_default_context(cafile=str(self.lab_dir / "tls" / "ca.pem"))
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(self.base + "/metrics", headers={"Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(request, timeout=5, context=context) as resp:
            text = resp.read().decode()
        return [(s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples
                if s.name == name]  # fmt: skip

    def parsed_lines(self) -> dict[str, float]:
        """``mailpulse_log_lines_total{result="parsed"}`` per source."""
        return {labels["source"]: v for labels, v in self.samples("mailpulse_log_lines_total")
                if labels.get("result") == "parsed"}  # fmt: skip

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except OSError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"{what}: not within {timeout:g}s\n{self.log()}")

    def wait_for_posture(self, timeout: float = 90.0) -> None:
        """Until every planned posture check has a result (/health's posture ``checked`` = ``targets``)."""

        def done() -> bool:
            posture = self.health().get("posture", {})
            return bool(posture.get("targets")) and posture.get("checked") == posture.get("targets")

        self.wait_until("every posture check run", done, timeout)

    def wait_for_report_mails(self, count: int, timeout: float = 90.0) -> None:
        """Until ``count`` mails were taken from the report mailbox (processed or failed)."""
        self.wait_until(f"{count} report mails taken",
                        lambda: sum(v for _, v in self.samples("mailpulse_reports_mails_total")) >= count,
                        timeout)  # fmt: skip

    def wait_for_every_probe(self, timeout: float = 120.0) -> dict[str, Any]:
        """Until every probe has an outcome (the lab's run within seconds of the start) and every source has
        parsed a line (the probes' own lines, read within a poll)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                last = self.health()
                outcomes = last.get("probes", {}).get("probes", {})
                parsed = self.parsed_lines()
                if outcomes and "pending" not in outcomes.values() and parsed and all(parsed.values()):
                    return last
            except OSError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"the probes did not all finish a run within {timeout:g}s: {last}\n{self.log()}")

    def log(self) -> str:
        path = self.work / "mailpulse.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def __enter__(self) -> StatusDaemon:
        config = self.write_config()
        out = (self.work / "mailpulse.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        out.close()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# a few posture lab domains and senders, each showing a different verdict (all of them make a very long page)
SCREENSHOT_POSTURE = ("good", "spf-lookups", "dkim-mismatch", "dmarc-none", "sts-nomx", "mx-expiring", "dane-mismatch",
                      "dbl-listed", "out-good", "bl-listed", "rdns-helo")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Screenshot of the status page of mailpulse on a running lab (scripts/screenshot)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--lab-dir", type=Path, required=True, help="a running lab's directory (lab/mail-lab up)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "status-page.png")
    parser.add_argument("--size", default="1280,3500", help="window width,height in CSS pixels")
    parser.add_argument("--no-posture-reports", action="store_true",
                        help="without the posture lab and the report mails (the posture and reports sections)")  # fmt: skip
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mp-screenshot-")))
        extra = (
            {}
            if args.no_posture_reports
            else stack.enter_context(posture_and_reports(args.lab_dir, tmp, SCREENSHOT_POSTURE))
        )
        daemon = stack.enter_context(StatusDaemon(args.lab_dir, tmp, extra))
        daemon.wait_for_every_probe()
        if extra:
            daemon.wait_for_report_mails(send_report_mails(args.lab_dir))
            daemon.wait_for_posture()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shot = Path(tmp) / "page.png"
        run_chromium(daemon.browser_url, f"--window-size={args.size}", f"--screenshot={shot}",
                     spki=spki_sha256(daemon.cert))  # fmt: skip
        shutil.copyfile(shot, args.out)
        os.chmod(args.out, 0o644)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
