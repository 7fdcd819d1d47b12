"""The message lifecycle around the queue: cleanup, pickup, qmgr, bounce, postsuper."""

from __future__ import annotations

from mailpulse.parsers.numbers import MAX_BYTES, MAX_COUNT, uint
from mailpulse.parsers.postfix.common import is_queue_id, level_message, parse_access_action
from mailpulse.parsers.postfix.delivery import DeliveryParser
from mailpulse.parsers.postfix.events import (
    BounceNotice,
    CleanupMessage,
    LogMessage,
    Pickup,
    PostfixEvent,
    QueueActive,
    QueueAdmin,
    QueueDeleted,
    QueueExpired,
    QueueRemoved,
)
from mailpulse.parsers.postfix.vocab import ReplyClassifier

# 776E41855DB2: sender non-delivery notification: A48191855DA0
BOUNCE_KINDS = {
    "sender non-delivery notification": "non_delivery",
    "sender delay notification": "delay",
    "sender delivery status notification": "delivery_status",
    "postmaster non-delivery notification": "postmaster_non_delivery",
    "postmaster delay notification": "postmaster_delay",
}

# postsuper: Deleted: 3 messages / Requeued: 1 message / Placed on hold: 2 messages
POSTSUPER_ACTIONS = {
    "Deleted": "deleted",
    "Requeued": "requeued",
    "Placed on hold": "held",
    "Released from hold": "released",
    "Force-expired": "expired",
}


_POSTSUPER_PER_MESSAGE = frozenset(
    {"removed", "placed on hold", "released from hold", "requeued", "force-expired", "expired"}
)


class CleanupParser:
    def __init__(self, classify_reject: ReplyClassifier) -> None:
        self._classify = classify_reject

    def __call__(self, ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
        head, sep, rest = msg.partition(": ")
        if not sep or not is_queue_id(head):
            return None
        if rest[:11] == "message-id=":
            return CleanupMessage(ts, service, head, rest[11:].strip("<>"))
        if rest.startswith("resent-message-id="):
            return LogMessage(ts, service, daemon, "info", "resent_message_id")
        if rest.startswith("warning: "):
            # "QID: warning: header Subject: ..." is a header_checks WARN action, not a daemon warning
            return parse_access_action(ts, service, daemon, msg, self._classify) or level_message(
                ts, service, daemon, "warning", rest[9:]
            )
        return parse_access_action(ts, service, daemon, msg, self._classify)


class QmgrParser:
    def __init__(self, delivery: DeliveryParser) -> None:
        self._delivery = delivery

    def __call__(self, ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
        head, sep, rest = msg.partition(": ")
        if not sep or not is_queue_id(head):
            return None
        if rest == "removed":
            return QueueRemoved(ts, service, head)
        if rest[:5] == "from=":
            rest = rest.rstrip()
            if rest[-15:] == " (queue active)":
                # from=<user@sender.com>, size=391, nrcpt=1 (queue active)
                front, _, nrcpt = rest[:-15].rpartition(", nrcpt=")
                size = uint(front.rpartition(", size=")[2], MAX_BYTES)
                count = uint(nrcpt, MAX_COUNT)
                if size is None or count is None:  # unreadable or out of range
                    return None
                return QueueActive(ts, service, head, size, count)
            # from=<user@example.com>, status=expired, returned to sender (or status=force-expired)
            if rest[-18:] == "returned to sender" and (
                ", status=expired," in rest or ", status=force-expired," in rest
            ):
                return QueueExpired(ts, service, head, "force-expired" in rest)
            return None
        if rest[:3] == "to=":
            return self._delivery(ts, service, daemon, level, msg)
        if rest.startswith("skipped, still being delivered"):
            return LogMessage(ts, service, daemon, "info", "queue")
        return None


def parse_pickup(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    # 08ACF1541B01: uid=0 from=<root>
    head, sep, rest = msg.partition(": ")
    if sep and is_queue_id(head) and rest.startswith("uid="):
        return Pickup(ts, service, head)
    return None


def parse_bounce(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    head, sep, rest = msg.partition(": ")
    if not sep or not is_queue_id(head):
        return None
    notice, _, child = rest.rpartition(": ")
    kind = BOUNCE_KINDS.get(notice)
    if kind is None:
        return None
    return BounceNotice(ts, service, kind, head, child if is_queue_id(child) else "")


def parse_postsuper(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    head, sep, rest = msg.partition(": ")
    if not sep:
        return None
    action = POSTSUPER_ACTIONS.get(head)
    if action is not None:
        count = uint(rest.partition(" ")[0], MAX_COUNT)
        return QueueAdmin(ts, service, action, count) if count is not None else None
    # per-message lines: "QID: removed", "QID: placed on hold", "QID: released from hold", "QID: requeued"
    # (counted by the summary line, not here, so postsuper -d is not mistaken for qmgr's "removed"); a
    # deletion is its own event so that message tracking can close the message as deleted
    if is_queue_id(head) and rest == "removed":
        return QueueDeleted(ts, service, head)
    if is_queue_id(head) and rest in _POSTSUPER_PER_MESSAGE:
        return LogMessage(ts, service, daemon, "info", "queue")
    return None
