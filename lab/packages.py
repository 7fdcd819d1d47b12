"""Install the Debian packages the lab needs, without starting any system daemon."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# dnsmasq-base, not dnsmasq: the latter adds a system service that would want port 53 on boot.
PACKAGES: tuple[str, ...] = (
    "postfix",
    "dovecot-imapd",
    "dovecot-lmtpd",
    "dovecot-sieve",
    "rspamd",
    "redis-server",
    "opendkim",
    "opendkim-tools",
    "dnsmasq-base",
    "postsrsd",
    "openssl",
    "iproute2",
    # the posture lab (lab/posture): knotd serves a DNSSEC-signed zone, unbound validates it (the AD bit);
    # ldnsutils (ldns-dane, ldns-signzone) for looking at DANE/DNSSEC by hand
    "knot",
    "unbound",
    "ldnsutils",
)

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
APT_LISTS = Path("/var/lib/apt/lists")
# Preseed so postfix's postinst neither asks nor writes /etc/postfix/main.cf.
DEBCONF_PRESEED = (
    "postfix postfix/main_mailer_type select No configuration\npostfix postfix/mailname string mail.example.test\n"
)
APT_OPTS = ("-o", "DPkg::Lock::Timeout=600", "-o", "Dpkg::Options::=--force-confold")


class PackageError(RuntimeError):
    """apt could not install what the lab needs."""


def missing(packages: Iterable[str] = PACKAGES) -> list[str]:
    """Return the packages that dpkg does not report as installed."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith("install ok installed")}
    return [p for p in packages if p not in installed]


def _lists_present() -> bool:
    return any(p.name.endswith(("Packages", "Packages.lz4", "Packages.gz", "Packages.xz")) for p in APT_LISTS.glob("*"))


def _apt(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        ["apt-get", *APT_OPTS, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if proc.returncode != 0:
        raise PackageError(f"apt-get {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def install(packages: Iterable[str] = PACKAGES, log: Callable[[str], None] = print) -> float:
    """Install what is missing; return the seconds spent in apt (0.0 if nothing was missing).

    A temporary policy-rc.d ("exit 101") keeps maintainer scripts from starting the system
    postfix/dovecot/rspamd/redis/opendkim; the lab runs its own instances.
    """
    todo = missing(packages)
    if not todo:
        return 0.0
    if os.geteuid() != 0:
        raise PackageError(f"missing packages {' '.join(todo)} and not root")
    t0 = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["debconf-set-selections"], input=DEBCONF_PRESEED, text=True, check=True, env=env)
    own_policy = not POLICY_RC_D.exists()
    if own_policy:
        POLICY_RC_D.write_text("#!/bin/sh\n# temporary, written by mailpulse lab/mail-lab\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        if not _lists_present():
            log("apt-get update (no package lists)")
            _apt(["update", "-qq"], env)
        log(f"installing: {' '.join(todo)}")
        _apt(["install", "-y", "-qq", "--no-install-recommends", *todo], env)
    finally:
        if own_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    still = missing(packages)
    if still:
        raise PackageError(f"still missing after apt-get install: {' '.join(still)}")
    return time.monotonic() - t0
