"""Checks of what a valid config needs from the machine: can *this* user run it here?

``mailpulse check-config`` runs them after the config itself validated; ``mailpulse run`` runs the ones
that would otherwise end in a traceback (the state directory). Each finding is an error (the daemon
cannot start, or a configured part cannot work at all) or a warning (it will run, but something will
not work until the machine changes, e.g. a log file that does not exist yet). The checks act as the
calling user, so run ``check-config`` as the user the daemon runs as (``sudo -u mailpulse ...``).
"""

from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import shutil
import socket
import ssl
import stat
import urllib.request
from collections.abc import Sequence
from typing import Any

from mailpulse.exporter.config import Config, SourceConfig
from mailpulse.exporter.feature import ERROR, WARNING, AnyFeature, Finding

HEALTH_TIMEOUT = 2.0


def whoami() -> str:
    uid = os.geteuid()
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check_all(config: Config, features: Sequence[AnyFeature]) -> list[Finding]:
    """The kernel's checks (state dir, log sources, listen address), then each active feature's."""
    findings = check_state_dir(config.state_dir)
    for i, src in enumerate(config.sources):
        findings += check_source(src, f"sources[{i}]")
    findings += check_listen(config)
    for feature in features:
        section = config.section(feature)
        if feature.active(section):
            findings += feature.preflight(section)
    return findings


# -- state directory -----------------------------------------------------------------------------------------
def check_state_dir(path: str) -> list[Finding]:
    """The state dir must exist and be writable, or be creatable (its nearest existing parent writable)."""
    where = "state_dir"
    hint = (f"create it for the daemon's user (install -d -o USER {path}; the shipped systemd unit does this "
            "with StateDirectory=) or set state_dir to a directory this user can write")  # fmt: skip
    if os.path.exists(path):
        if not os.path.isdir(path):
            return [Finding(ERROR, where, f"{path} is not a directory")]
        if not os.access(path, os.W_OK | os.X_OK):
            return [Finding(ERROR, where, f"{path} is not writable by {whoami()}: {hint}")]
        offsets = os.path.join(path, "offsets")
        if os.path.exists(offsets) and not os.access(offsets, os.W_OK | os.X_OK):
            return [Finding(ERROR, where, f"{offsets} is not writable by {whoami()}")]
        return []
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        return [Finding(ERROR, where, f"{path} does not exist and {whoami()} cannot create it "
                                      f"({parent} is not writable): {hint}")]  # fmt: skip
    return []


# -- log sources ---------------------------------------------------------------------------------------------
def check_source(src: SourceConfig, where: str) -> list[Finding]:
    if src.type == "journald":
        if shutil.which(src.journalctl) is None:
            return [Finding(ERROR, f"{where}.journalctl", f"{src.journalctl}: command not found")]
        return []
    path, key = src.path, f"{where}.path"
    if not os.path.exists(path):
        parent = os.path.dirname(path) or "."
        if os.path.isdir(parent) and not os.access(parent, os.X_OK):
            return [Finding(ERROR, key, f"{parent} cannot be entered by {whoami()}{_group_hint(parent)}")]
        return [Finding(WARNING, key, f"{path} does not exist (yet): mailpulse waits for it and reports "
                                      "mailpulse_log_source_up 0 until it appears")]  # fmt: skip
    if os.path.isdir(path):
        return [Finding(ERROR, key, f"{path} is a directory, not a log file")]
    if not os.access(path, os.R_OK):
        return [Finding(ERROR, key, f"{path} is not readable by {whoami()}{_group_hint(path)}")]
    return []


def _group_hint(path: str) -> str:
    """Name the group that may read ``path``: on Debian, /var/log/mail.log is root:adm 0640."""
    try:
        st = os.stat(path)
        group = grp.getgrgid(st.st_gid).gr_name
    except (OSError, KeyError):
        return ""
    if st.st_mode & stat.S_IRGRP:
        return (f" (group {group} can read it: add the user to it, e.g. `adduser mailpulse {group}`; "
                f"the shipped unit has SupplementaryGroups=adm)")  # fmt: skip
    return ""


# -- HTTP listener -------------------------------------------------------------------------------------------
def check_listen(config: Config) -> list[Finding]:
    http, where = config.http, "http.listen"
    findings: list[Finding] = []
    family = socket.AF_INET6 if ":" in http.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            sock.bind((http.host, http.port))
    except OSError as exc:
        address = f"{http.host}:{http.port}"
        if exc.errno == errno.EADDRINUSE:
            if _is_mailpulse(config):
                message = f"{address} is in use by a running mailpulse (fine before a reload; a second one fails)"
                findings.append(Finding(WARNING, where, message))
            else:
                findings.append(Finding(ERROR, where, f"{address} is in use by another program"))
        elif exc.errno == errno.EACCES:
            findings.append(Finding(ERROR, where, f"{address}: permission denied (ports below 1024 need "
                                                  "CAP_NET_BIND_SERVICE; use a port above 1024)"))  # fmt: skip
        else:
            findings.append(Finding(ERROR, where, f"cannot listen on {address}: {exc.strerror or exc}"))
    if http.tls_cert_file and http.tls_key_file:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(http.tls_cert_file, http.tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            findings.append(Finding(ERROR, "http.tls", f"cannot load the certificate and key: {exc}"))
    return findings


def _is_mailpulse(config: Config) -> bool:
    """Whether the program on the port answers /health like mailpulse (any status: degraded is fine)."""
    http = config.http
    host = f"[{http.host}]" if ":" in http.host else (http.host or "127.0.0.1")
    if host in ("0.0.0.0", "[::]"):  # noqa: S104 - connecting, not binding
        host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"  # noqa: S104
    scheme = "https" if http.tls_cert_file else "http"
    ctx = ssl._create_unverified_context() if scheme == "https" else None  # noqa: S323 - identifying, not trusting
    try:
        with urllib.request.urlopen(f"{scheme}://{host}:{http.port}/health", timeout=HEALTH_TIMEOUT,  # noqa: S310
                                    context=ctx) as resp:  # fmt: skip
            body: Any = json.loads(resp.read(65536))
    except urllib.error.HTTPError as exc:  # 503 = degraded, still mailpulse
        try:
            body = json.loads(exc.read(65536))
        except ValueError:
            return False
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("status") in ("ok", "degraded") and "sources" in body
