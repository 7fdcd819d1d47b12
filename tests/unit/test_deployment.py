"""Deployment as a new user meets it: check-config checks the machine, clear errors instead of tracebacks,
config error messages, CLI help and the probe command, packaging metadata."""

from __future__ import annotations

import grp
import io
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailpulse import features, load_config, main
from mailpulse.exporter.cli import EX_CONFIG, build_parser
from mailpulse.exporter.configtools import ConfigError
from mailpulse.exporter.http import MetricsServer
from mailpulse.exporter.metrics.collector import MailpulseCollector, SelfMetrics, make_registry
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(0o644)
    return path


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="mp-deploy-", dir="/tmp"))
    root.chmod(0o755)
    (root / "state").mkdir()
    if os.geteuid() == 0:
        os.chown(root / "state", pwd.getpwnam("nobody").pw_uid, -1)  # what StateDirectory= does
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_unprivileged() -> list[str]:
    """Run a command as an unprivileged user: setpriv to nobody when we are root, else as we are."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to drop root")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--no-new-privs"]


# -- config errors ---------------------------------------------------------------------------------------------
def test_unknown_keys_in_list_items_are_reported_once(tmp_path: Path) -> None:
    """An unknown key under sources[] (or any list item parsed by list_of) is one problem, not two."""
    path = write_config(tmp_path / "c.yaml", "sources:\n  - {name: postfix, path: /x, bogus: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert 1 == sum("bogus" in p for p in info.value.problems), info.value.problems


def test_a_missing_secret_file_is_one_problem(tmp_path: Path) -> None:
    """A password_file that does not exist is reported as such, without a second, false 'IMAP needs
    password_file' line."""
    secret = tmp_path / "hmac"
    secret.write_text("k" * 32)
    secret.chmod(0o600)
    body = f"""
probes:
  secret_file: {secret}
  routes: [{{name: r, host: 127.0.0.1, port: 587, tls: starttls, mail_from: a@example.test}}]
  targets:
    - {{name: t, address: b@example.test, host: 127.0.0.1, tls: implicit, username: b,
        password_file: {tmp_path / "nope"}}}
  probes: [{{name: p, route: r, target: t}}]
"""
    with pytest.raises(ConfigError) as info:
        load_config(str(write_config(tmp_path / "c.yaml", body)))
    problems = info.value.problems
    assert [f"probes.targets[0].password_file: cannot read {tmp_path / 'nope'}: No such file or directory"] == [
        p for p in problems if "password" in p], problems  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('sources:\n  - name: postfix\n    path: "/var/log/mail.log\nhttp:\n  listen: x\n', 3),  # unclosed quote
        ("sources:\n  - name: postfix\n    path: [a, b\nhttp: {}\n", 3),  # unclosed bracket
        ("sources:\n  - name: postfix\n    path: /x\n   bad: 1\n", 4),  # bad indentation
        ("sources:\n  - name: postfix\n\tpath: /x\n", 3),  # a tab
        ("a: {b: 1\n\n\n\nc: 2\n", 1),  # unclosed brace, found much later
    ],
    ids=["quote", "bracket", "indent", "tab", "brace"],
)
def test_yaml_errors_lead_with_the_line_to_fix(tmp_path: Path, text: str, line: int) -> None:
    """The first line number in a YAML error is where the broken construct is (for an unclosed quote or
    bracket: where it opens, not the end of the file where the parser gave up)."""
    with pytest.raises(ConfigError) as info:
        load_config(str(write_config(tmp_path / "c.yaml", text)))
    (problem,) = info.value.problems
    first = re.search(r"at line (\d+)", problem)
    assert first is not None, problem
    assert line == int(first.group(1)), problem


# -- CLI ---------------------------------------------------------------------------------------------------------
def test_every_subcommand_has_a_description() -> None:
    """`mailpulse COMMAND --help` explains the command, not just its options."""
    parser, _ = build_parser(features())
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        assert len(command.description or "") > 60, name


def test_probe_without_once_runs_the_probes(tmp_path: Path) -> None:
    """`mailpulse probe` without --once no longer exits 2 'only --once is supported': it runs each probe
    once (here: a probe whose route refuses connections, so it fails with exit 1 and a JSON line)."""
    secret = tmp_path / "hmac"
    secret.write_text("k" * 32)
    secret.chmod(0o600)
    password = tmp_path / "pw"
    password.write_text("pw")
    password.chmod(0o600)
    closed = free_port()
    body = f"""
probes:
  secret_file: {secret}
  routes: [{{name: r, host: 127.0.0.1, port: {closed}, tls: starttls, mail_from: a@example.test,
             connect_timeout: 2s, timeout: 2s}}]
  targets:
    - {{name: t, address: b@example.test, host: 127.0.0.1, port: {closed}, tls: starttls, username: b,
        password_file: {password}, timeout: 2s}}
  probes: [{{name: p, route: r, target: t, deadline: 5s}}]
"""
    config = write_config(tmp_path / "c.yaml", body)
    proc = subprocess.run([sys.executable, "-m", "mailpulse", "probe", "-c", str(config), "--timeout", "30"],
                          cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)  # fmt: skip
    assert 1 == proc.returncode, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert 1 == len(lines)
    assert '"outcome": "failed"' in lines[0]


# -- check-config checks the machine ---------------------------------------------------------------------------
def _config(shared: Path, **overrides: str) -> Path:
    state = overrides.get("state", str(shared / "state"))
    listen = overrides.get("listen", f"127.0.0.1:{free_port()}")
    log = overrides.get("log", str(shared / "mail.log"))
    extra = overrides.get("extra", "")
    return write_config(shared / "c.yaml", f"state_dir: {state}\nhttp: {{listen: '{listen}'}}\n"
                                           f"sources:\n  - {{name: postfix, path: {log}}}\n{extra}")  # fmt: skip


def check_as_user(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*as_unprivileged(), sys.executable, "-m", "mailpulse", "check-config", "-c", str(config),
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_check_config_passes_a_config_that_can_run(shared: Path) -> None:
    """A readable log, a writable state dir and a free port: exit 0, no findings."""
    log = shared / "mail.log"
    log.write_text("")
    log.chmod(0o644)
    proc = check_as_user(_config(shared))
    assert (0, "") == (proc.returncode, proc.stderr)
    assert "OK for" in proc.stdout


def test_unreadable_log_is_an_error_with_the_group_hint(shared: Path) -> None:
    """A log file the user cannot read (Debian's root:adm 0640) is an error naming group adm."""
    log = shared / "mail.log"
    log.write_text("x\n")
    try:
        adm = grp.getgrnam("adm").gr_gid
    except KeyError:
        pytest.skip("no adm group here")
    os.chown(log, 0, adm) if os.geteuid() == 0 else None
    log.chmod(0o640 if os.geteuid() == 0 else 0o000)
    proc = check_as_user(_config(shared))
    assert EX_CONFIG == proc.returncode
    assert f"error: sources[0].path: {log} is not readable by" in proc.stderr
    if os.geteuid() == 0:
        assert "adduser mailpulse adm" in proc.stderr


def test_missing_log_is_a_warning_and_strict_makes_it_fail(shared: Path) -> None:
    """A log that does not exist yet: the daemon waits for it, so a warning (exit 0), or 78 with --strict."""
    config = _config(shared, log=str(shared / "later.log"))
    proc = check_as_user(config)
    assert 0 == proc.returncode, proc.stderr
    assert "warning: sources[0].path:" in proc.stderr
    assert EX_CONFIG == check_as_user(config, "--strict").returncode
    assert 0 == check_as_user(config, "--config-only", "--strict").returncode


def test_unwritable_state_dir_is_an_error(shared: Path) -> None:
    """A state dir under a directory the user cannot write (the default /var/lib/mailpulse for a non-root
    user) is an error that says how to fix it."""
    locked = shared / "locked"
    locked.mkdir(mode=0o755)
    if os.geteuid() != 0:
        locked.chmod(0o555)
    (shared / "mail.log").write_text("")
    proc = check_as_user(_config(shared, state=str(locked / "state")))
    assert EX_CONFIG == proc.returncode
    assert "error: state_dir:" in proc.stderr
    assert "cannot create it" in proc.stderr


def test_run_with_an_unwritable_state_dir_is_a_clear_error_not_a_traceback(shared: Path) -> None:
    """`mailpulse run` as a non-root user with the default state_dir: one line and exit 78 (was a traceback
    from os.makedirs)."""
    (shared / "mail.log").write_text("")
    config = write_config(shared / "run.yaml", f"sources:\n  - {{name: postfix, path: {shared / 'mail.log'}}}\n"
                                               f"http: {{listen: '127.0.0.1:{free_port()}'}}\n")  # fmt: skip
    if os.geteuid() != 0 and os.access("/var/lib", os.W_OK):
        pytest.skip("this user can create /var/lib/mailpulse")
    proc = subprocess.run([*as_unprivileged(), sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert EX_CONFIG == proc.returncode
    assert "Traceback" not in proc.stderr
    assert "state_dir: /var/lib/mailpulse does not exist and" in proc.stderr


def test_busy_port_is_an_error_unless_mailpulse_holds_it(shared: Path) -> None:
    """A port held by another program is an error; held by a running mailpulse (check before a reload) it
    is a warning."""
    (shared / "mail.log").write_text("")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        code, _, err = run_cli("check-config", "-c", str(_config(shared, listen=f"127.0.0.1:{port}")))
    assert EX_CONFIG == code
    assert f"error: http.listen: 127.0.0.1:{port} is in use by another program" in err
    registry = make_registry(MailpulseCollector(threading.Lock(), SelfMetrics("test")))
    server = MetricsServer(registry, "127.0.0.1", 0, health=lambda: (False, {"status": "degraded", "sources": {}}))
    server.start()
    try:
        code, _, err = run_cli("check-config", "-c", str(_config(shared, listen=f"127.0.0.1:{server.address[1]}")))
    finally:
        server.stop()
    assert 0 == code, err
    assert "in use by a running mailpulse" in err


def test_postqueue_that_cannot_run_is_an_error(shared: Path) -> None:
    """queue.enabled with a postqueue that does not exist: an error naming the command (the permission case
    runs against a real Postfix in tests/lab/test_unit_restrictions.py)."""
    (shared / "mail.log").write_text("")
    extra = f"postfix:\n  queue: {{enabled: true, command: {shared / 'no-postqueue'}}}\n"
    code, _, err = run_cli("check-config", "-c", str(_config(shared, extra=extra)))
    assert EX_CONFIG == code
    assert "error: postfix.queue.command:" in err
    assert "not_found" in err


# -- packaging ---------------------------------------------------------------------------------------------------
def test_build_requirement_supports_the_licence_expression() -> None:
    """project.license as an SPDX string (PEP 639) needs setuptools >= 77; the build requirement says so."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(data["project"]["license"], str)
    (setuptools,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.search(r">=\s*(\d+)", setuptools)
    assert minimum is not None, setuptools
    assert int(minimum.group(1)) >= 77, setuptools


def test_unit_documentation_exists_in_the_documented_install() -> None:
    """Every Documentation= of the unit is a file of the source tree the README installs to /opt/mailpulse/src,
    and ExecStart is the README's venv."""
    unit = (ROOT / "packaging" / "mailpulse.service").read_text()
    (docs,) = re.findall(r"^Documentation=(.+)$", unit, re.M)
    readme = (ROOT / "README.md").read_text()
    assert "/opt/mailpulse/src" in readme
    for url in docs.split():
        assert url.startswith("file:///opt/mailpulse/src/"), url
        assert (ROOT / url.removeprefix("file:///opt/mailpulse/src/")).is_file(), url
    (exec_start,) = re.findall(r"^ExecStart=(\S+)", unit, re.M)
    assert "/opt/mailpulse/venv/bin/mailpulse" == exec_start
    assert "python3 -m venv /opt/mailpulse/venv" in readme


def test_the_units_user_exists_per_the_readme() -> None:
    """The README creates the unit's User and adds it to the unit's log group."""
    unit = (ROOT / "packaging" / "mailpulse.service").read_text()
    (user,) = re.findall(r"^User=(\S+)", unit, re.M)
    readme = (ROOT / "README.md").read_text()
    assert f"adduser --system --group --home /var/lib/{user} {user}" in readme
    assert pwd.getpwnam("root")  # sanity: pwd works here


# -- /health ----------------------------------------------------------------------------------------------------
def test_health_reports_a_failing_queue_and_a_down_probe_mailbox(tmp_path: Path) -> None:
    """The daemon's /health says degraded (503) with the queue's bounded reason and each probe mailbox's
    state, where it used to say ok whatever the queue collection and the mailboxes did."""
    import json
    import signal
    import urllib.error
    import urllib.request

    from tests.helpers import wait_for

    port, closed = free_port(), free_port()
    log = tmp_path / "mail.log"
    log.write_text("")
    for name, text in (("hmac", "k" * 32), ("pw", "pw")):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o600)
    config = write_config(
        tmp_path / "c.yaml",
        f"""
state_dir: {tmp_path / "state"}
http: {{listen: '127.0.0.1:{port}'}}
sources: [{{name: mail, path: {log}, poll_interval: 0.2s}}]
postfix: {{queue: {{enabled: true, command: {tmp_path / "no-postqueue"}, interval: 1s}}}}
probes:
  secret_file: {tmp_path / "hmac"}
  routes: [{{name: r, host: 127.0.0.1, port: {closed}, tls: starttls, mail_from: a@example.test}}]
  targets:
    - {{name: box, address: b@example.test, host: 127.0.0.1, port: {closed}, tls: starttls, username: b,
        password_file: {tmp_path / "pw"}, timeout: 2s}}
  probes: [{{name: p, route: r, target: box, interval: 1h}}]
""",
    )
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip

    def health() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        wait_for(lambda: health()[1].get("probes", {}).get("mailboxes", {}).get("box", {}).get("status") == "down",
                 timeout=30)  # fmt: skip
        status, body = health()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert 503 == status
    assert "degraded" == body["status"]
    assert {"status": "failed", "reason": "not_found"} == body["queue"]
    assert {"status": "down", "reason": "imap_connect"} == body["probes"]["mailboxes"]["box"]
    assert {"p": "pending"} == body["probes"]["probes"]
    assert {"mail": True} == body["sources"]
