"""The result of one probe run: what the CLI prints as JSON and what the metrics are made of."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailpulse.probes.timeline import Timeline

OUTCOMES = ("delivered", "delivered_late", "lost", "failed")
FOLDERS = ("inbox", "junk", "other")


@dataclass
class ProbeResult:
    probe: str
    route: str
    target: str
    outcome: str = "failed"  # delivered | delivered_late | lost | failed
    stage: str | None = None  # set unless delivered: send | receive | deliver | internal
    reason: str | None = None  # bounded, see probes/errors.py
    error: str | None = None  # human text; never a label
    latency_seconds: float | None = None
    detection_delay_seconds: float | None = None  # seen by mailpulse - INTERNALDATE
    folder: str | None = None  # inbox | junk | other
    folder_name: str | None = None
    # the receiver's Authentication-Results (or the autoresponder's report)
    dkim: str | None = None
    spf: str | None = None
    dmarc: str | None = None
    arc: str | None = None
    compauth: str | None = None
    authserv_id: str | None = None
    spf_domain: str | None = None  # the smtp.mailfrom domain the receiver's SPF result is for
    auth_source: str | None = None  # receiver | autoresponder
    dkim_own: str | None = None  # mailpulse's own check of the received copy
    dkim_own_domain: str | None = None
    spam_score: float | None = None
    spam_engine: str | None = None
    spam_flagged: bool | None = None
    spam_action: str | None = None
    provider_dest: str | None = None  # Microsoft's dest:J/I/C verdict
    queue_id: str | None = None
    tls_version: str | None = None
    smtp_reply: str | None = None
    message_id: str | None = None
    started_at: float | None = None
    accepted_at: float | None = None
    finished_at: float | None = None
    send_seconds: float | None = None
    watch_mode: str | None = None  # idle | poll | scan: how the arrival was noticed
    held: str | None = None  # a lost or late run: where its message was held and the log's reason
    timeline: Timeline | None = None  # from the message tracker, when the daemon tails the Postfix logs
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"

    def fail(self, stage: str, reason: str, error: str, outcome: str = "failed") -> ProbeResult:
        self.outcome, self.stage, self.reason, self.error = outcome, stage, reason, error
        return self

    def as_json(self) -> dict[str, Any]:
        timeline, self.timeline = self.timeline, None  # asdict would copy it field by field
        try:
            out = asdict(self)
        finally:
            self.timeline = timeline
        if timeline is not None:
            out["timeline"] = timeline.as_json()
        extra = out.pop("extra")
        out.update(extra)
        for key in ("latency_seconds", "detection_delay_seconds", "send_seconds"):
            if out[key] is not None:
                out[key] = round(out[key], 3)
        return out

    @property
    def auth(self) -> dict[str, str]:
        methods = {"dkim": self.dkim, "spf": self.spf, "dmarc": self.dmarc, "arc": self.arc,
                   "compauth": self.compauth}  # fmt: skip
        return {k: v for k, v in methods.items() if v is not None}
