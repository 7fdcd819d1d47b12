"""The lab's multi-host topology: submission host, MTA relay, MX with a content filter, SRS forwarder,
each a Postfix instance with its own hostname and log (or one central log), and the forward route."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from lab.envfile import LabEnv
from lab.traffic import mail, smtp
from tests.helpers import free_port, scrape, value, wait_for
from tests.lab import mailbox

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[2]
# Mon DD HH:MM:SS host program[pid]: text  (Postfix maillog_file, no year)
LINE = re.compile(r"^[A-Z][a-z]{2} [ 0-9][0-9] \d\d:\d\d:\d\d (?P<host>[a-z-]+) (?P<prog>[\w/.-]+)\[\d+\]: ")
# the first label of each instance's myhostname, as its log lines carry it
HOSTS = {"submit": {"mail", "fake-remote"}, "relay": {"relay"}, "mx": {"mx"}, "srs": {"srs"}}


def _instance_log(env: LabEnv, name: str) -> str:
    return Path(env[f"LAB_POSTFIX_{name.upper()}_LOG"]).read_text(errors="replace")


def _wait_in_log(env: LabEnv, name: str, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    found: list[re.Match[str]] = []

    def seen() -> bool:
        m = re.search(pattern, _instance_log(env, name), re.M)
        if m:
            found.append(m)
        return m is not None

    wait_for(seen, timeout=timeout)
    return found[0]


def test_forward_through_srs_keeps_spf_and_dkim(per_host_lab: LabEnv) -> None:
    """submission -> MX (alias) -> content filter -> SRS forwarder -> outside MX -> mailbox: the message
    arrives with an SRS envelope sender, and the outside receiver says spf=pass for the SRS domain and
    dkim=pass; the signature still verifies against the lab DNS. Every host logged its own queue ID,
    each linked to the next by `queued as`."""
    env = per_host_lab
    # lines that SMTP dot-stuffs: the content filter must unstuff them, or DKIM's body hash breaks
    dots = (".a line with a leading dot", "..two", ".")
    mid, reply = mailbox.send(env, smtp.SUBMISSION, env["LAB_FORWARD_ALIAS"], kind="forward", body_lines=dots)
    assert reply.accepted, str(reply)

    raw = mailbox.fetch(env, env["LAB_FORWARD_TARGET"], mid)

    msg = mailbox.parse(raw)
    srs = env["LAB_SRS_DOMAIN"]
    assert re.fullmatch(rf"<SRS0=[^@]+=example\.test=probe@{re.escape(srs)}>", str(msg["Return-Path"]))
    top = str((msg.get_all("Authentication-Results") or [""])[0])
    assert top.startswith(f"{env['LAB_OUTSIDE_MX_HOSTNAME']};")
    assert "dkim=pass header.d=example.test" in top
    assert re.search(rf"spf=pass .*smtp\.mailfrom=\"?SRS0=[^ ;]+@{re.escape(srs)}", top)
    assert mailbox.dkim_verifies(env, raw)
    assert b"\r\n.a line with a leading dot\r\n..two\r\n.\r\n" in raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # the hops, host by host: submit -> mx -> (filter) mx -> srs -> mx (outside receiver) -> LMTP
    qid = reply.queue_id
    nxt = _wait_in_log(env, "submit", rf" {qid}: to=<forward@example\.test>, .*status=sent \(.*queued as (\w+)\)")[1]
    nxt = _wait_in_log(env, "mx", rf" {nxt}: to=<forward@example\.test>, .*status=sent \(.*queued as (\w+)\)")[1]
    nxt = _wait_in_log(env, "mx", rf" {nxt}: to=<probe@outside\.test>, orig_to=<forward@example\.test>, "
                       r"relay=\S+:" + str(env.srs_port) + r", .*status=sent \(.*queued as (\w+)\)")[1]  # fmt: skip
    _wait_in_log(env, "srs", rf" srs postfix/qmgr\[\d+\]: {nxt}: from=<SRS0=[^>]+@{re.escape(srs)}>")
    nxt = _wait_in_log(env, "srs", rf" {nxt}: to=<probe@outside\.test>, .*status=sent \(.*queued as (\w+)\)")[1]
    _wait_in_log(env, "mx", rf" postfix/outside/smtpd\[\d+\]: {nxt}: client=unknown\[{env['LAB_SRS_SOURCE']}\]")
    _wait_in_log(env, "mx", rf" postfix/lmtp\[\d+\]: {nxt}: to=<probe@outside\.test>, .*status=sent ")


def test_content_filter_reinjection_links_two_queue_ids(per_host_lab: LabEnv) -> None:
    """Mail the MX accepts goes through the content filter and comes back through the re-injection smtpd
    (`postfix/10025/smtpd`): two queue IDs in the MX log, linked by the filter's `queued as` reply."""
    env = per_host_lab
    mid, data = mail.build("pytest", "filtered", "alice@sender.test", "probe@partner.test")
    reply = smtp.send(env, smtp.MX_EXTERNAL, "alice@sender.test", ["probe@partner.test"], data)
    assert reply.accepted, str(reply)
    first = reply.queue_id

    link = _wait_in_log(env, "mx", rf"^.* mx postfix/scan/smtp\[\d+\]: {first}: to=<probe@partner\.test>, "
                        rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{env.content_filter_port}, .*status=sent "
                        r"\(250 .*queued as (\w+)\)$")  # fmt: skip
    second = link[1]
    assert second != first
    syslog_name = re.escape(env["LAB_REINJECT_SYSLOG_NAME"])
    _wait_in_log(env, "mx", rf" mx {syslog_name}/smtpd\[\d+\]: {second}: client=localhost\[127\.0\.0\.1\], "
                 r"orig_client=unknown\[127\.0\.0\.3\]$")  # fmt: skip
    _wait_in_log(env, "mx", rf" mx postfix/cleanup\[\d+\]: {second}: message-id={re.escape(mid)}$")
    _wait_in_log(env, "mx", rf" mx postfix/lmtp\[\d+\]: {second}: to=<probe@partner\.test>, .*status=sent ")
    _wait_in_log(env, "mx", rf" mx postfix/qmgr\[\d+\]: {first}: removed$")
    assert f"queued_as: {second}" in Path(env["LAB_FILTER_LOG"]).read_text()
    assert mailbox.parse(mailbox.fetch(env, "probe@partner.test", mid))["X-Lab-Filter"]


def test_each_instance_logs_under_its_own_hostname(per_host_lab: LabEnv) -> None:
    """Per-host mode: one maillog per Postfix instance, every line well-formed and carrying that host's
    name (the fake remote MX, "the internet", runs on the submission host and is named so)."""
    env = per_host_lab
    for route in (smtp.SUBMISSION, smtp.RELAY):
        assert mailbox.send(env, route, "probe@remote.test", kind="hosts")[1].accepted
    for rcpt in (env["LAB_FORWARD_ALIAS"], "user@accept.test"):
        assert mailbox.send(env, smtp.SUBMISSION, rcpt, kind="hosts")[1].accepted
    _wait_in_log(env, "srs", r" srs postfix/smtp\[\d+\]: \w+: to=<probe@outside\.test>, .*status=sent ")
    _wait_in_log(env, "submit", r" fake-remote postfix/fake-remote/smtpd\[\d+\]: NOQUEUE: discard: ")
    names = env["LAB_POSTFIX_INSTANCES"].split()
    assert names == ["submit", "relay", "mx", "srs"]
    paths = {env[f"LAB_POSTFIX_{n.upper()}_LOG"] for n in names}
    assert len(paths) == 4
    assert set(env["LAB_POSTFIX_LOGS"].split()) == paths
    hosts: dict[str, set[str]] = {}
    for name in names:
        lines = _instance_log(env, name).splitlines()
        assert lines, name
        for line in lines:
            m = LINE.match(line)
            assert m, (name, line)
            hosts.setdefault(name, set()).add(m["host"])
    assert hosts == HOSTS


def test_central_mode_writes_every_instance_to_one_file(mail_lab: LabEnv, lab_traffic: dict[str, object]) -> None:
    """Central mode (the session lab): every instance appends to one file; lines of all four hosts are
    there, and 40 messages sent at once through four routes leave no torn or interleaved line."""
    env = mail_lab
    assert env["LAB_LOG_MODE"] == "central"
    central = Path(env["LAB_POSTFIX_LOG"])
    assert env["LAB_POSTFIX_LOGS"].split() == [str(central)]
    assert all(env[f"LAB_POSTFIX_{n.upper()}_LOG"] == str(central) for n in env["LAB_POSTFIX_INSTANCES"].split())
    routes = [smtp.SUBMISSION, smtp.SMTPS, smtp.RELAY, smtp.SUBMISSION]
    replies: list[smtp.Reply] = []

    def one(i: int) -> None:
        rcpt = env["LAB_FORWARD_ALIAS"] if i % 4 == 3 else f"probe@{('remote', 'partner')[i % 2]}.test"
        replies.append(mailbox.send(env, routes[i % 4], rcpt, kind=f"central{i}")[1])

    forwarded = re.compile(r" mx postfix/lmtp\[\d+\]: \w+: to=<probe@outside\.test>, .*status=sent ")
    before = len(forwarded.findall(central.read_text()))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(replies) == 40
    assert all(r.accepted for r in replies)
    # every forwarded copy crossed all four hosts (submit, mx, srs, the outside receiver on mx)
    wait_for(lambda: len(forwarded.findall(central.read_text())) >= before + 10, timeout=60)
    hosts = set()
    for line in central.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        assert m, line
        hosts.add(m["host"])
    assert {"mail", "relay", "mx", "srs", "fake-remote"} <= hosts
    assert not any((Path(env["LAB_DIR"]) / "postfix" / n / "mail.log").exists() for n in ("submit", "mx"))


def test_forward_probe_route_succeeds_in_a_probe_run(per_host_lab: LabEnv, tmp_path: Path) -> None:
    """`mailpulse run` on the lab's own generated config (per-host: one postfix source per host, the rspamd
    log, the queue, the probes) runs the forward-srs probe to success: mailpulse_probe_success 1, with the
    expectation spf=pass for the SRS domain and dkim=pass met; every log source is up."""
    env = per_host_lab
    data = yaml.safe_load((env.dir / "mailpulse.yaml").read_text())
    port = free_port()
    data["http"]["listen"] = f"127.0.0.1:{port}"
    data["state_dir"] = str(tmp_path / "state")
    probes = data["probes"]
    forward = [p for p in probes["probes"] if p["route"] == "forward-srs"]
    assert len(forward) == 1
    assert forward[0]["expect"] == {"spf": "pass", "spf_domain": env["LAB_SRS_DOMAIN"], "dkim": "pass"}
    probes["probes"] = [{**forward[0], "interval": "3s", "jitter": "0s", "deadline": "20s"}]
    config = tmp_path / "mailpulse.yaml"
    config.write_text(yaml.safe_dump(data))
    config.chmod(0o600)
    sources = [s["name"] for s in data["sources"]]
    assert sources == ["postfix", "postfix-relay", "postfix-mx", "postfix-srs", "rspamd"]
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        probe = forward[0]["name"]
        wait_for(lambda: value(scrape(port), "mailpulse_probe_runs_total", probe=probe) >= 1, timeout=60)
        got = scrape(port)
        assert value(got, "mailpulse_probe_success", probe=probe) == 1
        assert value(got, "mailpulse_probe_failures_total", probe=probe) == 0
        for name in sources:
            assert value(got, "mailpulse_log_source_up", source=name) == 1, name
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err[-2000:]
