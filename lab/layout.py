"""Where everything of one lab lives: ports derived from the port base, paths under DIR, accounts.

Every listener of a lab is `port_base + offset` with offsets below 100, so two labs whose bases
differ by at least 100 never collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# Postfix's SMTP client delivers to the lab MX from this address, so rspamd at the MX sees a
# client other than the submitting probe (127.0.0.1) and SPF has something real to check.
MTA_SOURCE = "127.0.0.2"
# "The internet": direct injections at the MX (spoofs, external spam, tampered mail) come from here.
EXTERNAL_SOURCE = "127.0.0.3"
# The SRS forwarder's SMTP client sends from here; the SRS domain's SPF record authorizes it.
SRS_SOURCE = "127.0.0.4"

DEFAULT_PORT_BASE = 20000
PORT_SPAN = 100

OWN_DOMAIN = "example.test"  # the lab's own domain: submission users, DKIM signing, SPF, DMARC
MAILBOX_DOMAINS = ("remote.test", "partner.test")  # the "external" mailbox providers (Dovecot)
LOCAL_MAILBOX_DOMAINS = (OWN_DOMAIN, *MAILBOX_DOMAINS)  # every domain Dovecot hosts
EXTERNAL_SENDER_DOMAIN = "sender.test"  # a well-configured outside sender (SPF for 127.0.0.3, DKIM, DMARC)
SRS_DOMAIN = "srs.example.test"  # the forwarder's SRS domain: SRS0=...@srs.example.test, SPF for SRS_SOURCE
OUTSIDE_DOMAIN_MAILBOX = "outside.test"  # mailboxes "out there", reached only through the SRS forwarder
DKIM_SELECTOR = "lab"

SENDER = f"probe@{OWN_DOMAIN}"
TARGETS = tuple(f"probe@{d}" for d in MAILBOX_DOMAINS)  # the probe targets, one per mailbox domain
POSTMASTER = f"postmaster@{OWN_DOMAIN}"
# The forward route: an alias on the MX whose mail goes through the SRS forwarder to an outside mailbox.
FORWARD_ALIAS = f"forward@{OWN_DOMAIN}"
FORWARD_TARGET = f"probe@{OUTSIDE_DOMAIN_MAILBOX}"
EXTERNAL_PROBE_SENDER = f"probe@{EXTERNAL_SENDER_DOMAIN}"  # the forward probe's envelope sender and From:
# Every Dovecot user (login = address); SENDER also receives the NDRs.
MAILBOX_USERS = (*TARGETS, SENDER, POSTMASTER, FORWARD_TARGET)
# Known to Postfix, unknown to Dovecot: accepted, then bounced by LMTP with 5.1.1.
GHOST = f"ghost@{MAILBOX_DOMAINS[0]}"

# Routing domains handled by the fake remote MX or by nothing at all.
ACCEPT_DOMAIN = "accept.test"  # fake remote says 250 (and discards)
TEMPFAIL_DOMAIN = "tempfail.test"  # fake remote says 450 -> status=deferred
BOUNCE_DOMAIN = "bounce.test"  # fake remote says 550 -> status=bounced + NDR
UNREACHABLE_DOMAIN = "deferred.test"  # routed to 127.0.0.1:1 -> connection refused -> deferred
OUTSIDE_DOMAIN = "elsewhere.test"  # not routed at all: relay access denied on the MX

# A body line containing this token is rewritten by the SMTP client on its way to the MX,
# i.e. after DKIM signing: the MX then sees a broken body hash (smtp_body_checks REPLACE).
TAMPER_TOKEN = "LAB-TAMPER-ME"
TAMPERED_TEXT = "LAB-TAMPERED-IN-TRANSIT"


@dataclass(frozen=True)
class Ports:
    """All TCP ports of one lab (127.0.0.1 only)."""

    base: int

    def _at(self, offset: int) -> int:
        return self.base + offset

    @property
    def relay(self) -> int:
        return self._at(24)

    @property
    def outside_mx(self) -> int:  # the outside provider's receiving smtpd (mx.outside.test)
        return self._at(10)

    @property
    def srs_smtpd(self) -> int:  # the SRS forwarder host's smtpd (mail from the MX)
        return self._at(27)

    @property
    def srs_forward(self) -> int:  # postsrsd forward (sender) lookup, Postfix tcp_table
        return self._at(28)

    @property
    def srs_reverse(self) -> int:  # postsrsd reverse (recipient) lookup
        return self._at(29)

    @property
    def content_filter(self) -> int:  # the MX's content filter (lab/filter.py), amavis' 10024
        return self._at(30)

    @property
    def reinject(self) -> int:  # the MX's re-injection smtpd after the filter, amavis' 10025
        return self._at(31)

    @property
    def mx(self) -> int:
        return self._at(25)

    @property
    def fake_remote(self) -> int:
        return self._at(26)

    @property
    def milter(self) -> int:
        return self._at(32)

    @property
    def rspamd_normal(self) -> int:
        return self._at(33)

    @property
    def rspamd_controller(self) -> int:
        return self._at(34)

    @property
    def imap(self) -> int:
        return self._at(43)

    @property
    def metrics(self) -> int:
        return self._at(47)

    @property
    def dns(self) -> int:
        return self._at(53)

    @property
    def smtps(self) -> int:
        return self._at(65)

    @property
    def redis(self) -> int:
        return self._at(79)

    @property
    def submission(self) -> int:
        return self._at(87)

    @property
    def prometheus(self) -> int:
        """scripts/demo's Prometheus (not a lab daemon, like ``metrics``)."""
        return self._at(88)

    @property
    def alertmanager(self) -> int:
        """scripts/demo's Alertmanager (not a lab daemon)."""
        return self._at(89)

    @property
    def opendkim(self) -> int:
        return self._at(91)

    @property
    def imaps(self) -> int:
        return self._at(93)

    def all(self, dkim: str = "rspamd") -> dict[str, int]:
        """Every port a running lab listens on (the metrics port is mailpulse's, not the lab's)."""
        names = [
            "relay",
            "mx",
            "fake_remote",
            "outside_mx",
            "srs_smtpd",
            "srs_forward",
            "srs_reverse",
            "content_filter",
            "reinject",
            "milter",
            "rspamd_normal",
            "rspamd_controller",
            "imap",
            "dns",
            "smtps",
            "redis",
            "submission",
            "imaps",
        ]
        if dkim == "opendkim":
            names.append("opendkim")
        return {n: getattr(self, n) for n in names}


def check_port_base(base: int) -> int:
    """Reject bases whose port range would leave 1024..65535."""
    if not 1024 <= base <= 65535 - PORT_SPAN:
        raise ValueError(f"port base {base} outside 1024..{65535 - PORT_SPAN}")
    return base


@dataclass(frozen=True)
class Paths:
    """Every file and directory of one lab, all under `root` (except the shared rspamd cache)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).absolute())

    # --- bookkeeping
    @property
    def state(self) -> Path:
        return self.root / "lab-state.json"

    @property
    def env(self) -> Path:
        return self.root / "lab.env"

    @property
    def mailpulse_yaml(self) -> Path:
        return self.root / "mailpulse.yaml"

    @property
    def daemons_log(self) -> Path:  # stdout/stderr of every daemon we start
        return self.root / "daemons.log"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def password_file(self) -> Path:
        return self.secrets / "password"

    @property
    def mailpulse_dir(self) -> Path:
        return self.root / "mailpulse"

    # --- TLS and DKIM
    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.tls / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.tls / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.tls / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.tls / "client.key"

    @property
    def dkim(self) -> Path:
        return self.root / "dkim"

    @property
    def dkim_key(self) -> Path:  # rspamd's path scheme: $domain.$selector.key
        return self.dkim / f"{OWN_DOMAIN}.{DKIM_SELECTOR}.key"

    @property
    def dkim_txt(self) -> Path:
        return self.dkim / f"{OWN_DOMAIN}.{DKIM_SELECTOR}.txt"

    @property
    def external_dkim_key(self) -> Path:  # the outside sender's key (the forward probe signs with it)
        return self.dkim / f"{EXTERNAL_SENDER_DOMAIN}.{DKIM_SELECTOR}.key"

    # --- Postfix: one instance per host (INSTANCES), each under postfix/<name>/
    @property
    def postfix(self) -> Path:
        return self.root / "postfix"

    def instance(self, name: str) -> PostfixPaths:
        return PostfixPaths(name, self.postfix / name)

    @property
    def instances(self) -> list[PostfixPaths]:
        return [self.instance(i.name) for i in INSTANCES]

    # the submission host: the instance LAB_POSTFIX_CONFIG names first (queue metrics, postqueue -i)
    @property
    def postfix_etc(self) -> Path:
        return self.instance("submit").etc

    @property
    def postfix_spool(self) -> Path:
        return self.instance("submit").spool

    @property
    def central_log(self) -> Path:  # log mode "central": every instance writes here
        return self.root / "log" / "maillog"

    def postfix_log_of(self, name: str, log_mode: str) -> Path:
        return self.central_log if log_mode == "central" else self.instance(name).log

    # --- the MX's content filter and the SRS forwarder's postsrsd
    @property
    def filter_dir(self) -> Path:
        return self.root / "filter"

    @property
    def filter_pid(self) -> Path:
        return self.filter_dir / "filter.pid"

    @property
    def filter_log(self) -> Path:
        return self.filter_dir / "filter.log"

    @property
    def postsrsd_dir(self) -> Path:
        return self.root / "postsrsd"

    @property
    def postsrsd_pid(self) -> Path:
        return self.postsrsd_dir / "postsrsd.pid"

    @property
    def postsrsd_secret(self) -> Path:
        return self.postsrsd_dir / "secret"

    # --- Dovecot
    @property
    def dovecot(self) -> Path:
        return self.root / "dovecot"

    @property
    def dovecot_conf(self) -> Path:
        return self.dovecot / "dovecot.conf"

    @property
    def dovecot_run(self) -> Path:
        return self.dovecot / "run"

    @property
    def dovecot_pid(self) -> Path:
        return self.dovecot_run / "master.pid"

    @property
    def dovecot_log(self) -> Path:
        return self.dovecot / "dovecot.log"

    @property
    def dovecot_users(self) -> Path:
        return self.dovecot / "users"

    @property
    def sieve_before(self) -> Path:
        return self.dovecot / "sieve" / "spam-to-junk.sieve"

    @property
    def lmtp_socket(self) -> Path:
        return self.dovecot_run / "lmtp-postfix"

    @property
    def auth_socket(self) -> Path:
        return self.dovecot_run / "auth-postfix"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    # --- rspamd, redis, dnsmasq, opendkim
    @property
    def rspamd(self) -> Path:
        return self.root / "rspamd"

    @property
    def rspamd_etc(self) -> Path:  # LOCAL_CONFDIR overlay; /etc/rspamd is only read
        return self.rspamd / "etc"

    @property
    def rspamd_db(self) -> Path:
        return self.rspamd / "db"

    @property
    def rspamd_run(self) -> Path:
        return self.rspamd / "run"

    @property
    def rspamd_pid(self) -> Path:
        return self.rspamd_run / "rspamd.pid"

    @property
    def rspamd_log(self) -> Path:
        return self.rspamd / "rspamd.log"

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    @property
    def redis_pid(self) -> Path:
        return self.redis / "redis.pid"

    @property
    def dns(self) -> Path:
        return self.root / "dns"

    @property
    def dnsmasq_conf(self) -> Path:
        return self.dns / "dnsmasq.conf"

    @property
    def dnsmasq_pid(self) -> Path:
        return self.dns / "dnsmasq.pid"

    @property
    def opendkim(self) -> Path:
        return self.root / "opendkim"

    @property
    def opendkim_conf(self) -> Path:
        return self.opendkim / "opendkim.conf"

    @property
    def opendkim_pid(self) -> Path:
        return self.opendkim / "opendkim.pid"

    @property
    def opendkim_key(self) -> Path:
        return self.opendkim / f"{DKIM_SELECTOR}.private"


@dataclass(frozen=True)
class Instance:
    """One Postfix instance of the lab: a host of the seed topology."""

    name: str
    hostname: str  # myhostname; its first label is the host field of every log line
    role: str


INSTANCES = (
    Instance("submit", "mail.example.test", "submission host: 587/465, SASL, DKIM signing; fake remote MX"),
    Instance("relay", "relay.example.test", "MTA relay: client-certificate auth, relays to the MX"),
    Instance("mx", "mx.example.test", "MX: rspamd, greylisting, content filter, aliases, LMTP; outside MX"),
    Instance("srs", "srs.example.test", "SRS forwarder: postsrsd, sends forwarded mail to outside mailboxes"),
)
LOG_MODES = ("per-host", "central")


@dataclass(frozen=True)
class PostfixPaths:
    """The directories and files of one Postfix instance."""

    name: str
    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def pid(self) -> Path:
        return self.spool / "pid" / "master.pid"

    @property
    def log(self) -> Path:  # log mode "per-host"
        return self.root / "mail.log"


# Compiled hyperscan databases survive across lab dirs here, so a fresh DIR starts warm
# (rspamd's first start compiles them for ~7 s). Content-addressed by rspamd, safe to share.
SHARED_CACHE = Path("/var/cache/mailpulse-lab")
RSPAMD_HS_CACHE = SHARED_CACHE / "rspamd-hs"

# Set in the environment of every daemon a lab starts; `down` finds leftovers by its exact value.
MARKER_ENV = "MAILPULSE_LAB_DIR"

# rspamd test patterns (enable_test_patterns = true), valid in a text part of 69 B..8 KiB:
GTUBE_REJECT = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# the add-header variant: rspamd adds X-Spam: Yes, sieve files the message into Junk
GTUBE_ADD_HEADER = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# rspamd adds the value of this header to the score (lab rule LAB_SCORE); 8 means add header -> Junk.
SCORE_HEADER = "X-Lab-Score"
