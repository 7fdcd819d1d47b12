"""Follow each Record through the logs until it reaches its end state (bounded in time), and run
the follow-ups that need a first attempt to have happened: greylist retries and forced expiry."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

from lab.configs.rspamd import GREYLIST_TIMEOUT_S
from lab.envfile import LabEnv
from lab.traffic import logs
from lab.traffic.scenarios import Record

WAIT_S = 30.0
INTERESTING = re.compile(r"^(DKIM_SIGNED|R_DKIM_\w+|R_SPF_\w+|DMARC_\w+|GREYLIST|GTUBE|LAB_\w+)$")


class Tracker:
    """Reads the logs written since the run started and settles every record."""

    def __init__(self, env: LabEnv, tails: dict[str, logs.LogTail]) -> None:
        self.env = env
        self.tails = tails
        self.problems: list[str] = []
        self.mx_port = f":{env['LAB_MX_PORT']}"
        self.fake_port = f":{env['LAB_FAKE_REMOTE_PORT']}"
        # hops inside the lab after the MX accepted a message: the content filter (its reply carries the
        # re-injection's queue ID), the SRS forwarder, the outside provider's receiver
        self.internal_ports = tuple(
            f":{env[key]}" for key in ("LAB_CONTENT_FILTER_PORT", "LAB_SRS_PORT", "LAB_OUTSIDE_MX_PORT") if key in env
        )
        self.postfix_config = env["LAB_POSTFIX_CONFIG"].split()[0]  # the submission host

    # --- log access
    def postfix(self) -> str:
        """Every Postfix log written since the run started (one file per host, or the central one)."""
        return "".join(tail.text() for name, tail in self.tails.items() if name.startswith("postfix"))

    def _deliveries(self, qid: str) -> list[logs.Delivery]:
        return logs.deliveries(self.postfix(), qid)

    def _wait_delivery(self, qid: str, count: int = 1) -> list[logs.Delivery]:
        logs.wait_for(f"{qid} delivery", lambda: len(self._deliveries(qid)) >= count, WAIT_S)
        found = self._deliveries(qid)
        if len(found) < count:
            self.problems.append(f"no delivery attempt #{count} logged for {qid} within {WAIT_S:.0f} s")
        return found

    # --- following one message
    def _internal(self, relay: str) -> bool:
        return relay.endswith(self.internal_ports)

    def _follow_hops(self, qid: str, rec: Record | None = None) -> tuple[str, logs.Delivery | None]:
        """Follow a message from `qid` through the content filter and the forwarders to its last queue
        ID; return that and its last delivery attempt (None if none was logged in time)."""
        for _ in range(8):  # MX -> filter -> re-injection -> SRS -> outside MX: 4 hops at most
            found = self._wait_delivery(qid)
            if rec is not None:
                rec.postfix_statuses += [d.status for d in found]
            if not found:
                return qid, None
            last = found[-1]
            nxt = last.next_queue_id
            if not (last.status == "sent" and nxt and self._internal(last.relay)):
                return qid, last
            if rec is not None:
                rec.hop_queue_ids.append(nxt)
            qid = nxt
        return qid, None

    def _follow_mx(self, rec: Record, mx_qid: str) -> None:
        """The copy the MX accepted: through the content filter (and the SRS forwarder, for aliases
        that forward), then LMTP into a folder, or an LMTP bounce."""
        rec.mx_queue_id = mx_qid
        qid, last = self._follow_hops(mx_qid, rec)
        if last is None:
            return
        if last.status == "sent":
            rec.outcome = "delivered"
            if rec.message_id:
                mid = rec.message_id
                dovecot = self.tails["dovecot"]
                logs.wait_for("folder", lambda: logs.folder(dovecot.text(), mid) is not None, WAIT_S)
                rec.folder = logs.folder(dovecot.text(), mid)
        elif last.status == "bounced":
            rec.outcome = "bounced"
            self._follow_ndr(rec, qid)
        else:
            rec.outcome = last.status

    def _classify_first_hop(self, rec: Record, found: list[logs.Delivery]) -> None:
        last = found[-1]
        if last.status == "sent" and self.mx_port in last.relay and last.next_queue_id:
            self._follow_mx(rec, last.next_queue_id)
        elif last.status == "sent" and self.fake_port in last.relay:
            rec.outcome = "sent_remote"
        elif last.status == "bounced":
            rec.outcome = "bounced"
            self._follow_ndr(rec, rec.queue_id or "")
        else:
            rec.outcome = last.status

    def _follow_ndr(self, rec: Record, qid: str) -> None:
        logs.wait_for("NDR", lambda: logs.ndr_queue_id(self.postfix(), qid) is not None, WAIT_S)
        rec.ndr_queue_id = logs.ndr_queue_id(self.postfix(), qid)
        if rec.ndr_queue_id is None:
            self.problems.append(f"{rec.kind}: no sender non-delivery notification for {qid}")

    def settle_first_attempt(self, rec: Record) -> None:
        if rec.queue_id is None:
            return
        if rec.route == "mx":  # injected at the MX: the queue ID is already the MX's
            self._follow_mx(rec, rec.queue_id)
            return
        found = self._wait_delivery(rec.queue_id)
        rec.postfix_statuses = [d.status for d in found]
        if found:
            self._classify_first_hop(rec, found)

    # --- follow-ups
    def _postfix_cmd(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, timeout=30)

    def retry_greylisted(self, rec: Record, sent_at: float) -> None:
        """Retry after the greylist delay has passed (rspamd now logs "greylisting pass")."""
        if rec.outcome != "deferred" or rec.queue_id is None:
            self.problems.append(f"greylisted {rec.queue_id}: first attempt was {rec.outcome}, not deferred")
            return
        time.sleep(max(0.0, sent_at + GREYLIST_TIMEOUT_S + 1.0 - time.monotonic()))
        self._postfix_cmd("postqueue", "-c", self.postfix_config, "-i", rec.queue_id)
        found = self._wait_delivery(rec.queue_id, count=2)
        rec.postfix_statuses = [d.status for d in found]
        if len(found) >= 2:
            self._classify_first_hop(rec, found)

    def expire(self, rec: Record) -> None:
        """postsuper -e + immediate queue run: status=force-expired and an NDR."""
        if rec.outcome != "deferred" or rec.queue_id is None:
            self.problems.append(f"expired {rec.queue_id}: first attempt was {rec.outcome}, not deferred")
            return
        etc = self.postfix_config
        self._postfix_cmd("postsuper", "-c", etc, "-e", rec.queue_id)
        self._postfix_cmd("postqueue", "-c", etc, "-i", rec.queue_id)
        qid = rec.queue_id
        if logs.wait_for("force-expired", lambda: logs.force_expired(self.postfix(), qid), WAIT_S):
            rec.outcome = "expired"
            self._follow_ndr(rec, qid)
        else:
            self.problems.append(f"expired {qid}: no status=force-expired line")

    def delete(self, rec: Record) -> None:
        """postsuper -d: the deferred message is removed by the administrator (no NDR)."""
        if rec.outcome != "deferred" or rec.queue_id is None:
            self.problems.append(f"deleted {rec.queue_id}: first attempt was {rec.outcome}, not deferred")
            return
        self._postfix_cmd("postsuper", "-c", self.postfix_config, "-d", rec.queue_id)
        qid = rec.queue_id
        if logs.wait_for("postsuper removed", lambda: logs.deleted(self.postfix(), qid), WAIT_S):
            rec.outcome = "deleted"
        else:
            self.problems.append(f"deleted {qid}: no postsuper removed line")

    def ndr_delivered(self, rec: Record) -> bool:
        """Wait until the NDR reached the sender's mailbox: through the MX like any other mail (an NDR of
        the submission host), or straight into LMTP (an NDR of the MX)."""
        if not rec.ndr_queue_id:
            return False
        _qid, last = self._follow_hops(rec.ndr_queue_id)
        if last is not None and last.status == "sent" and self.mx_port in last.relay and last.next_queue_id:
            rec.ndr_via_mx = True  # scanned by rspamd at the MX, like any inbound message
            _qid, last = self._follow_hops(last.next_queue_id)
        return last is not None and last.status == "sent" and last.next_queue_id is None

    # --- rspamd
    def verdicts(self, rec: Record) -> list[dict[str, Any]]:
        """Every rspamd verdict line for this message (by Message-ID), in log order."""
        if not rec.message_id:
            return []
        mid = re.escape(rec.message_id.strip("<>"))
        out = []
        # rspamd_task_write_log: id: <mid>, qid: <QID>, ...
        #   (default: F (no action): [-1.00/15.00] [SYM(-0.10){opt;},...]), len: ...
        verdict = re.compile(
            rf"rspamd_task_write_log: id: <{mid}>,(?: qid: <(\w+)>,)?.*?"
            rf"\(default: \w \(([^)]+)\): \[([-\w.]+)/[\w.]+\] \[(.*?)\]\),"
        )
        for m in verdict.finditer(self.tails["rspamd"].text()):
            symbols = [s for s in re.findall(r"(?:^|,)([A-Z0-9_]+)\(", m.group(4)) if INTERESTING.match(s)]
            out.append({"qid": m.group(1), "action": m.group(2), "score": float(m.group(3)), "symbols": symbols})
        return out
