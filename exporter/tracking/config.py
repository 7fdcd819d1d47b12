"""The ``postfix.tracking:`` section (read by the Postfix-logs feature) and what each key means."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from mailpulse.exporter.configtools import Node

KEY_DOCS: dict[str, str] = {
    "postfix.tracking": "Message tracking: join each message's lines by queue ID (across content-filter "
    "re-injection, internal hops and hosts) and count it once, with its final outcome, transit time and "
    "delivery attempts (see [tracking.md](tracking.md)).",
    "postfix.tracking.enabled": "Track messages. Off: the per-line families only.",
    "postfix.tracking.max_messages": "At most this many queue files in flight; when full the oldest 1 % are "
    'evicted (`mailpulse_postfix_tracking_evicted_total{reason="capacity"}`). About 0.5 KB each.',
    "postfix.tracking.ttl": 'A queue file older than this (in log time) is evicted (`reason="ttl"`). Keep it '
    "longer than Postfix's `maximal_queue_lifetime` (5d by default).",
    "postfix.tracking.keep_finished": "Finished messages kept for timeline queries (probes), at most this many.",
    "postfix.tracking.keep_finished_for": "... and for at most this long (log time).",
    "postfix.tracking.link_grace": "How long (log time) a message whose queue files are all removed waits for a "
    "late `queued as` line that makes it the continuation of another message before it is counted.",
    "postfix.tracking.internal_relays": "Relay host names (as in `relay=`) that are our own hosts or content "
    "filters on other machines: their `queued as NEWID` links the message to NEWID. Relays on loopback, private "
    "networks and unix sockets are internal without being listed.",
    "postfix.tracking.state": "Save the in-flight messages in `state_dir/tracking.json` on stop and every "
    "`checkpoint_interval`, and read them back at start.",
    "postfix.tracking.checkpoint_interval": "How often the state is saved while running (0: after every batch "
    "of lines, which makes a kill -9 replay idempotent at a cost per batch).",
    "postfix.tracking.reconcile": "At start, list the queue with `postqueue -j` (the `postfix.queue` command "
    "and config directory) and drop restored messages that left it while mailpulse was down "
    '(`reason="restart"`).',
    "postfix.tracking.postqueue": "The postqueue binary used for the reconciliation.",
    "postfix.tracking.config_dir": "Postfix config directory for it (`postqueue -c DIR`); none: the default.",
    "postfix.tracking.local_hosts": "The syslog host names of the Postfix whose queue `postqueue -j` lists "
    "(reconciliation touches only their messages). Default: this machine's host name.",
    "postfix.providers": "Site-specific destination providers: relay host name suffix → provider class, tried "
    "before the built-in table (e.g. `{mx.partner.example: partner}`). The `provider` label of the delivery "
    "and per-message families.",
}


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = True
    max_messages: int = 200_000
    ttl: float = 6 * 86400.0
    keep_finished: int = 10_000
    keep_finished_for: float = 3600.0
    link_grace: float = 5.0
    internal_relays: tuple[str, ...] = ()
    state: bool = True
    checkpoint_interval: float = 60.0
    reconcile: bool = True
    local_hosts: tuple[str, ...] = ()
    postqueue: str = "postqueue"
    config_dir: str | None = None


def default_local_hosts() -> tuple[str, ...]:
    name = socket.gethostname()
    return tuple(dict.fromkeys((name, name.partition(".")[0])))


def parse_tracking(node: Node) -> TrackingConfig:
    return TrackingConfig(
        enabled=node.boolean("enabled", True),
        max_messages=node.integer("max_messages", 200_000, minimum=100, maximum=50_000_000),
        ttl=node.duration("ttl", 6 * 86400.0, minimum=60.0),
        keep_finished=node.integer("keep_finished", 10_000, minimum=0, maximum=10_000_000),
        keep_finished_for=node.duration("keep_finished_for", 3600.0),
        link_grace=node.duration("link_grace", 5.0),
        internal_relays=tuple(node.str_list("internal_relays", [])),
        state=node.boolean("state", True),
        checkpoint_interval=node.duration("checkpoint_interval", 60.0),
        reconcile=node.boolean("reconcile", True),
        local_hosts=tuple(node.str_list("local_hosts", [])),
        postqueue=node.string("postqueue", "postqueue"),
        config_dir=node.path_str("config_dir", None),
    )
