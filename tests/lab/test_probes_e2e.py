"""Probes against the real mail lab: every lab route to both Dovecot mailboxes, Junk placement, a broken
DKIM signature, cleanup and the sweep, and no secret in any log line.

Helpers here (lab_config, imap_probe_uids, run_cli) are shared with the other tests/lab/test_probes_*.py.
"""

from __future__ import annotations

import base64
import imaplib
import json
import os
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.envfile import LabEnv
from mailpulse.probes.message import make_tag, new_token

pytestmark = [pytest.mark.lab]
REPO = Path(__file__).resolve().parents[2]


def lab_probes(env: LabEnv) -> dict[str, Any]:
    """The probes: section the lab generated (docs/CONTRACTS.md schema)."""
    data = yaml.safe_load((env.dir / "mailpulse.yaml").read_text())
    section: dict[str, Any] = data["probes"]
    return section


def lab_config(env: LabEnv, tmp_path: Path, *, probes: list[dict[str, Any]] | None = None,
               routes: list[dict[str, Any]] = (), targets: list[dict[str, Any]] = (),  # type: ignore[assignment]
               level: str = "info", **section: Any) -> Path:  # fmt: skip
    """The lab's mailpulse.yaml with probes only (no log sources), extra routes/targets, given probes."""
    data = yaml.safe_load((env.dir / "mailpulse.yaml").read_text())
    p = data["probes"]
    p["routes"] = [*p["routes"], *routes]
    p["targets"] = [*p["targets"], *targets]
    if probes is not None:
        p["probes"] = probes
    p.update(section)
    config = {"log": {"level": level, "format": "json"}, "state_dir": str(tmp_path / "state"), "probes": p,
              "http": data["http"]}  # fmt: skip
    path = tmp_path / "mailpulse.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def probe(name: str, route: str = "submission-587", target: str = "remote-inbox", **kw: Any) -> dict[str, Any]:
    return {"name": name, "route": route, "target": target, "interval": "1m", "deadline": "20s",
            "late_window": "10m", **kw}  # fmt: skip


def run_cli(config: Path, *args: str, timeout: float = 90) -> tuple[int, list[dict[str, Any]], str]:
    """`mailpulse probe --once` as a user runs it: exit code, JSON lines, stderr."""
    proc = subprocess.run([sys.executable, "-m", "mailpulse", "probe", "--once", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)  # fmt: skip
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, lines, proc.stderr


def imap(env: LabEnv, user: str) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context(cafile=env["LAB_CA_FILE"])
    conn = imaplib.IMAP4_SSL(env["LAB_HOST"], int(env["LAB_IMAPS_PORT"]), ssl_context=ctx, timeout=10)
    conn.login(user, env["LAB_PASSWORD"])
    return conn


def imap_probe_uids(env: LabEnv, user: str, marker: str = "mailpulse probe") -> dict[str, list[bytes]]:
    """UIDs of messages whose Subject contains ``marker``, per folder (INBOX, Junk, Trash)."""
    conn = imap(env, user)
    try:
        out = {}
        for folder in ("INBOX", "Junk", "Trash"):
            conn.select(folder, readonly=True)
            typ, data = conn.uid("SEARCH", None, "SUBJECT", f'"{marker}"')  # type: ignore[arg-type]
            assert typ == "OK"
            out[folder] = data[0].split()
        return out
    finally:
        conn.logout()


@pytest.mark.timeout(120)
def test_cli_once_delivers_every_lab_probe(mail_lab: LabEnv) -> None:
    """`mailpulse probe --once -c DIR/mailpulse.yaml`: every lab probe (587, 465, client-cert relay, each to
    the IMAPS and the IMAP-STARTTLS mailbox; and the forward route from outside through the SRS forwarder)
    is delivered to INBOX with dkim=pass in the receiver's Authentication-Results and by mailpulse's own
    check; exit 0."""
    code, lines, stderr = run_cli(mail_lab.dir / "mailpulse.yaml")
    assert code == 0, stderr[-3000:]
    assert {p["name"] for p in lab_probes(mail_lab)["probes"]} == {line["probe"] for line in lines}
    assert {"submission-587", "submission-465", "relay-cert", "forward-srs"} == {line["route"] for line in lines}
    (forward,) = [line for line in lines if line["route"] == "forward-srs"]
    lines.remove(forward)
    assert ("delivered", "inbox", "pass", "pass", "pass", "pass") == (
        forward["outcome"], forward["folder"], forward["dkim"], forward["dkim_own"], forward["spf"], forward["dmarc"]
    ), forward  # fmt: skip
    assert (mail_lab["LAB_OUTSIDE_MX_HOSTNAME"], mail_lab["LAB_SRS_DOMAIN"]) == (
        forward["authserv_id"], forward["spf_domain"])  # fmt: skip
    # sent from "the internet" (source_address), no AUTH, STARTTLS: the MX logged the outside client
    mx_log = Path(mail_lab["LAB_POSTFIX_MX_LOG"]).read_text()
    assert f" {forward['queue_id']}: client=unknown[{mail_lab['LAB_EXTERNAL_SOURCE']}]" in mx_log
    for line in lines:
        assert ("delivered", "inbox", "pass", "pass", "pass", "pass") == (
            line["outcome"],
            line["folder"],
            line["dkim"],
            line["dkim_own"],
            line["spf"],
            line["dmarc"],
        ), line
        assert line["authserv_id"] == mail_lab["LAB_MX_HOSTNAME"]
        assert line["queue_id"]
        assert line["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert 0 <= line["latency_seconds"] < 20
        for key in ("probe", "route", "target", "reason", "arc", "spam_score"):
            assert key in line


@pytest.mark.timeout(120)
def test_junk_and_broken_signature(mail_lab: LabEnv, tmp_path: Path) -> None:
    """A probe the receiver scores as spam is found in Junk and reported so; a probe whose body is
    changed after signing is reported as dkim=fail by the receiver and by mailpulse's own check."""
    config = lab_config(mail_lab, tmp_path, probes=[
        probe("junk", headers={"X-Lab-Score": "8"}),
        probe("tampered", route="submission-465", target="partner-inbox", body_lines=[mail_lab["LAB_TAMPER_TOKEN"]]),
    ])  # fmt: skip
    code, lines, stderr = run_cli(config)
    by = {line["probe"]: line for line in lines}
    junk, tampered = by["junk"], by["tampered"]
    assert ("delivered", "junk", True) == (junk["outcome"], junk["folder"], junk["spam_flagged"]), stderr[-2000:]
    assert junk["spam_score"] >= 8
    assert junk["spam_engine"] == "rspamd"
    assert ("delivered", "inbox", "fail", "fail") == (tampered["outcome"], tampered["folder"], tampered["dkim"],
                                                      tampered["dkim_own"])  # fmt: skip
    assert code == 0  # both were delivered, within the deadline


@pytest.mark.timeout(120)
def test_cleanup_and_sweep(mail_lab: LabEnv, tmp_path: Path) -> None:
    """After runs, no probe is left in INBOX, Junk or Trash; the sweep removes our own stale probe (valid
    HMAC, older than the late window) but keeps a forged one and a foreign message, all unread."""
    env = mail_lab
    key = Path(lab_probes(env)["secret_file"]).read_text().strip().encode()
    old = time.time() - 3 * 86400
    token = new_token()
    stale = _message(f"mailpulse probe old {token}", make_tag(key, token, "old", int(old)))
    forged = _message(f"mailpulse probe forged {new_token()}", make_tag(b"not-the-key-at-all", new_token(), "x", 1))
    foreign = _message("mailpulse probe? no, a person", None)
    conn = imap(env, "probe@remote.test")
    try:
        date = f'"{datetime.fromtimestamp(old, UTC).strftime("%d-%b-%Y %H:%M:%S +0000")}"'
        for raw in (stale, forged, foreign):
            assert conn.append("INBOX", "", date, raw)[0] == "OK"
    finally:
        conn.logout()
    config = lab_config(env, tmp_path, probes=[probe("one"), probe("junk", headers={"X-Lab-Score": "8"})],
                        sweep_interval="10s")  # fmt: skip
    code, lines, stderr = run_cli(config)
    assert code == 0, stderr[-2000:]
    left = imap_probe_uids(env, "probe@remote.test")
    conn = imap(env, "probe@remote.test")
    try:
        conn.select("INBOX")
        subjects = []
        for uid in left["INBOX"]:
            _typ, data = conn.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(data[0][1].decode())
            assert b"\\Seen" not in data[0][0]
            conn.uid("STORE", uid.decode(), "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()
    finally:
        conn.logout()
    assert not any(token in s for s in subjects), subjects  # the stale probe was swept
    assert any("forged" in s for s in subjects), subjects
    assert any("a person" in s for s in subjects), subjects
    assert [] == left["Junk"]
    assert [] == left["Trash"]
    assert all(line["probe"] in ("one", "junk") for line in lines)


def _message(subject: str, tag: str | None) -> bytes:
    headers = [
        "From: probe@example.test",
        "To: probe@remote.test",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: <{new_token()}@example.test>",
    ]
    if tag is not None:
        headers.append(f"X-Mailpulse-Probe: {tag}")
    return ("\r\n".join(headers) + "\r\n\r\nbody\r\n").encode()


@pytest.mark.timeout(120)
def test_no_secret_in_any_log_line(mail_lab: LabEnv, tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """With every logger at DEBUG (aioimaplib's included, which prints LOGIN and AUTHENTICATE), neither the
    lab password, a wrong password, the HMAC key nor an XOAUTH2 token (raw or base64) shows up, while
    logins succeed, fail and XOAUTH2 is refused."""
    import mailpulse as cli
    from mailpulse.exporter import logsetup

    env = mail_lab
    monkeypatch.setattr(logsetup, "QUIET_LIBRARIES", ())
    wrong = "Wr0ng-" + new_token()
    xo_token = "ya29." + new_token() + new_token()
    monkeypatch.setenv("MAILPULSE_TEST_WRONG", wrong)
    token_file = tmp_path / "token"
    token_file.write_text(xo_token + "\n")
    lab = lab_probes(env)
    sub = next(r for r in lab["routes"] if r["name"] == "submission-587")
    remote = next(t for t in lab["targets"] if t["name"] == "remote-inbox")
    routes = [{**{k: v for k, v in sub.items() if k != "password_file"}, "name": "wrong-pw",
               "password_env": "MAILPULSE_TEST_WRONG"},
              {**{k: v for k, v in sub.items() if k != "password_file"}, "name": "xoauth2",
               "xoauth2": {"token_command": ["cat", str(token_file)]}}]  # fmt: skip
    # another port than remote-inbox: targets sharing host, port and login share one watcher
    targets = [
        {
            **{k: v for k, v in remote.items() if k != "password_file"},
            "name": "xoauth2-box",
            "port": int(env["LAB_IMAP_PORT"]),
            "tls": "starttls",
            "xoauth2": {"token_file": str(token_file)},
        }
    ]
    config = lab_config(env, tmp_path, level="debug", routes=routes, targets=targets, probes=[
        probe("ok"), probe("ok-starttls", route="relay-cert", target="partner-inbox"), probe("bad", route="wrong-pw"),
        probe("xo", route="xoauth2"), probe("xo-imap", target="xoauth2-box")])  # fmt: skip
    try:
        code = cli.main(["probe", "--once", "-c", str(config)])
    finally:
        _reset_logging()
    out, err = capfd.readouterr()
    results = {json.loads(line)["probe"]: json.loads(line) for line in out.splitlines() if line.startswith("{")}
    assert code == 1
    assert ("delivered", "delivered") == (results["ok"]["outcome"], results["ok-starttls"]["outcome"])
    assert (("send", "auth"), ("send", "auth"), ("receive", "imap_auth")) == tuple(
        (results[p]["stage"], results[p]["reason"]) for p in ("bad", "xo", "xo-imap"))  # fmt: skip
    logs = out + err
    assert "aioimaplib" in logs
    assert '"level": "debug"' in logs
    key = Path(lab["secret_file"]).read_text().strip()
    user = "probe@example.test"
    for secret in (env["LAB_PASSWORD"], wrong, key, xo_token,
                   base64.b64encode(f"\0{user}\0{env['LAB_PASSWORD']}".encode()).decode(),
                   base64.b64encode(f"user={remote['username']}\1auth=Bearer {xo_token}\1\1".encode()).decode(),
                   base64.b64encode(f"user={user}\1auth=Bearer {xo_token}\1\1".encode()).decode()):  # fmt: skip
        assert secret not in logs
    assert os.environ.get("MAILPULSE_TEST_WRONG") == wrong


def _reset_logging() -> None:
    """Undo configure_logging() of the in-process CLI run, for the tests that follow."""
    import logging

    import structlog

    root = logging.getLogger()
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


@pytest.mark.timeout(120)
def test_a_burst_is_seen_at_once(mail_lab: LabEnv, tmp_path: Path) -> None:
    """30 probes at the same moment into two mailboxes: all found within seconds. (Mail that arrives while
    the watcher fetches and deletes is announced only in replies aioimaplib drops; the watcher must look
    again before it idles, or such a message waits for the next arrival.)"""
    routes, targets = ("submission-587", "submission-465", "relay-cert"), ("remote-inbox", "partner-inbox")
    probes = [probe(f"burst-{i:02d}", route=routes[i % 3], target=targets[i % 2], deadline="30s") for i in range(30)]
    code, lines, stderr = run_cli(lab_config(mail_lab, tmp_path, probes=probes))
    assert code == 0, stderr[-2000:]
    assert 30 == len(lines)
    assert max(line["latency_seconds"] for line in lines) < 10


@pytest.mark.timeout(120)
def test_daemon_serves_probe_metrics_and_keeps_them_over_a_reload(mail_lab: LabEnv, tmp_path: Path) -> None:
    """`mailpulse run` as a subprocess: probes are scheduled, /metrics shows them delivered, a SIGHUP reload
    keeps the counters going, SIGTERM stops it cleanly with the state file written."""
    import signal
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = lab_config(mail_lab, tmp_path, probes=[
        probe("d587", interval="3s", deadline="10s"), probe("d465", route="submission-465", target="partner-inbox",
                                                            interval="3s", deadline="10s")])  # fmt: skip
    text = config.read_text().replace(f"listen: {yaml.safe_load(config.read_text())['http']['listen']}",
                                      f"listen: 127.0.0.1:{port}")  # fmt: skip
    config.write_text(text)

    def runs() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        out = {}
        for fam in text_string_to_metric_families(body):
            for sample in fam.samples:
                if sample.name in ("mailpulse_probe_runs_total", "mailpulse_probe_success"):
                    out[f"{sample.name}:{sample.labels['probe']}"] = sample.value
        return out

    def wait_for(check: Any, timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                values = runs()
                if check(values):
                    return values
            except OSError:
                pass
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.3)

    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        before = wait_for(lambda v: all(v.get(f"mailpulse_probe_success:{p}") == 1 for p in ("d587", "d465")), 40)
        proc.send_signal(signal.SIGHUP)
        seen: list[float] = []

        def advanced(v: dict[str, float]) -> bool:
            seen.append(v["mailpulse_probe_runs_total:d587"])
            return seen[-1] > before["mailpulse_probe_runs_total:d587"]

        wait_for(advanced, 40)
        assert min(seen) >= before["mailpulse_probe_runs_total:d587"], seen  # never reset by the reload
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err[-2000:]
    assert "config reloaded" in err
    assert (tmp_path / "state" / "probes.json").exists()


@pytest.mark.timeout(120)
def test_polling_watcher_and_trash_cleanup(mail_lab: LabEnv, tmp_path: Path) -> None:
    """A target with `watch: poll` finds its probe by polling; `cleanup: trash` (Gmail's way) moves the
    probe to \\Trash by UID instead of expunging it, still unread."""
    lab = lab_probes(mail_lab)
    remote = next(t for t in lab["targets"] if t["name"] == "remote-inbox")
    target = {**remote, "name": "polled", "port": int(mail_lab["LAB_IMAP_PORT"]), "tls": "starttls",
              "watch": "poll", "poll_interval": "1s", "cleanup": "trash"}  # fmt: skip
    code, lines, stderr = run_cli(lab_config(mail_lab, tmp_path, targets=[target],
                                             probes=[probe("polled", target="polled")]))  # fmt: skip
    assert code == 0, stderr[-2000:]
    ((line),) = lines
    assert ("delivered", "poll") == (line["outcome"], line["watch_mode"])
    token = line["message_id"].split(".")[2]  # <mp.LOCATION.TOKEN.MAC@domain>
    conn = imap(mail_lab, "probe@remote.test")
    try:
        conn.select("INBOX", readonly=True)
        assert [b""] == conn.uid("SEARCH", "SUBJECT", token)[1]
        conn.select("Trash")
        (uids,) = conn.uid("SEARCH", "SUBJECT", token)[1]
        assert len(uids.split()) == 1
        flags = conn.uid("FETCH", uids, "(FLAGS)")[1][0]
        assert b"\\Seen" not in flags
        conn.uid("STORE", uids, "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()
    finally:
        conn.logout()
