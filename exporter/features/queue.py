"""The Postfix-queue feature: the ``postfix.queue:`` section and ``postqueue -j`` on an interval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mailpulse.exporter.configtools import Node
from mailpulse.exporter.feature import ERROR, WARNING, Context, Feature, Finding, Health, Part, Service
from mailpulse.exporter.queue import FAMILIES, LABEL_SETS, QueueCollector
from mailpulse.exporter.status import Cell, State, StatusSection, Table, age, row

QUEUE_CHECK_TIMEOUT = 15.0  # check-config must answer quickly even when postqueue hangs

# What the keys of ``postfix.queue:`` mean (docs/config.md is generated from this and parse_config below).
KEY_DOCS: dict[str, str] = {
    "postfix.queue": "Queue metrics from `postqueue -j`, listed on an interval.",
    "postfix.queue.enabled": "Collect queue metrics.",
    "postfix.queue.config_dir": "Postfix config directory (`postqueue -c DIR`); none means the default. "
    "`postqueue` reaches Postfix's showq socket through the `postdrop` group: run mailpulse in that group (the "
    "shipped unit does, `SupplementaryGroups=postdrop`). A setgid `postqueue` (not under `NoNewPrivileges=yes`) "
    "accepts a non-default directory only from root or with `alternate_config_directories` in the default "
    "main.cf.",
    "postfix.queue.interval": "How often the queue is listed (never on a scrape: a large queue takes seconds).",
    "postfix.queue.timeout": "Give up on a `postqueue` that takes longer.",
    "postfix.queue.command": "The postqueue binary.",
}


@dataclass(frozen=True)
class QueueConfig:
    enabled: bool = False
    config_dir: str | None = None
    interval: float = 30.0
    timeout: float = 60.0
    command: str = "postqueue"


class PostfixQueue(Feature[QueueConfig]):
    name = "queue"
    title = "Postfix queue"
    section = ("postfix", "queue")
    families = FAMILIES
    label_sets = LABEL_SETS
    standalone = True
    key_docs = KEY_DOCS

    def __init__(self) -> None:
        # kept across reloads, so the error counters and the last snapshot survive a SIGHUP
        self.collector = QueueCollector()

    def parse_config(self, node: Node) -> QueueConfig:
        return QueueConfig(
            enabled=node.boolean("enabled", False),
            config_dir=node.path_str("config_dir", None),
            interval=node.duration("interval", 30.0, minimum=1.0),
            timeout=node.duration("timeout", 60.0, minimum=1.0),
            command=node.string("command", "postqueue"),
        )

    def absent(self) -> QueueConfig:
        return QueueConfig()

    def active(self, config: QueueConfig) -> bool:
        return config.enabled

    def configure(self, config: QueueConfig, context: Context) -> Sequence[Service]:
        if not config.enabled:
            self.collector.reset()
            return ()
        self.collector.reconfigure(config.config_dir, config.interval, config.timeout, (config.command,))
        return (self.collector,)

    def parts(self) -> Sequence[Part]:
        return (self.collector,)

    def health(self) -> Health:
        ok, detail = self.collector.health()
        return Health(ok, detail)

    def status(self) -> StatusSection:
        return queue_section(self.collector, time.time())

    def preflight(self, config: QueueConfig) -> list[Finding]:
        """Run one real queue collection, as the daemon would."""
        from mailpulse.exporter.preflight import whoami  # noqa: PLC0415 - check-config only

        collector = QueueCollector(config.config_dir, config.interval, min(config.timeout, QUEUE_CHECK_TIMEOUT),
                                   (config.command,), log_failures=False)  # fmt: skip
        if asyncio.run(collector.collect_once()):
            return []
        _, health = collector.health()
        reason = str(health.get("reason", "failed"))
        where = ".".join(self.section)
        message = f"`{' '.join(collector.argv())}` failed ({reason}): {collector.last_detail}"
        if reason == "permission":
            message += (f". {whoami()} needs the postdrop group (SupplementaryGroups=postdrop; with "
                        "NoNewPrivileges=yes postqueue's setgid bit is ignored)")  # fmt: skip
            return [Finding(ERROR, where, message)]
        if reason == "not_found":
            return [Finding(ERROR, f"{where}.command", message)]
        # timeout, a Postfix that is down ("mail system is down"): the daemon retries every interval
        return [Finding(WARNING, where, message)]


OLDEST_WARN_SECONDS = 3600.0  # a message older than this in the active or deferred queue is worth a look


def queue_section(collector: QueueCollector, now: float) -> StatusSection:
    """Messages per queue and the oldest one's age from the last ``postqueue -j``, and whether it worked."""
    if collector.up:
        listing = Cell(f"ok, {age(collector.last_success, now)} ({collector.duration:.2f} s)", State.OK)
    elif collector.attempts == 0:
        listing = Cell("not run yet", State.UNKNOWN)
    else:
        # behind the page's auth, so postqueue's own words may be shown (never in /health)
        listing = Cell(f"failing: {collector.last_detail or 'failed'}", State.FAIL)
    snap = collector.snapshot
    rows = []
    if snap is not None:
        for queue in snap.messages:
            count = snap.messages[queue]
            oldest = snap.oldest.get(queue)
            old_age = now - oldest if oldest else 0.0
            state = State.WARN if queue in ("active", "deferred", "hold") and old_age > OLDEST_WARN_SECONDS else None
            rows.append(row(queue, str(count), str(snap.recipients.get(queue, 0)), f"{snap.size.get(queue, 0)} bytes",
                            Cell(age(oldest, now) if oldest else "-", state)))  # fmt: skip
    listing_table = Table(("postqueue -j", "failed listings so far"),
                          (row(listing, str(int(sum(collector.errors.values())))),))  # fmt: skip
    queues = Table(("queue", "messages", "recipients", "size", "oldest arrived"), tuple(rows),
                   empty="no successful listing yet")  # fmt: skip
    return StatusSection("Postfix queue", (listing_table, queues))
