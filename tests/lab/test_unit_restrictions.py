"""The daemon under the shipped systemd unit's restrictions, against the lab's real Postfix.

systemd itself does not run here (no PID 1 systemd in the test machine), so the unit's process
credentials are reproduced with setpriv(1): the unit's User (or `nobody` where that user does not
exist: what matters is an unprivileged uid), its SupplementaryGroups (those that exist here) and
NoNewPrivileges. ProtectSystem= and the other sandboxing options are not reproduced: they restrict
writes and devices, and postqueue -j writes nothing.

The regression: with NoNewPrivileges=yes the kernel ignores postqueue's setgid-postdrop bit, so
postqueue could not reach showq ("Permission denied") and the queue metrics never worked under the
unit while /health said ok. The unit now lists postdrop in SupplementaryGroups.
"""

from __future__ import annotations

import configparser
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.envfile import LabEnv
from tests.helpers import free_port, scrape, value, wait_for

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "mailpulse.service"
pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]


def unit_service() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return dict(parser["Service"])


def unit_credentials(groups: list[str] | None = None) -> list[str]:
    """setpriv arguments for the unit's user, group, supplementary groups and NoNewPrivileges."""
    service = unit_service()
    user = service["User"]
    try:
        pwd.getpwnam(user)
    except KeyError:
        user = "nobody"  # the unit's user is not created on the test machine; any unprivileged uid will do
    group = service["Group"]
    try:
        grp.getgrnam(group)
    except KeyError:
        group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    wanted = service["SupplementaryGroups"].split() if groups is None else groups
    present = [g for g in wanted if _group_exists(g)]
    args = ["setpriv", f"--reuid={user}", f"--regid={group}"]
    args += [f"--groups={','.join(present)}"] if present else ["--clear-groups"]
    if service.get("NoNewPrivileges") == "yes":
        args.append("--no-new-privs")
    return args


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory the unprivileged user can traverse (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="mp-unit-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def start_daemon(mail_lab: LabEnv, workdir: Path, credentials: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    uid = pwd.getpwnam(credentials[1].split("=", 1)[1]).pw_uid
    state = workdir / f"state-{len(list(workdir.iterdir()))}"
    state.mkdir()
    os.chown(state, uid, -1)  # what StateDirectory= does
    port = free_port()
    config = state.with_suffix(".yaml")
    config.write_text(
        f"state_dir: {state}\nhttp: {{listen: '127.0.0.1:{port}'}}\n"
        f"sources:\n  - {{name: postfix, path: {mail_lab['LAB_POSTFIX_LOG']}, poll_interval: 0.2s}}\n"
        f"postfix:\n  queue: {{enabled: true, config_dir: {mail_lab['LAB_POSTFIX_CONFIG'].split()[0]}, "
        "interval: 1s}\n"
    )
    config.chmod(0o644)
    proc = subprocess.Popen([*credentials, sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def postqueue_counts(mail_lab: LabEnv) -> Counter[str]:
    out = subprocess.run(["postqueue", "-c", mail_lab["LAB_POSTFIX_CONFIG"].split()[0], "-j"], capture_output=True,
                         text=True, check=True, timeout=60).stdout  # fmt: skip
    return Counter(json.loads(line)["queue_name"] for line in out.splitlines() if line.strip())


def test_the_unit_lists_postdrop_and_keeps_no_new_privileges() -> None:
    """The fix is in the unit: postdrop among the supplementary groups, NoNewPrivileges kept on."""
    service = unit_service()
    assert "postdrop" in service["SupplementaryGroups"].split()
    assert "yes" == service["NoNewPrivileges"]


def test_queue_metrics_work_under_the_units_credentials(mail_lab: LabEnv, workdir: Path) -> None:
    """As the unit's user with its groups and no-new-privs, postqueue -j reaches the lab's real Postfix:
    queue_up is 1, the counts equal root's postqueue -j, and /health reports the queue ok."""
    if os.geteuid() != 0:
        pytest.skip("setpriv to another user needs root")
    proc, port = start_daemon(mail_lab, workdir, unit_credentials())
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_postfix_queue_up") == 1, timeout=30)
        samples = scrape(port)
        expected = postqueue_counts(mail_lab)
        for queue in ("active", "incoming", "deferred", "hold", "maildrop"):
            assert expected.get(queue, 0) == value(samples, "mailpulse_postfix_queue_messages", queue=queue), queue
        status, body = health(port)
        assert (200, "ok") == (status, body["queue"]["status"])
        assert 0 == value(samples, "mailpulse_postfix_queue_collect_errors_total")
    finally:
        output = stop(proc)
    assert "Traceback" not in output, output


def test_without_postdrop_the_queue_fails_and_health_says_so(mail_lab: LabEnv, workdir: Path) -> None:
    """The control: the same credentials without postdrop reproduce the bug (showq: Permission denied), and
    /health is now degraded with the reason instead of ok."""
    if os.geteuid() != 0:
        pytest.skip("setpriv to another user needs root")
    groups = [g for g in unit_service()["SupplementaryGroups"].split() if g != "postdrop"]
    proc, port = start_daemon(mail_lab, workdir, unit_credentials(groups))
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_postfix_queue_collect_errors_total", reason="permission") >= 1,
                 timeout=30)  # fmt: skip
        assert 0 == value(scrape(port), "mailpulse_postfix_queue_up")
        status, body = health(port)
        assert (503, "degraded") == (status, body["status"])
        assert ("failed", "permission") == (body["queue"]["status"], body["queue"]["reason"])
    finally:
        output = stop(proc)
    assert "Permission denied" in output  # the one log line per change of state names postqueue's error


def test_check_config_under_the_units_credentials(mail_lab: LabEnv, workdir: Path) -> None:
    """check-config run with the unit's credentials passes; without postdrop it names the missing group
    and exits 78 (it runs the same real postqueue)."""
    if os.geteuid() != 0:
        pytest.skip("setpriv to another user needs root")
    port = free_port()
    state = workdir / "state"
    state.mkdir()
    os.chown(state, pwd.getpwnam(unit_credentials()[1].split("=", 1)[1]).pw_uid, -1)
    config = workdir / "check.yaml"
    config.write_text(
        f"state_dir: {state}\nhttp: {{listen: '127.0.0.1:{port}'}}\n"
        f"sources:\n  - {{name: postfix, path: {mail_lab['LAB_POSTFIX_LOG']}}}\n"
        f"postfix:\n  queue: {{enabled: true, config_dir: {mail_lab['LAB_POSTFIX_CONFIG'].split()[0]}}}\n"
    )
    config.chmod(0o644)

    def check(credentials: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*credentials, sys.executable, "-m", "mailpulse", "check-config", "-c", str(config)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    good = check(unit_credentials())
    assert (0, "") == (good.returncode, good.stderr)
    groups = [g for g in unit_service()["SupplementaryGroups"].split() if g != "postdrop"]
    bad = check(unit_credentials(groups))
    assert 78 == bad.returncode
    assert "postfix.queue" in bad.stderr
    assert "postdrop" in bad.stderr
