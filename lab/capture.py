"""`mail-lab capture-fixtures`: a fresh lab, the traffic driver, then the real logs as test fixtures.

Output (tests/fixtures/lab/): postfix.log, rspamd.log, dovecot.log, traffic.json (the driver's
report: what was done, with queue IDs and Message-IDs) and MANIFEST.json (versions, port base,
counts). The temporary lab directory is replaced by /srv/mail-lab everywhere, so fixtures from
different captures differ only in what really differs (times, queue IDs, ports).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import lifecycle, portpick
from lab.layout import Paths
from lab.traffic import run as run_traffic

PLACEHOLDER_DIR = "/srv/mail-lab"
# postfix.log: the lab runs in the central log mode here, so one file holds every Postfix instance
FILES = {"postfix.log": "central_log", "rspamd.log": "rspamd_log", "dovecot.log": "dovecot_log"}


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"


def versions() -> dict[str, str]:
    return {
        "postfix": _version(["postconf", "-d", "-h", "mail_version"]),
        "rspamd": _version(["rspamd", "--version"]),
        "dovecot": _version(["dovecot", "--version"]),
        "redis": _version(["redis-server", "--version"]),
        "dnsmasq": _version(["dnsmasq", "--version"]),
    }


def _normalize(text: str, root: Path) -> str:
    return text.replace(str(root), PLACEHOLDER_DIR)


def capture(
    out: Path, port_base: int | None = None, scale: int = 3, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run a fresh lab with `scale` x every traffic kind; write the fixtures into `out`."""
    root = Path(tempfile.mkdtemp(prefix="mplab-cap-", dir="/tmp"))
    base = port_base or portpick.free_port_base(owner=root)
    try:
        lab, _t = lifecycle.up(root, base, log=log, log_mode="central")
        report = run_traffic(lab.paths.env, scale=scale, log=log)
        time.sleep(0.5)  # let postlogd write the last lines
    finally:
        lifecycle.down(root, log=log)
        if port_base is None:
            portpick.release(base)
    paths = Paths(root)
    out.mkdir(parents=True, exist_ok=True)
    for name, attr in FILES.items():
        raw = getattr(paths, attr).read_bytes()
        key = name.split(".")[0]
        # the report's byte offsets must point into the normalized text
        for offsets in (report["log_offsets"], report["log_end_offsets"]):
            head = raw[: offsets[key]].decode(errors="replace")
            offsets[key] = len(_normalize(head, root).encode())
        (out / name).write_text(_normalize(raw.decode(errors="replace"), root))
    (out / "traffic.json").write_text(_normalize(json.dumps(report, indent=2), root) + "\n")
    manifest = {
        "captured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": f"lab/mail-lab capture-fixtures --scale {scale}",
        "lab_dir": PLACEHOLDER_DIR,
        "port_base": base,
        "dkim_mode": report["dkim_mode"],
        "versions": versions(),
        "files": {name: sum(1 for _ in (out / name).open()) for name in FILES},
        "counts": report["counts"],
        "outcomes": report["outcomes"],
        "derived": report["derived"],
        "notes": "logs cover the whole lab life: start, traffic, stop; traffic.json log_offsets and "
        "log_end_offsets delimit, per log, the bytes written during the traffic run",
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    log(f"fixtures written to {out}: {manifest['files']}")
    return manifest


def capture_multihost(out: Path, scale: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Two fresh labs with `scale` x every traffic kind: one per-host (a log per Postfix instance:
    <instance>.log, named after the host), one central (central.log, every host in one file, hostnames
    tell them apart). Each with its traffic report (per-host.json, central.json: queue IDs on every hop,
    Message-IDs) and the content filter's own log. For the message tracker's tests."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, int] = {}
    reports: dict[str, Any] = {}
    for mode in ("per-host", "central"):
        root = Path(tempfile.mkdtemp(prefix="mplab-cap-", dir="/tmp"))
        base = portpick.free_port_base(owner=root)
        try:
            lab, _t = lifecycle.up(root, base, log=log, log_mode=mode)
            report = run_traffic(lab.paths.env, scale=scale, log=log)
            time.sleep(0.5)  # let postlogd write the last lines
        finally:
            lifecycle.down(root, log=log)
            portpick.release(base)
        paths = Paths(root)
        logs = {f"{i.name}.log": i.log for i in paths.instances} if mode == "per-host" else {}
        logs = logs or {"central.log": paths.central_log}
        if mode == "per-host":
            logs["filter.log"] = paths.filter_log
        for name, path in logs.items():
            (out / name).write_text(_normalize(path.read_text(errors="replace"), root))
            files[name] = sum(1 for _ in (out / name).open())
        # offsets are into the raw files; the fixtures keep whole lab lives, so they are dropped here
        for key in ("log_offsets", "log_end_offsets"):
            report.pop(key, None)
        (out / f"{mode}.json").write_text(_normalize(json.dumps(report, indent=2), root) + "\n")
        reports[mode] = {"counts": report["counts"], "outcomes": report["outcomes"], "problems": report["problems"]}
        shutil.rmtree(root, ignore_errors=True)
    manifest = {
        "captured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": f"lab/mail-lab capture-fixtures --multihost --scale {scale}",
        "lab_dir": PLACEHOLDER_DIR,
        "versions": versions(),
        "files": files,
        "runs": reports,
        "notes": "per-host: submit.log (host mail, and fake-remote), relay.log, mx.log (host mx: the MX, its "
        "content filter re-injection postfix/10025/smtpd, and the outside receiver postfix/outside), srs.log; "
        "central.log: another lab life with every instance in one file; whole lab lives: start, traffic, stop",
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"multi-host fixtures written to {out}: {files}")
    return manifest
