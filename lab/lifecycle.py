"""`up`, `down` and `status` of one lab directory."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab import outputs, packages, pki, procs, ready, services, state
from lab.configs import LabSpec, dns, dovecot, opendkim, postfix, rspamd
from lab.configs.dovecot import MAIL_USER
from lab.files import FileSpec, digest, ensure_dir, write_all
from lab.layout import RSPAMD_HS_CACHE, SHARED_CACHE, Paths, Ports

Log = Callable[[str], None]
READY_TIMEOUT_S = 90.0  # rspamd's first start compiles hyperscan; later starts take < 1 s


class LabError(RuntimeError):
    """The lab cannot be brought up as asked."""


@dataclass
class Timings:
    packages_s: float = 0.0
    prepare_s: float = 0.0
    start_s: float = 0.0
    total_s: float = 0.0
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)


def _ensure_mail_user() -> None:
    try:
        pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--home-dir",
                "/nonexistent",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                MAIL_USER,
            ],
            check=True,
        )


def _prepare_dirs(p: Paths) -> None:
    ensure_dir(p.root, 0o755)
    for inst in p.instances:
        for d in (inst.root, inst.etc, inst.spool):
            ensure_dir(d, 0o755)
        ensure_dir(inst.data, 0o700, "postfix", "postfix")
    for d in (
        p.postfix,
        p.central_log.parent,
        p.postsrsd_dir,
        p.dovecot,
        p.dovecot_run,
        p.sieve_before.parent,
        p.rspamd_etc,
        p.dns,
    ):
        ensure_dir(d, 0o755)
    ensure_dir(p.filter_dir, 0o755, services.UNPRIVILEGED, services.UNPRIVILEGED_GROUP)
    ensure_dir(p.mail, 0o770, MAIL_USER, MAIL_USER)
    ensure_dir(p.rspamd, 0o755, "_rspamd", "_rspamd")
    for d in (p.rspamd_db, p.rspamd_run):
        ensure_dir(d, 0o750, "_rspamd", "_rspamd")
    ensure_dir(p.redis, 0o750, "redis", "redis")
    ensure_dir(p.opendkim, 0o750, "opendkim", "opendkim")
    ensure_dir(p.secrets, 0o700)
    ensure_dir(p.mailpulse_dir, 0o700)
    ensure_dir(SHARED_CACHE, 0o755)
    ensure_dir(RSPAMD_HS_CACHE, 0o755, "_rspamd", "_rspamd")
    log = p.dns / "dnsmasq.log"  # dnsmasq opens its log after dropping privileges
    log.touch()
    os.chown(log, pwd.getpwnam("dnsmasq").pw_uid, 0)


def lab_spec(paths: Paths, st: state.LabState) -> LabSpec:
    pki.ensure_tls(paths)
    txt = pki.ensure_dkim(paths)
    external = pki.ensure_external_dkim(paths)
    pki.ensure_postsrsd_secret(paths)
    return LabSpec(paths, st, txt, pki.cert_fingerprint(paths.client_cert), external)


def _config_files(lab: LabSpec) -> list[FileSpec]:
    specs = [*postfix.files(lab), *dovecot.files(lab), *rspamd.files(lab), *dns.files(lab), services.redis_conf(lab)]
    if lab.dkim_mode == "opendkim":
        specs += opendkim.files(lab)
    return specs


def _compile_sieve(p: Paths) -> None:
    """Precompile the global script: LMTP runs as vmail and cannot write the binary next to it."""
    binary = p.sieve_before.with_suffix(".svbin")
    if binary.exists() and binary.stat().st_mtime >= p.sieve_before.stat().st_mtime:
        return
    subprocess.run(["sievec", "-c", str(p.dovecot_conf), str(p.sieve_before)], check=True, capture_output=True)


def _hash_file(p: Paths, svc: services.Service) -> Path:
    return p.root / f".{svc.name}.running-config"


def _check_ports_free(lab: LabSpec, svcs: list[services.Service]) -> None:
    """Fail early and clearly if a port of a not-yet-running service is taken by anything."""
    wanted: dict[int, str] = {}
    for svc in svcs:
        if svc.pid() is None:
            wanted.update(dict.fromkeys((*svc.tcp_ports, *svc.udp_ports), svc.name))
    taken = ready.ports_in_use(set(wanted))
    if taken:
        desc = ", ".join(f"{port} ({wanted[port]})" for port in sorted(taken))
        raise LabError(
            f"ports already in use by another process: {desc}; choose another --port-base "
            f"(this lab uses {lab.ports.base}..{lab.ports.base + 99})"
        )


def _start_or_refresh(lab: LabSpec, svcs: list[services.Service], t: Timings) -> None:
    p = lab.paths
    starting = []
    for svc in svcs:
        want = digest(svc.config)
        hash_file = _hash_file(p, svc)
        running = svc.pid()
        if running is not None and hash_file.exists() and hash_file.read_text() == want:
            continue
        if running is not None and svc.reload_cmd:
            services.run_quiet(svc.reload_cmd, p.daemons_log)
            t.restarted.append(svc.name)
        else:
            if running is not None:  # a reload does not re-create every listener; restart instead
                _stop_service(svc, p)
                t.restarted.append(svc.name)
            else:
                t.started.append(svc.name)
            starting.append((svc, procs.spawn(svc.start_cmd, p.root, p.daemons_log)))
        hash_file.write_text(want)
    for svc, proc in starting:
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{svc.name}: start command did not return") from exc
        if rc != 0:
            _hash_file(p, svc).unlink(missing_ok=True)
            raise LabError(f"{svc.name}: `{' '.join(svc.start_cmd)}` exited {rc}; see {p.daemons_log}")


def _wait_ready(lab: LabSpec, svcs: list[services.Service], timeout: float) -> None:
    def all_ready() -> bool:
        found = ready.listeners()
        tcp = {x.port for x in found if x.proto == "tcp" and x.address == "127.0.0.1"}
        udp = {x.port for x in found if x.proto == "udp" and x.address == "127.0.0.1"}
        return all(svc.is_ready(tcp, udp) for svc in svcs)

    try:
        ready.wait_until("every lab service", all_ready, timeout)
    except TimeoutError as exc:
        found = ready.listeners()
        tcp = {x.port for x in found if x.proto == "tcp"}
        udp = {x.port for x in found if x.proto == "udp"}
        bad = [s.name for s in svcs if not s.is_ready(tcp, udp)]
        raise LabError(f"{exc}: not ready: {', '.join(bad)}; see {lab.paths.daemons_log}") from exc


def up(
    root: Path,
    port_base: int | None = None,
    dkim: str | None = None,
    install: bool = True,
    log: Log = print,
    log_mode: str | None = None,
) -> tuple[LabSpec, Timings]:
    """Bring the lab in `root` up (idempotent): install, configure, start, wait until ready."""
    t0 = time.monotonic()
    t = Timings()
    if os.geteuid() != 0:
        raise LabError("the lab needs root (Postfix with a scratch config dir, Dovecot, rspamd)")
    if install:
        t.packages_s = packages.install(log=log)
    paths = Paths(root)
    _ensure_mail_user()
    _prepare_dirs(paths)
    st = state.resolve(paths, port_base, dkim, log_mode)
    old = state.load(paths)
    if old and old != st and any(s.pid() for s in services.build(lab_spec(paths, old))):
        log(
            f"lab settings changed ({old.port_base}/{old.dkim}/{old.log_mode} -> "
            f"{st.port_base}/{st.dkim}/{st.log_mode}): restarting"
        )
        down(root, log=log)
    st.save(paths)
    lab = lab_spec(paths, st)
    write_all(_config_files(lab))
    _compile_sieve(paths)
    svcs = services.build(lab)
    t.prepare_s = time.monotonic() - t0 - t.packages_s
    _check_ports_free(lab, svcs)
    t1 = time.monotonic()
    _start_or_refresh(lab, svcs, t)
    _wait_ready(lab, svcs, READY_TIMEOUT_S)
    t.start_s = time.monotonic() - t1
    outputs.write(lab)
    t.total_s = time.monotonic() - t0
    return lab, t


def _stop_service(svc: services.Service, p: Paths, wait: float = 10.0) -> None:
    pid = svc.pid()
    if pid is None:
        return
    if svc.stop_cmd:
        services.run_quiet(svc.stop_cmd, p.daemons_log)
    if procs.alive(pid):
        procs.terminate([pid], wait)


def down(root: Path, log: Log = print) -> list[int]:
    """Stop every process of the lab in `root`; return pids that could not be stopped (none, normally)."""
    paths = Paths(root)
    st = state.load(paths)
    if st is not None:
        lab = LabSpec(paths, st, "", "")
        svcs = services.build(lab) if paths.postfix_etc.exists() else []
        by_name = {s.name: s for s in svcs}
        # Postfix first: no new deliveries towards Dovecot and the milters while they stop
        for svc in svcs:
            if services.is_postfix(svc):
                _stop_service(by_name.pop(svc.name), paths)
        # the rest in parallel; SIGTERM to the master is what `doveadm stop` does too
        pids = [pid for pid in (s.pid() for s in by_name.values()) if pid]
        procs.signal_all(pids)
        procs.wait_gone(pids, 10.0)
        for svc in svcs:
            _hash_file(paths, svc).unlink(missing_ok=True)
    strays = procs.lab_pids(paths.root)
    if strays:
        log(f"stopping {len(strays)} leftover lab processes: {strays}")
    return procs.terminate(strays, 5.0)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    ready: bool


def status(root: Path) -> list[ServiceStatus]:
    paths = Paths(root)
    st = state.load(paths)
    if st is None:
        return []
    svcs = services.build(LabSpec(paths, st, "", ""))
    found = ready.listeners()
    tcp = {x.port for x in found if x.proto == "tcp"}
    udp = {x.port for x in found if x.proto == "udp"}
    return [ServiceStatus(s.name, s.pid(), s.is_ready(tcp, udp)) for s in svcs]


def lab_ports(root: Path) -> Ports | None:
    st = state.load(Paths(root))
    return Ports(st.port_base) if st else None
