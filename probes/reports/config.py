"""The ``reports:`` section: which domains and sending networks are ours, extra reporters, the
de-duplication memory, the size caps and the mailboxes reports arrive in. Problems are reported on the
node with their key path; nothing here raises."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from mailpulse.exporter.configtools import NAME_RE, Node
from mailpulse.probes.config import TLS_MODES, WATCH_MODES, OAuth2Source, TargetConfig, _file, _login, _unique
from mailpulse.probes.reports.catalog import NAMES

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

KEY_DOCS: dict[str, str] = {
    "reports": "DMARC aggregate, SMTP TLS (TLS-RPT) and ARF complaint reports that receivers send about your "
    "mail, read from IMAP mailboxes or files ([reports.md](reports.md)). Absent: no mailbox is read "
    "(`mailpulse scan --reports` still works).",
    "reports.domains": "Your header-from domains: the `domain` label (a subdomain counts as its domain); "
    "any other domain is `other`. Without any, the first 20 domains seen are labels.",
    "reports.authorized_networks": "Addresses and networks (CIDR) that send your mail: a DMARC record from one "
    'of them is `source="authorized"`; others are `forwarder` or `unknown` ([source classes]'
    "(reports.md#source-classes)).",
    "reports.reporters": "Reporters to label by name besides the built-in catalogue (tried first).",
    "reports.reporters[].name": "The `reporter` label.",
    "reports.reporters[].match": "Substrings of the report's organisation name or address (case-insensitive).",
    "reports.dedup_ttl": "How long a (reporter, report id) is remembered, so a report read twice (a re-sent mail, "
    "a re-read folder) counts once. Kept in `state_dir/reports-seen.json` across restarts.",
    "reports.dedup_max_entries": "At most this many remembered reports (the oldest are forgotten first).",
    "reports.new_series_delay": "A counter series that a report creates is exported as 0 for this long before "
    "its value, so that Prometheus's increase() sees the report's count (it ignores a series' first sample): at "
    "least two scrape intervals ([why](reports.md#counting-at-ingest)).",
    "reports.max_input_bytes": "Largest mail or file read; bigger ones are rejected (`too_large`).",
    "reports.max_report_bytes": "Largest report after decompression (zip bombs stop here, `too_large`).",
    "reports.max_records": "Most records (DMARC) or policies (TLS-RPT) in one report.",
    "reports.mailboxes": "IMAP mailboxes that receive reports (the `rua` / TLS-RPT `rua` / feedback-loop "
    "address), watched with IDLE or polled.",
    "reports.mailboxes[].name": "Unique; the `mailbox` label.",
    "reports.mailboxes[].host": "The IMAP server.",
    "reports.mailboxes[].tls": "`implicit` or `starttls` (required: never plain text).",
    "reports.mailboxes[].port": "Default 993 with `implicit`, 143 with `starttls`.",
    "reports.mailboxes[].ca_file": "A private CA (PEM).",
    "reports.mailboxes[].username": "The IMAP login, with a password or `xoauth2`.",
    "reports.mailboxes[].password": "The IMAP password (`password_file`, `password_env`).",
    "reports.mailboxes[].xoauth2": "An XOAUTH2 access token instead of a password, as for probe targets.",
    "reports.mailboxes[].xoauth2.token_file": "A file holding a current access token, read at every login.",
    "reports.mailboxes[].xoauth2.token_command": "An argv whose stdout is the token.",
    "reports.mailboxes[].xoauth2.cache": "How long a command's token is reused.",
    "reports.mailboxes[].xoauth2.timeout": "Time limit of the token command.",
    "reports.mailboxes[].folder": "Where reports arrive.",
    "reports.mailboxes[].processed_folder": "Where a mail is moved once its reports are counted (or were "
    "already counted); created if missing.",
    "reports.mailboxes[].failed_folder": "Where a mail without a usable report is moved; created if missing.",
    "reports.mailboxes[].watch": "`idle` (falls back to polling without IDLE) or `poll`.",
    "reports.mailboxes[].poll_interval": "Polling: how often the folder is looked at.",
    "reports.mailboxes[].idle_refresh": "IDLE is re-issued this often.",
    "reports.mailboxes[].timeout": "Per IMAP command.",
    "reports.directories": "Directories of report files the daemon reads (recursively: `.xml`, `.xml.gz`, `.zip`, "
    "`.json`, `.json.gz`, `.eml`); files are left in place, and one read again counts nothing.",
    "reports.directories[].path": "The directory.",
    "reports.directories[].interval": "How often it is looked at for new or changed files.",
}


@dataclass(frozen=True)
class DirectoryConfig:
    path: str
    interval: float = 300.0


@dataclass(frozen=True)
class MailboxConfig:
    name: str
    imap: TargetConfig  # the probes' IMAP settings, so the probes' session reads this mailbox
    folder: str = "INBOX"
    processed_folder: str = "Reports/Processed"
    failed_folder: str = "Reports/Failed"


@dataclass(frozen=True)
class ReportsConfig:
    domains: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    reporters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dedup_ttl: float = 60 * 86400.0
    dedup_max_entries: int = 200_000
    max_input_bytes: int = 25 << 20
    max_report_bytes: int = 20 << 20
    max_records: int = 100_000
    new_series_delay: float = 120.0
    mailboxes: tuple[MailboxConfig, ...] = field(default=())
    directories: tuple[DirectoryConfig, ...] = field(default=())


def parse_reports(node: Node) -> ReportsConfig:
    domains = tuple(d.lower().rstrip(".") for d in node.str_list("domains"))
    networks: list[Network] = []
    for i, text in enumerate(node.str_list("authorized_networks")):
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            node.problem(f"{text!r} is not an IP address or network", f"authorized_networks[{i}]")
    reporters = node.list_of("reporters", _reporter)
    _unique(node, "reporters", [name for name, _ in reporters])
    for i, (name, _) in enumerate(reporters):
        if name in NAMES or name == "other":
            node.problem(f"{name!r} is a built-in reporter name", f"reporters[{i}].name")
    mailboxes = node.list_of("mailboxes", _mailbox)
    _unique(node, "mailboxes", [m.name for m in mailboxes])
    return ReportsConfig(
        domains=domains, networks=tuple(networks), reporters=tuple(reporters),
        dedup_ttl=node.duration("dedup_ttl", 60 * 86400.0, minimum=86400.0),
        dedup_max_entries=node.integer("dedup_max_entries", 200_000, minimum=100, maximum=10_000_000),
        max_input_bytes=node.integer("max_input_bytes", 25 << 20, minimum=1 << 16, maximum=1 << 30),
        max_report_bytes=node.integer("max_report_bytes", 20 << 20, minimum=1 << 16, maximum=1 << 30),
        max_records=node.integer("max_records", 100_000, minimum=1, maximum=10_000_000),
        new_series_delay=node.duration("new_series_delay", 120.0),
        mailboxes=tuple(mailboxes), directories=tuple(node.list_of("directories", _directory)),
    )  # fmt: skip


def _directory(node: Node) -> DirectoryConfig:
    return DirectoryConfig(node.path_str("path"), node.duration("interval", 300.0, minimum=1.0))


def _reporter(node: Node) -> tuple[str, tuple[str, ...]]:
    name = node.string("name", pattern=NAME_RE)
    match = tuple(s.lower() for s in node.str_list("match") if s.strip())
    if not match:
        node.problem("needs at least one substring", "match")
    return name, match


def _mailbox(node: Node) -> MailboxConfig:
    name = node.string("name", pattern=NAME_RE)
    host = node.string("host")
    tls = node.string("tls", choices=TLS_MODES)
    port = node.integer("port", 993 if tls == "implicit" else 143, minimum=1, maximum=65535)
    ca_file = _file(node, "ca_file")
    username, password, oauth2 = _login(node)
    if username is None:
        node.problem("required key is missing (the IMAP login)", "username")
    elif password is None and oauth2 is None and not node.secret_given("password") and not node.has("xoauth2"):
        node.problem("IMAP needs password_file, password_env or xoauth2", "username")
    folder = node.string("folder", "INBOX")
    processed = node.string("processed_folder", "Reports/Processed")
    failed = node.string("failed_folder", "Reports/Failed")
    if len({folder, processed, failed}) != 3:
        node.problem("folder, processed_folder and failed_folder must differ", "processed_folder")
    imap = TargetConfig(
        name=name, kind="imap", address="", host=host, port=port, tls=tls, username=username or "",
        password=password, oauth2=oauth2 if isinstance(oauth2, OAuth2Source) else None, ca_file=ca_file,
        folders=(folder,), watch=node.string("watch", "idle", choices=WATCH_MODES),
        poll_interval=node.duration("poll_interval", 60.0, minimum=0.2),
        idle_refresh=node.duration("idle_refresh", 300.0, minimum=5.0),
        timeout=node.duration("timeout", 30.0, minimum=1.0), cleanup="keep", max_fetch_bytes=25 << 20,
    )  # fmt: skip
    return MailboxConfig(name, imap, folder, processed, failed)
