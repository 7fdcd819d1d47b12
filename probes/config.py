"""The ``probes:`` section of the config: routes (how to send), targets (where to look) and probes.

Every problem is recorded with its key path (``probes.probes[2].route: unknown route 'x' ...``) through
:class:`exporter.configtools.Node`; nothing here raises. Schema: docs/CONTRACTS.md, user guide:
docs/probes.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mailpulse.exporter.configtools import NAME_RE, Node, Secret
from mailpulse.probes.message import DEFAULT_LOCATION, LOCATION_RE, OWN_HEADERS

# the Authentication-Results values an expectation may name (probes/verdicts.py RESULTS)
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy")

TLS_MODES = ("implicit", "starttls")  # never opportunistic: a stripped STARTTLS must fail the probe
TARGET_KINDS = ("imap", "autoresponder")
PROVIDERS = ("dovecot", "gmail", "microsoft", "yahoo", "generic")
WATCH_MODES = ("idle", "poll")
CLEANUP_MODES = ("delete", "trash", "keep")
JUNK = "\\Junk"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,76}$")
# Gmail keeps a message while any label is left: deleting it from INBOX only removes the label, so
# probes are moved to \Trash there. Everyone else expunges by UID.
DEFAULT_CLEANUP = {"gmail": "trash"}
LOCATION_ENV = "MAILPULSE_PROBE_LOCATION"  # overrides probes.location: one config file for every prober
DEFAULT_START_JITTER = 30.0


# What the keys of ``probes:`` mean, in the order of docs/config.md (generated from this and the readers
# below). docs/probes.md is the guide; these are one-line reminders that link to it.
KEY_DOCS: dict[str, str] = {
    "probes": "End-to-end delivery probes: routes (how to send), targets (where to look) and probes (a route "
    "to a target, on a schedule). The guide is [probes.md](probes.md); Gmail, Microsoft 365, Yahoo and "
    "Dovecot in [probe-providers.md](probe-providers.md). Absent: no probes.",
    "probes.secret": "HMAC key (at least 16 characters) that signs the probe tag: nobody without it can make "
    "mailpulse count or delete a message.",
    "probes.dns": "The resolver of mailpulse's own DKIM check of received probes.",
    "probes.dns.nameservers": "Name server addresses; empty: the system resolver (/etc/resolv.conf).",
    "probes.dns.port": "Their port.",
    "probes.dns.timeout": "Per query.",
    "probes.location": "Where this prober runs (e.g. `fra1`, `home-dsl`): the `location` label of every "
    "`mailpulse_probe_*` family, and part of the probe tag and Message-ID, so probers in several places "
    "that share a mailbox never count or sweep each other's messages. Lowercase letters, digits and `-`, "
    f"at most 32 characters, starting with a letter or digit. The environment variable `{LOCATION_ENV}` "
    "overrides it when set and not empty (one config file for every prober). [fleet.md](fleet.md)",
    "probes.start_jitter": "The first run of each probe starts after a random delay of 1 s up to 1 s plus "
    "this (and at most the probe's `interval`); later runs follow every `interval` from there, so probers "
    "started together stay spread out ([fleet.md](fleet.md#start-jitter-and-interval-alignment)). 0: every "
    "probe starts 1 s after the start.",
    "probes.sweep_interval": "How often the mailboxes are swept of our stale probes, those older than the late "
    "window ([cleanup](probes.md#cleanup)).",
    "probes.correlation": "Hop timelines: when mailpulse also tails the Postfix logs of the hosts a probe passes "
    "(message tracking on), each run gets its message's timeline from the tracker, per-hop latencies and, for a lost "
    "or late run, where it was held and why ([probes.md](probes.md#hop-timelines)).",
    "probes.correlation.enabled": "Build timelines (default true; nothing happens without tracked Postfix logs).",
    "probes.correlation.wait": "How long a finished run waits at most for the log tail to show its message's "
    "lines (at most 120s); the run's outcome is recorded after it.",
    "probes.correlation.hosts": "Log host name → role (`submit`, `relay`, `mx`, `srs`), naming the hops of the "
    "hosts listed; hosts not listed get a role from where they sit in the journey.",
    "probes.correlation.max_hosts": "Distinct log host names the `host` label of "
    "`mailpulse_probe_held_total` takes (hosts in `hosts` first); later ones are `other`.",
    "probes.routes": "How probes are sent: one SMTP server and login each.",
    "probes.routes[].name": "Unique; the `route` label.",
    "probes.routes[].host": "The SMTP server.",
    "probes.routes[].port": "Its port: 587 or 25 with `starttls`, 465 with `implicit`.",
    "probes.routes[].tls": "`implicit` (TLS from the first byte) or `starttls` (required: a server that does not "
    "offer it fails the probe with reason `tls`); never opportunistic.",
    "probes.routes[].ca_file": "A private CA (PEM); certificates are always verified, against the system store "
    "without it.",
    "probes.routes[].username": "SASL login (PLAIN, LOGIN, CRAM-MD5), with a password or `xoauth2`. A route "
    "authenticates with one of a password, `xoauth2`, a client certificate, or nothing (a relay that trusts "
    "your address).",
    "probes.routes[].password": "The SASL password.",
    "probes.routes[].xoauth2": "An XOAUTH2 access token instead of a password: exactly one of `token_file` and "
    "`token_command`. mailpulse runs no OAuth flow ([probes.md](probes.md#configuration), "
    "[probe-providers.md](probe-providers.md)).",
    "probes.routes[].xoauth2.token_file": "A file holding a current access token, read at every login; another "
    "tool keeps it fresh (a timer and an atomic rename).",
    "probes.routes[].xoauth2.token_command": "An argv whose stdout is the token.",
    "probes.routes[].xoauth2.cache": "How long a command's token is reused (a token the server refuses is "
    "dropped at once).",
    "probes.routes[].xoauth2.timeout": "Time limit of the token command.",
    "probes.routes[].client_cert": "A TLS client certificate (PEM) instead of SASL; goes with `client_key`.",
    "probes.routes[].client_key": "Its private key (PEM).",
    "probes.routes[].mail_from": "Envelope sender and From:, the same on every run (a changing envelope "
    "re-triggers greylisting).",
    "probes.routes[].helo": "The EHLO name; default: this host's FQDN.",
    "probes.routes[].source_address": "The local address the SMTP connection is made from (e.g. to be an "
    "outside sender of a test MX); default: chosen by the system.",
    "probes.routes[].timeout": "Per SMTP command.",
    "probes.routes[].connect_timeout": "To connect.",
    "probes.routes[].dkim": "Sign probes with mailpulse's own DKIM key (dkimpy, relaxed/relaxed, From "
    "oversigned), e.g. on a relay path that does not sign.",
    "probes.routes[].dkim.domain": "The signing domain (`d=`).",
    "probes.routes[].dkim.selector": "The selector (`s=`).",
    "probes.routes[].dkim.key_file": "The private key (PEM).",
    "probes.targets": "Where probes are looked for: a mailbox read over IMAP, one connection per watched folder "
    "([receiving](probes.md#receiving)).",
    "probes.targets[].name": "Unique; the `target` label.",
    "probes.targets[].kind": "`imap`: the probe goes to `address` and is found in this mailbox; `autoresponder`: "
    "`address` is a verifier that mails back a report, which lands in this mailbox "
    "([autoresponder targets](probes.md#autoresponder-targets)).",
    "probes.targets[].address": "RCPT TO of the probe.",
    "probes.targets[].host": "The IMAP server.",
    "probes.targets[].tls": "`implicit` or `starttls`.",
    "probes.targets[].port": "Its port; default 993 with `tls: implicit`, 143 with `starttls`.",
    "probes.targets[].ca_file": "A private CA (PEM).",
    "probes.targets[].username": "The IMAP login (required), with a password or `xoauth2`. Targets that share a "
    "login share one watcher and the first target's IMAP settings.",
    "probes.targets[].password": "The IMAP password.",
    "probes.targets[].xoauth2": "An XOAUTH2 access token instead of a password: exactly one of `token_file` and "
    "`token_command`. mailpulse runs no OAuth flow ([probes.md](probes.md#configuration), "
    "[probe-providers.md](probe-providers.md)).",
    "probes.targets[].xoauth2.token_file": "A file holding a current access token, read at every login; another "
    "tool keeps it fresh (a timer and an atomic rename).",
    "probes.targets[].xoauth2.token_command": "An argv whose stdout is the token.",
    "probes.targets[].xoauth2.cache": "How long a command's token is reused (a token the server refuses is "
    "dropped at once).",
    "probes.targets[].xoauth2.timeout": "Time limit of the token command.",
    "probes.targets[].provider": "Who runs the mailbox ([probe-providers.md](probe-providers.md)): the "
    "`provider` label of `mailpulse_probe_info`, and the `cleanup` default.",
    "probes.targets[].folders": "Folders watched, by name or SPECIAL-USE attribute (`\\Junk`, resolved per server).",
    "probes.targets[].cleanup": "What becomes of a found probe: `delete` (by UID), `trash` (moved to `\\Trash`; "
    "the default for `gmail`, where deleting from INBOX only removes a label) or `keep`.",
    "probes.targets[].authserv_id": "Only trust Authentication-Results headers with this authserv-id (a shell "
    "pattern such as `*.messagingengine.com`); default: the topmost one.",
    "probes.targets[].watch": "`idle` (falls back to polling when the server has no IDLE) or `poll`.",
    "probes.targets[].poll_interval": "Polling: how often NOOP and a scan are sent.",
    "probes.targets[].idle_refresh": "IDLE is re-issued this often (servers drop idle clients after about 30 minutes).",
    "probes.targets[].timeout": "Per IMAP command.",
    "probes.targets[].max_fetch_bytes": "Bigger matches are judged by their headers only.",
    "probes.probes": "What runs: a route to a target, on a schedule.",
    "probes.probes[].name": "Unique; the `probe` label.",
    "probes.probes[].route": "The `name` of a route.",
    "probes.probes[].target": "The `name` of a target.",
    "probes.probes[].interval": "How often it runs. A run never overlaps itself: a tick that finds the previous "
    "run still waiting is skipped ([choosing times](probes.md#configuration)).",
    "probes.probes[].jitter": "A random shift of each run, smaller than `interval`.",
    "probes.probes[].deadline": "From the route's 250 reply to arrival; a probe not found by then is lost. Keep "
    "it below `interval`.",
    "probes.probes[].late_window": "Arrivals until then are counted late and cleaned up; at least `deadline`, by "
    "default the longer of 1h and `deadline`.",
    "probes.probes[].headers": "Extra headers (`{X-Name: value}`), for tests of the filters on the way (rare); "
    "mailpulse's own headers cannot be set.",
    "probes.probes[].body_lines": "Extra body lines, idem.",
    "probes.probes[].expect": "What the receiver's Authentication-Results must say (`{dkim: pass, spf: pass, "
    "spf_domain: srs.example.org}`: keys `dkim`, `spf`, `dmarc` with a result, `spf_domain` with the domain of "
    "the SPF result's `smtp.mailfrom`, e.g. a forwarder's SRS domain); otherwise the run fails at stage "
    "`deliver` with reason `auth_unexpected` although the message arrived "
    "([expectations](probes.md#expectations)).",
}


@dataclass(frozen=True)
class OAuth2Source:
    """Where an XOAUTH2 access token comes from: a file kept fresh by another tool, or a command."""

    token_file: str | None = None
    token_command: tuple[str, ...] = ()
    cache: float = 300.0  # how long a command's token is reused
    timeout: float = 30.0


@dataclass(frozen=True)
class DkimSigning:
    domain: str
    selector: str
    key_file: str


@dataclass(frozen=True)
class RouteConfig:
    name: str
    host: str
    port: int
    tls: str  # implicit | starttls
    mail_from: str
    ca_file: str | None = None
    username: str | None = None
    password: Secret | None = None
    oauth2: OAuth2Source | None = None
    client_cert: str | None = None
    client_key: str | None = None
    helo: str | None = None
    source_address: str | None = None  # bind the SMTP connection to this local address
    timeout: float = 30.0  # per SMTP command
    connect_timeout: float = 15.0
    dkim: DkimSigning | None = None

    @property
    def auth(self) -> str:
        if self.oauth2 is not None:
            return "xoauth2"
        if self.password is not None:
            return "password"
        if self.client_cert is not None:
            return "client_cert"
        return "none"


@dataclass(frozen=True)
class TargetConfig:
    name: str
    kind: str  # imap | autoresponder
    address: str  # RCPT TO
    host: str
    port: int
    tls: str
    username: str
    password: Secret | None = None
    oauth2: OAuth2Source | None = None
    ca_file: str | None = None
    provider: str = "generic"
    folders: tuple[str, ...] = ("INBOX", JUNK)
    authserv_id: str | None = None  # expected receiver's authserv-id; None = topmost header
    watch: str = "idle"
    poll_interval: float = 10.0
    idle_refresh: float = 300.0  # re-issue IDLE this often (servers drop idle clients after ~30 min)
    timeout: float = 30.0  # per IMAP command
    cleanup: str = "delete"
    max_fetch_bytes: int = 1_000_000  # larger matches are judged on their headers only


@dataclass(frozen=True)
class ProbeConfig:
    name: str
    route: str
    target: str
    interval: float
    jitter: float
    deadline: float
    late_window: float
    # For tests of the filters on the way (e.g. a GTUBE line to see the Junk path); rarely wanted.
    headers: tuple[tuple[str, str], ...] = ()
    body_lines: tuple[str, ...] = ()
    # what the receiver's Authentication-Results must say: method or "spf_domain" -> expected value
    expect: tuple[tuple[str, str], ...] = ()


EXPECT_KEYS = ("dkim", "spf", "dmarc", "spf_domain")


@dataclass(frozen=True)
class CorrelationConfig:
    """``probes.correlation``: hop timelines from the message tracker (when the daemon tails the logs)."""

    enabled: bool = True
    wait: float = 10.0  # how long a finished run waits for the log tail to show its message's lines
    hosts: tuple[tuple[str, str], ...] = ()  # log host name -> role (submit, relay, mx, srs)
    max_hosts: int = 10  # distinct log host names the held family labels; the rest are "other"


CORRELATION_ROLES = ("submit", "relay", "mx", "srs")


@dataclass(frozen=True)
class DnsConfig:
    nameservers: tuple[str, ...] = ()  # empty: the system resolver (/etc/resolv.conf)
    port: int = 53
    timeout: float = 5.0


@dataclass(frozen=True)
class ProbesConfig:
    secret: Secret | None
    dns: DnsConfig = field(default_factory=DnsConfig)
    routes: tuple[RouteConfig, ...] = ()
    targets: tuple[TargetConfig, ...] = ()
    probes: tuple[ProbeConfig, ...] = ()
    sweep_interval: float = 3600.0
    state_file: str | None = None  # set by the service from state_dir
    location: str = DEFAULT_LOCATION
    start_jitter: float = DEFAULT_START_JITTER
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)

    def route(self, name: str) -> RouteConfig:
        return next(r for r in self.routes if r.name == name)

    def target(self, name: str) -> TargetConfig:
        return next(t for t in self.targets if t.name == name)


def parse_probes(node: Node, environ: Mapping[str, str] | None = None) -> ProbesConfig:
    secret = node.secret("secret")
    location = _location(node, os.environ if environ is None else environ)
    start_jitter = node.duration("start_jitter", DEFAULT_START_JITTER)
    if secret is not None and len(secret.value) < 16:
        node.problem("the HMAC key must have at least 16 characters", "secret")
    dns_node = node.child("dns")
    dns = DnsConfig(
        nameservers=tuple(dns_node.str_list("nameservers")),
        port=dns_node.integer("port", 53, minimum=1, maximum=65535),
        timeout=dns_node.duration("timeout", 5.0, minimum=0.1),
    )
    dns_node.finish()
    sweep = node.duration("sweep_interval", 3600.0, minimum=10.0)
    routes = node.list_of("routes", _route)
    targets = node.list_of("targets", _target)
    probes = node.list_of("probes", _probe)
    for key, names in (("routes", [r.name for r in routes]), ("targets", [t.name for t in targets]),
                       ("probes", [p.name for p in probes])):  # fmt: skip
        _unique(node, key, names)
    _cross_check(node, routes, targets, probes)
    correlation = _correlation(node.child("correlation"))
    return ProbesConfig(secret, dns, tuple(routes), tuple(targets), tuple(probes), sweep, location=location,
                        start_jitter=start_jitter, correlation=correlation)  # fmt: skip


def _correlation(node: Node) -> CorrelationConfig:
    enabled = node.boolean("enabled", True)
    wait = node.duration("wait", 10.0)
    if wait > 120:
        node.problem(f"at most 120s (got {wait:g}s): a run's outcome waits this long", "wait")
    hosts = node.str_map("hosts")
    for host, role in hosts.items():
        if role not in CORRELATION_ROLES:
            node.problem(f"host {host!r}: role must be one of {', '.join(CORRELATION_ROLES)} (got {role!r})", "hosts")
        if not LABEL_HOST_RE.fullmatch(host):
            node.problem(f"host {host[:40]!r} is not a log host name (letters, digits, '.', '-', '_')", "hosts")
    max_hosts = node.integer("max_hosts", 10, minimum=1, maximum=100)
    node.finish()
    return CorrelationConfig(enabled, min(wait, 120.0), tuple(hosts.items()), max_hosts)


LABEL_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _location(node: Node, environ: Mapping[str, str]) -> str:
    """``probes.location``, or the environment variable that overrides it, checked as a label value."""
    value = node.string("location", DEFAULT_LOCATION)
    if not LOCATION_RE.fullmatch(value):
        node.problem(f"{value[:40]!r} {_NOT_A_LOCATION}", "location")
        value = DEFAULT_LOCATION
    override = environ.get(LOCATION_ENV)
    if override:
        if LOCATION_RE.fullmatch(override):
            return override
        node.problem(f"{override[:40]!r} (environment variable {LOCATION_ENV}) {_NOT_A_LOCATION}", "location")
    return value


_NOT_A_LOCATION = "is not a location: 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit"


def _route(node: Node) -> RouteConfig:
    name = node.string("name", pattern=NAME_RE)
    host = node.string("host")
    port = node.integer("port", minimum=1, maximum=65535)
    tls = node.string("tls", choices=TLS_MODES)
    ca_file = _file(node, "ca_file")
    username, password, oauth2 = _login(node)
    client_cert = _file(node, "client_cert")
    client_key = _file(node, "client_key")
    if (client_cert is None) != (client_key is None):
        node.problem("client_cert and client_key go together", "client_cert" if client_cert is None else "client_key")
    mail_from = node.string("mail_from")
    if mail_from and "@" not in mail_from:
        node.problem(f"must be an address (got {mail_from!r})", "mail_from")
    dkim = None
    if node.has("dkim"):
        d = node.child("dkim")
        dkim = DkimSigning(d.string("domain"), d.string("selector"), _file(d, "key_file", required=True) or "")
        d.finish()
    return RouteConfig(
        name=name, host=host, port=port, tls=tls, mail_from=mail_from, ca_file=ca_file, username=username,
        password=password, oauth2=oauth2, client_cert=client_cert, client_key=client_key,
        helo=node.string("helo", None), source_address=node.string("source_address", None),
        timeout=node.duration("timeout", 30.0, minimum=1.0),
        connect_timeout=node.duration("connect_timeout", 15.0, minimum=1.0), dkim=dkim,
    )  # fmt: skip


def _target(node: Node) -> TargetConfig:
    name = node.string("name", pattern=NAME_RE)
    kind = node.string("kind", "imap", choices=TARGET_KINDS)
    address = node.string("address")
    if address and "@" not in address:
        node.problem(f"must be an address (got {address!r})", "address")
    host = node.string("host")
    tls = node.string("tls", choices=TLS_MODES)
    port = node.integer("port", 993 if tls == "implicit" else 143, minimum=1, maximum=65535)
    ca_file = _file(node, "ca_file")
    username, password, oauth2 = _login(node)
    if username is None:
        node.problem("required key is missing (the IMAP login)", "username")
    elif password is None and oauth2 is None and not node.secret_given("password") and not node.has("xoauth2"):
        # a password that is set but unusable (missing file, empty variable) was reported by node.secret()
        node.problem("IMAP needs password_file, password_env or xoauth2", "username")
    provider = node.string("provider", "generic", choices=PROVIDERS)
    folders = tuple(node.str_list("folders", ("INBOX", JUNK)))
    if not folders:
        node.problem("needs at least one folder", "folders")
    cleanup = node.string("cleanup", DEFAULT_CLEANUP.get(provider, "delete"), choices=CLEANUP_MODES)
    return TargetConfig(
        name=name, kind=kind, address=address, host=host, port=port, tls=tls, username=username or "",
        password=password, oauth2=oauth2, ca_file=ca_file, provider=provider, folders=folders,
        authserv_id=node.string("authserv_id", None),
        watch=node.string("watch", "idle", choices=WATCH_MODES),
        poll_interval=node.duration("poll_interval", 10.0, minimum=0.2),
        idle_refresh=node.duration("idle_refresh", 300.0, minimum=5.0),
        timeout=node.duration("timeout", 30.0, minimum=1.0), cleanup=cleanup,
        max_fetch_bytes=node.integer("max_fetch_bytes", 1_000_000, minimum=10_000),
    )  # fmt: skip


def _probe(node: Node) -> ProbeConfig:
    name = node.string("name", pattern=NAME_RE)
    interval = node.duration("interval", 300.0, minimum=1.0)
    jitter = node.duration("jitter", 0.0)
    deadline = node.duration("deadline", 600.0, minimum=1.0)
    late_window = node.duration("late_window", max(3600.0, deadline), minimum=1.0)
    if jitter >= interval > 0:
        node.problem(f"must be smaller than interval ({interval:g}s)", "jitter")
    if late_window < deadline:
        node.problem(f"must not be shorter than deadline ({deadline:g}s)", "late_window")
    headers = node.str_map("headers")
    for hname, value in headers.items():
        if not _HEADER_NAME.match(hname) or hname.lower() in OWN_HEADERS:
            node.problem(f"{hname!r} is not a header name a probe may set", f"headers.{hname}")
        if "\r" in value or "\n" in value:
            node.problem("must be one line", f"headers.{hname}")
    body_lines = tuple(node.str_list("body_lines"))
    if any("\r" in line or "\n" in line for line in body_lines):
        node.problem("each entry must be one line", "body_lines")
    expect = node.str_map("expect")
    for key, value in expect.items():
        if key not in EXPECT_KEYS:
            node.problem(f"unknown expectation {key!r} (known: {', '.join(EXPECT_KEYS)})", f"expect.{key}")
        elif key != "spf_domain" and value not in RESULTS:
            node.problem(f"must be one of {', '.join(RESULTS)} (got {value!r})", f"expect.{key}")
    return ProbeConfig(name, node.string("route"), node.string("target"), interval, jitter, deadline, late_window,
                       tuple(headers.items()), body_lines, tuple(expect.items()))  # fmt: skip


def _login(node: Node) -> tuple[str | None, Secret | None, OAuth2Source | None]:
    """``username`` with a password (file/env/inline) or an ``xoauth2`` token source, never both."""
    username = node.string("username", None)
    password = node.secret("password", required=False)
    oauth2 = None
    if node.has("xoauth2"):
        o = node.child("xoauth2")
        token_file = _file(o, "token_file")
        command = tuple(o.str_list("token_command"))
        if (token_file is None) == (not command):
            o.problem("set exactly one of token_file and token_command")
        oauth2 = OAuth2Source(token_file, command, o.duration("cache", 300.0), o.duration("timeout", 30.0, minimum=1))
        o.finish()
    if password is not None and oauth2 is not None:
        node.problem("set either a password or xoauth2, not both", "xoauth2")
    if (password is not None or oauth2 is not None) and not username:
        node.problem("required with a password or xoauth2", "username")
    return username, password, oauth2


def _file(node: Node, key: str, *, required: bool = False) -> str | None:
    value = node.path_str(key, must_exist=True) if required else node.path_str(key, None, must_exist=True)
    return value or None


def _unique(node: Node, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            node.problem(f"{name!r} is used twice", f"{key}[{i}].name")
        seen.add(name)


def _cross_check(node: Node, routes: list[RouteConfig], targets: list[TargetConfig],
                 probes: list[ProbeConfig]) -> None:  # fmt: skip
    route_names = [r.name for r in routes]
    target_names = [t.name for t in targets]
    for i, probe in enumerate(probes):
        for key, value, known in (("route", probe.route, route_names), ("target", probe.target, target_names)):
            if value and value not in known:
                node.problem(f"unknown {key} {value!r} (known: {', '.join(known) or 'none'})", f"probes[{i}].{key}")
