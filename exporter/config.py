"""mailpulse's config file: YAML in, a validated, typed :class:`Config` out.

Validation happens once, at start (and on SIGHUP); a bad file stops mailpulse with every problem
listed by key path. docs/config.md is the reference for users.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from mailpulse.exporter.configtools import NAME_RE, ConfigError, Node, Schema, Secret, parse_listen
from mailpulse.exporter.feature import AnyFeature, C, Feature

EX_CONFIG = 78  # sysexits.h: configuration error; the systemd unit does not restart on it

# What the kernel's keys mean, in the order of docs/config.md (generated from this and the readers below;
# a test fails when a key read below has no entry here, or an entry names a key nobody reads).
KEY_DOCS: dict[str, str] = {
    "log": "mailpulse's own log.",
    "log.level": "The lowest level logged.",
    "log.format": "`console` (for humans) or `json` (one object per line).",
    "http": "The HTTP endpoint that serves `/metrics`, `/health` and the status page at `/` "
    "([status-page.md](status-page.md)).",
    "http.listen": "Address of `/metrics`, `/health` and `/`: `host:port`, `[::1]:port`, or `:port` for all addresses. "
    "9947 is provisional: the Prometheus port registry's 9100-9999 range is full, and a 10000+ number will be "
    "registered before the first release.",
    "http.tls": "Serve HTTPS (TLS 1.2 or later) instead of HTTP; needs both `cert_file` and `key_file`.",
    "http.tls.cert_file": "The certificate chain (PEM).",
    "http.tls.key_file": "Its private key (PEM).",
    "http.basic_auth": "Require HTTP basic auth for `/metrics` and the status page `/` (`/health` stays open and "
    "reveals only up/down per part and bounded reasons, see [/health](#health)).",
    "http.basic_auth.username": "The user name Prometheus sends.",
    "http.basic_auth.password": "Its password.",
    "state_dir": "Log positions (offsets), journald cursors and probe state.",
    "sources": "The logs to follow. At least one is required unless the queue or probes give mailpulse "
    "something to do.",
    "sources[].name": "Unique; the `source` label.",
    "sources[].type": "`file` (a log file, followed across rotations: see "
    "[positions and rotation](#log-files-positions-and-rotation)) or `journald` (`journalctl -f -o json`).",
    "sources[].format": "The format of its lines; a list of formats for a mixed syslog file (each line goes to "
    "the first format that recognises its program).",
    "sources[].start_at": "Where to begin when there is no saved position (offset or cursor) yet, or it is "
    "corrupt: `end` (only new lines) or `beginning`.",
    "sources[].poll_interval": "Files: how often the file is checked for new lines (journald streams).",
    "sources[].path": "Files (required there): the log file.",
    "sources[].rotated_patterns": "Files: extra glob patterns, with `%s` for the file name, where the rotated "
    "file can be found. Built in: `%s.0`, `%s.1`, `%s.1.gz`, `%s-YYYYMMDD[.gz]`, `%s-YYYYMMDD-NNNNNNNNNN[.gz]`, "
    "`%s.YYYY-MM-DD` and Postfix's own `%s.YYYYMMDD-HHMMSS[.gz]`; a rotated file is recognised by its inode or, "
    "compressed or copied, by its first bytes.",
    "sources[].units": "journald: systemd units to follow (`--unit`), e.g. `postfix@-.service`, `rspamd.service`.",
    "sources[].matches": "journald: extra journalctl matches, e.g. `SYSLOG_FACILITY=2`.",
    "sources[].journal_files": "journald: read these journal files instead of the system journal (`--file`).",
    "sources[].journal_directory": "journald: read the journal in this directory instead of the system journal "
    "(`--directory`).",
    "sources[].journalctl": "journald: the journalctl binary.",
    "debug_unparsed_lines": "Log unrecognised lines at debug level (a few per batch) to find new shapes.",
    "allow_insecure_secret_files": "Accept secret files readable by group or others.",
}


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    format: str = "console"


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 9947
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    basic_auth_username: str | None = None
    basic_auth_password: Secret | None = None


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: str  # file | journald
    formats: tuple[str, ...]
    path: str = ""
    start_at: str = "end"
    poll_interval: float = 1.0
    rotated_patterns: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    matches: tuple[str, ...] = ()
    journal_files: tuple[str, ...] = ()
    journal_directory: str | None = None
    journalctl: str = "journalctl"


@dataclass(frozen=True)
class Config:
    """The kernel's settings, plus each feature's typed section (read with :meth:`section`)."""

    path: str
    log: LogConfig
    http: HttpConfig
    state_dir: str
    sources: tuple[SourceConfig, ...]
    sections: Mapping[str, object] = field(default_factory=dict)
    debug_unparsed: bool = False

    def section(self, feature: Feature[C]) -> C:
        """The feature's parsed section (its ``absent()`` value when the file has none)."""
        return cast(C, self.sections[feature.name])


def load_config(path: str, features: Sequence[AnyFeature]) -> Config:
    """Read and validate ``path``; raise :class:`ConfigError` listing every problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {yaml_error(exc)}"]) from exc
    return parse_config(data, features, path)


def yaml_error(exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line that leads with the line to fix.

    For an unclosed quote or bracket the problem mark is where the parser gave up (the end of the file,
    or a later line); the line to fix is where the construct started (the context mark). For a block
    structure (bad indentation) the problem mark is the line to fix and the context mark only the
    enclosing block.
    """
    if not isinstance(exc, yaml.MarkedYAMLError):
        return str(exc)
    problem, context = exc.problem or "syntax error", exc.context or ""
    pmark, cmark = exc.problem_mark, exc.context_mark
    if pmark is None:
        return problem

    def at(mark: Any) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    opened = "scanning" in context or "flow" in context  # a quote, bracket or brace left open
    if cmark is not None and opened and cmark.line != pmark.line:
        what = context.removeprefix("while scanning ").removeprefix("while parsing ")
        return f"at {at(cmark)}: {what} starts here and is not closed ({problem} at {at(pmark)})"
    return f"at {at(pmark)}: {problem}" + (f" ({context} at {at(cmark)})" if context and cmark else "")


def parse_config(data: object, features: Sequence[AnyFeature], path: str = "<config>", *,
                 schema: Schema | None = None) -> Config:  # fmt: skip
    """Validate a loaded YAML document: the kernel's keys, then each feature's section. With ``schema``,
    every key read is recorded in it (docs/config.md is generated so)."""
    problems: list[str] = []
    root = Node(data, "", problems, schema=schema)
    root.insecure_files_ok = root.boolean("allow_insecure_secret_files", False)
    log = _log(root.child("log"))
    http = _http(root.child("http"))
    state_dir = root.path_str("state_dir", "/var/lib/mailpulse")
    format_names = tuple(name for f in features for name in f.format_names)
    sources = root.list_of("sources", lambda node: _source(node, format_names))
    _unique([s.name for s in sources], "sources", problems)
    sections = _sections(root, features, problems)
    debug_unparsed = root.boolean("debug_unparsed_lines", False)
    root.finish()
    if not sources and not any(f.standalone and f.active(sections[f.name]) for f in features):
        problems.append("sources: nothing to do: configure at least one source or probes")
    if problems:
        raise ConfigError(problems)
    return Config(path, log, http, state_dir, tuple(sources), sections, debug_unparsed)


def _sections(root: Node, features: Sequence[AnyFeature], problems: list[str]) -> dict[str, object]:
    """Each feature reads its own section; parents are read before children (``postfix`` before
    ``postfix.queue``) so a parent's unknown-key check knows the child key is taken."""
    nodes: dict[tuple[str, ...], Node] = {(): root}
    present: dict[tuple[str, ...], bool] = {(): True}

    def node_at(path: tuple[str, ...]) -> Node:
        if path not in nodes:
            parent = node_at(path[:-1])
            present[path] = present[path[:-1]] and parent.has(path[-1])
            nodes[path] = parent.child(path[-1])
        return nodes[path]

    sections: dict[str, object] = {}
    for feature in sorted(features, key=lambda f: len(f.section)):
        if not feature.section:
            sections[feature.name] = feature.absent()
            continue
        node = node_at(feature.section)
        if present[feature.section]:
            section = feature.parse_config(node)
            problems.extend(feature.check_config(section))
        else:
            section = feature.absent()
        sections[feature.name] = section
    for path in sorted(nodes, key=len, reverse=True):
        if path:
            nodes[path].finish()
    return sections


def _log(node: Node) -> LogConfig:
    cfg = LogConfig(
        level=node.string("level", "info", choices=("debug", "info", "warning", "error")),
        format=node.string("format", "console", choices=("console", "json")),
    )
    node.finish()
    return cfg


def _http(node: Node) -> HttpConfig:
    listen = node.string("listen", "127.0.0.1:9947")
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        node.problem(str(exc), "listen")
        host, port = "127.0.0.1", 9947
    tls = node.child("tls")
    cert = tls.path_str("cert_file", None, must_exist=True) if tls.data else None
    key = tls.path_str("key_file", None, must_exist=True) if tls.data else None
    if tls.data and (not cert or not key):
        tls.problem("needs both cert_file and key_file")
    tls.finish()
    auth = node.child("basic_auth")
    user = password = None
    if auth.data:
        user = auth.string("username")
        password = auth.secret("password")
    auth.finish()
    node.finish()
    return HttpConfig(host, port, cert, key, user, password)


def _source(node: Node, format_names: Sequence[str]) -> SourceConfig:
    name = node.string("name", pattern=NAME_RE)
    kind = node.string("type", "file", choices=("file", "journald"))
    formats = tuple(node.str_list("format", ["postfix"], choices=format_names))
    start_at = node.string("start_at", "end", choices=("end", "beginning"))
    poll = node.duration("poll_interval", 1.0, minimum=0.05)
    if kind == "file":
        path = node.path_str("path")
        patterns = tuple(node.str_list("rotated_patterns"))
        for i, p in enumerate(patterns):
            if "%s" not in p:
                node.problem("must contain %s (the log file's name)", f"rotated_patterns[{i}]")
        node.finish()
        return SourceConfig(name, kind, formats, path=path, start_at=start_at, poll_interval=poll,
                            rotated_patterns=patterns)  # fmt: skip
    units = tuple(node.str_list("units"))
    matches = tuple(node.str_list("matches"))
    files = tuple(node.str_list("journal_files"))
    directory = node.path_str("journal_directory", None)
    journalctl = node.string("journalctl", "journalctl")
    node.finish()
    return SourceConfig(name, kind, formats, start_at=start_at, poll_interval=poll, units=units,
                        matches=matches, journal_files=files, journal_directory=directory,
                        journalctl=journalctl)  # fmt: skip


def _unique(names: list[str], where: str, problems: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            problems.append(f"{where}[{i}].name: {name!r} is used twice")
        seen.add(name)


def state_path(config: Config, *parts: str) -> str:
    return os.path.join(config.state_dir, *parts)
