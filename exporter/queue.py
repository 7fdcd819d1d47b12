"""Postfix queue depth, size and oldest age per queue, from ``postqueue -j`` on an interval.

Collected on a timer, never on a scrape: listing a large queue takes seconds and a scrape must not wait
for it. The output is streamed line by line, so a queue of 100,000 messages costs no more memory than
one. Errors (permission, timeout, missing binary) are a metric with a bounded reason and one log line per
change of state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client.core import Metric

from mailpulse.exporter.metrics.family import Family, Kind, Labels, enum, label_sets
from mailpulse.exporter.metrics.store import Counts, inc

log = structlog.get_logger(__name__)

QUEUES = ("active", "incoming", "deferred", "hold", "maildrop")
_ALL = tuple((q,) for q in QUEUES)

MESSAGES = Family(
    "mailpulse_postfix_queue_messages", "Messages in each Postfix queue at the last collection.",
    Kind.GAUGE, ("queue",), initial=_ALL,
)  # fmt: skip
SIZE = Family(
    "mailpulse_postfix_queue_size_bytes", "Total size of the messages in each queue.", Kind.GAUGE, ("queue",),
    initial=_ALL,
)  # fmt: skip
OLDEST = Family(
    "mailpulse_postfix_queue_oldest_message_age_seconds",
    "Age of the oldest message in each queue (0 when the queue is empty).", Kind.GAUGE, ("queue",), initial=_ALL,
)  # fmt: skip
RECIPIENTS = Family(
    "mailpulse_postfix_queue_recipients", "Recipients still to be delivered, per queue.", Kind.GAUGE, ("queue",),
    initial=_ALL,
)  # fmt: skip
UP = Family(
    "mailpulse_postfix_queue_up", "1 if the last queue collection succeeded.", Kind.GAUGE,
)  # fmt: skip
LAST_SUCCESS = Family(
    "mailpulse_postfix_queue_last_success_timestamp_seconds", "When the queue was last collected successfully.",
    Kind.GAUGE,
)  # fmt: skip
DURATION = Family(
    "mailpulse_postfix_queue_collect_duration_seconds", "How long the last queue collection took.", Kind.GAUGE
)
ERRORS = Family(
    "mailpulse_postfix_queue_collect_errors_total",
    "Failed queue collections by reason (permission, timeout, not_found, failed, parse).",
    Kind.COUNTER, ("reason",),
)  # fmt: skip

FAMILIES = (MESSAGES, SIZE, OLDEST, RECIPIENTS, UP, LAST_SUCCESS, DURATION, ERRORS)
REASONS = ("permission", "timeout", "not_found", "failed", "parse")
LABEL_SETS = label_sets(FAMILIES, {"queue": enum((*QUEUES, "other")), "reason": enum(REASONS)})


@dataclass
class QueueSnapshot:
    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUEUES, 0))
    size: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUEUES, 0))
    oldest: dict[str, float] = field(default_factory=dict)  # queue -> arrival time
    recipients: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUEUES, 0))
    bad_lines: int = 0
    ids: set[str] | None = None  # the queue IDs, when asked for (message tracking's reconciliation)

    def add(self, raw: bytes) -> None:
        try:
            entry = json.loads(raw)
            queue = str(entry["queue_name"])
            arrival = float(entry.get("arrival_time", 0))
            size = int(entry.get("message_size", 0))
            rcpts = len(entry.get("recipients") or ())
            if self.ids is not None:
                self.ids.add(str(entry["queue_id"]))
        except (ValueError, KeyError, TypeError):
            self.bad_lines += 1
            return
        if queue not in self.messages:
            queue = "other"
            self.messages.setdefault(queue, 0)
            self.size.setdefault(queue, 0)
            self.recipients.setdefault(queue, 0)
        self.messages[queue] += 1
        self.size[queue] += size
        self.recipients[queue] += rcpts
        if arrival and (queue not in self.oldest or arrival < self.oldest[queue]):
            self.oldest[queue] = arrival


class QueueCollector:
    """Run ``postqueue [-c DIR] -j`` every ``interval`` seconds and keep the last good snapshot."""

    families = FAMILIES

    def __init__(
        self,
        config_dir: str | None = None,
        interval: float = 30.0,
        timeout: float = 60.0,
        command: tuple[str, ...] = ("postqueue",),
        now: Callable[[], float] = time.time,
        log_failures: bool = True,  # check-config reports failures itself
    ) -> None:
        self.config_dir = config_dir
        self.interval = interval
        self.timeout = timeout
        self.command = command
        self._now = now
        self._log_failures = log_failures
        self.snapshot: QueueSnapshot | None = None
        self.up = 0
        self.last_success = 0.0
        self.duration = 0.0
        self.errors: Counts = {}  # (reason,) → failed collections
        self._last_problem: str | None = None
        self.last_detail = ""  # the last failure's message (postqueue's stderr), for check-config
        self.attempts = 0

    def reconfigure(self, config_dir: str | None, interval: float, timeout: float, command: tuple[str, ...]) -> None:
        """Apply a reloaded config; counters and the last snapshot are kept."""
        self.config_dir, self.interval, self.timeout, self.command = config_dir, interval, timeout, command

    def reset(self) -> None:
        """The queue was switched off: nothing of the old queue should linger in /health."""
        self.snapshot = None
        self.up = 0

    def argv(self) -> list[str]:
        argv = list(self.command)
        if self.config_dir:
            argv += ["-c", self.config_dir]
        return [*argv, "-j"]

    def health(self) -> tuple[bool, dict[str, Any]]:
        """For /health: ok until a collection has failed; the last failure's reason and message."""
        if self.up:
            return True, {"status": "ok", "last_success": self.last_success}
        if self.attempts == 0:
            return True, {"status": "starting"}
        # /health is open to anyone who can reach the port: a bounded reason, never postqueue's stderr
        detail = {"status": "failed", "reason": self._last_problem or "failed"}
        if self._last_problem == "permission":
            detail["hint"] = ("postqueue needs the postdrop group (SupplementaryGroups=postdrop in the unit: "
                              "NoNewPrivileges=yes disables its setgid bit)")  # fmt: skip
        return False, detail

    async def collect_once(self) -> bool:
        self.attempts += 1
        started = time.monotonic()
        try:
            snapshot = await asyncio.wait_for(self._run(), self.timeout)
        except TimeoutError:
            return self._failed("timeout", f"postqueue took longer than {self.timeout:g}s")
        except FileNotFoundError as exc:
            return self._failed("not_found", str(exc))
        except PermissionError as exc:
            return self._failed("permission", str(exc))
        except _PostqueueError as exc:
            return self._failed(exc.reason, exc.message)
        finally:
            self.duration = time.monotonic() - started
        self.snapshot = snapshot
        self.up = 1
        self.last_success = self._now()
        if self._last_problem is not None:
            log.info("postfix queue collection works again")
            self._last_problem = None
        return True

    async def queue_ids(self) -> set[str] | None:
        """The queue IDs now in the queue (one ``postqueue -j``, the same code as the collection), or None
        when postqueue failed (its reason is counted and logged as for a collection)."""
        try:
            snapshot = await asyncio.wait_for(self._run(keep_ids=True), self.timeout)
        except TimeoutError:
            self._failed("timeout", f"postqueue took longer than {self.timeout:g}s")
            return None
        except FileNotFoundError as exc:
            self._failed("not_found", str(exc))
            return None
        except PermissionError as exc:
            self._failed("permission", str(exc))
            return None
        except _PostqueueError as exc:
            self._failed(exc.reason, exc.message)
            return None
        return snapshot.ids if snapshot.bad_lines == 0 else None

    async def _run(self, keep_ids: bool = False) -> QueueSnapshot:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=1 << 24,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stderr is not None
        snapshot = QueueSnapshot(ids=set() if keep_ids else None)
        try:
            async for raw in proc.stdout:
                if raw.strip():
                    snapshot.add(raw)
            stderr = (await proc.stderr.read()).decode(errors="replace").strip()
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if code != 0:
            # "Connect to the Postfix showq service: Permission denied": not in group postdrop, or the
            # setgid bit ignored (NoNewPrivileges); "... is not allowed": -c DIR not authorised
            reason = "permission" if "ermission denied" in stderr or "not allowed" in stderr else "failed"
            raise _PostqueueError(reason, stderr[-300:] or f"exit status {code}")
        if snapshot.bad_lines:
            self._count("parse")
        return snapshot

    def _failed(self, reason: str, message: str) -> bool:
        self.up = 0
        self.last_detail = message[-300:]
        self._count(reason)
        if self._last_problem != reason and self._log_failures:
            log.warning("postfix queue collection failed", reason=reason, detail=message, argv=self.argv())
        self._last_problem = reason
        return False

    def _count(self, reason: str) -> None:
        inc(self.errors, (reason,))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.collect_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    def collect(self) -> Iterator[Metric]:
        now = self._now()
        snap = self.snapshot or QueueSnapshot()
        messages: dict[Labels, float] = {(q,): float(n) for q, n in snap.messages.items()}
        size: dict[Labels, float] = {(q,): float(n) for q, n in snap.size.items()}
        rcpts: dict[Labels, float] = {(q,): float(n) for q, n in snap.recipients.items()}
        oldest: dict[Labels, float] = {(q,): max(0.0, now - snap.oldest[q]) if q in snap.oldest else 0.0
                                       for q in snap.messages}  # fmt: skip
        yield MESSAGES.from_values(messages)
        yield SIZE.from_values(size)
        yield OLDEST.from_values(oldest)
        yield RECIPIENTS.from_values(rcpts)
        yield UP.from_values({(): float(self.up)})
        yield LAST_SUCCESS.from_values({(): self.last_success})
        yield DURATION.from_values({(): self.duration})
        yield ERRORS.from_values(self.errors)


class _PostqueueError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
