"""The Postfix-logs feature: the ``postfix:`` section, the ``postfix`` log format and its metrics."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mailpulse.exporter.configtools import Node
from mailpulse.exporter.feature import Context, Feature, Part, Service, Summary
from mailpulse.exporter.metrics.postfix import FAMILIES, LABEL_SETS, PostfixAggregator
from mailpulse.exporter.pipeline import Format
from mailpulse.exporter.status import StatusSection
from mailpulse.exporter.summary import SummaryAggregator
from mailpulse.exporter.tracking import metrics as tracking_metrics
from mailpulse.exporter.tracking.api import MESSAGE_TRACKING, DelayIndex, MessageTracking
from mailpulse.exporter.tracking.config import KEY_DOCS as TRACKING_KEY_DOCS
from mailpulse.exporter.tracking.config import TrackingConfig, parse_tracking
from mailpulse.exporter.tracking.runtime import TrackingRuntime, chain
from mailpulse.parsers.postfix import PostfixParser, PostfixParserConfig
from mailpulse.parsers.postfix import events as ev
from mailpulse.parsers.postfix.vocab import DELIVERY_REASONS, REJECT_REASONS
from mailpulse.parsers.syslog import split_line

LABEL_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

# What the keys of ``postfix:`` mean (docs/config.md is generated from this and parse_config below).
KEY_DOCS: dict[str, str] = {
    "postfix": "How Postfix logs are read: which program tags are Postfix, service names, and site rules "
    "for reply and relay classes. Absent: the defaults.",
    "postfix.instances": "First elements of program tags that are Postfix (`syslog_name`), exact or shell "
    "patterns. Add e.g. `amavisd` if a Postfix smtpd logs under that name.",
    "postfix.services": "The `service` label: the part of the tag between the instance and the daemon "
    "(`postfix/submission/smtpd` → `submission`), the daemon itself when there is none (`postfix/smtpd` → "
    "`smtpd`), and the instance for multi-instance setups (`postfix-out/smtp` → `postfix-out`).",
    "postfix.services.map": "Rename services, e.g. `{postfix-out: outbound}`.",
    "postfix.services.allow": "If set, only these services get their own label value; the rest are `other`.",
    "postfix.services.max": "At most this many distinct service values; later ones are `other` (reported in "
    '`mailpulse_postfix_service_names{state="refused"}`). Against junk tags (anyone can write `postfix/x1/smtpd` '
    "through `logger`): a service named after a Postfix daemon, a stock master.cf service (`submission`, `smtps`, "
    "`relay`, ...) or in `services.map`/`services.allow` gets its label at once; any other name only while fewer "
    "than half of `max` such names have one, and beyond that only after it was seen on 5 lines (its first lines "
    "count as `other`). A reload starts the cap afresh.",
    "postfix.reject_reasons": "Extra rules tried, in order, before the built-in ones on reject replies.",
    "postfix.reject_reasons[].pattern": "Searched in the reply text.",
    "postfix.reject_reasons[].reason": "The `reason` of a matching reject: one of the reject reasons in "
    "[metrics.md](metrics.md#label-values).",
    "postfix.delivery_reasons": "The same for deferred and bounced delivery replies.",
    "postfix.delivery_reasons[].pattern": "Searched in the remote server's reply.",
    "postfix.delivery_reasons[].reason": "The `reason` of a matching delivery failure: one of the delivery "
    "failure reasons in [metrics.md](metrics.md#label-values).",
    "postfix.relay_classes": "Rules on the relay host name, tried before the built-in classes (`none`, `local`, "
    "`socket`, `loopback`, `private`, `remote`).",
    "postfix.relay_classes[].pattern": "Searched in the relay host name, e.g. `(google|googlemail)\\.com$`.",
    "postfix.relay_classes[].class": "The `relay_class` of a matching relay, e.g. `google`.",
    **TRACKING_KEY_DOCS,
}


@dataclass(frozen=True)
class PostfixLogsConfig:
    """The ``postfix:`` section: the parser's settings and message tracking's."""

    parser: PostfixParserConfig = field(default_factory=PostfixParserConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


def postfix_timestamp(line: str) -> str | None:
    parts = split_line(line)
    return parts[0] if parts is not None else None


class PostfixLogs(Feature[PostfixLogsConfig]):
    name = "postfix"
    title = "Postfix logs"
    section = ("postfix",)
    families = FAMILIES + tracking_metrics.FAMILIES
    label_sets = {**LABEL_SETS, **tracking_metrics.LABEL_SETS}
    format_names = ("postfix",)
    key_docs = KEY_DOCS

    def __init__(self) -> None:
        # one aggregator for the life of the process: counters survive reloads
        self.aggregator = PostfixAggregator()
        self.tracking = TrackingRuntime()
        self.delays = DelayIndex()  # delays= of sent deliveries, for the probes' hop timelines (once asked)

    def parse_config(self, node: Node) -> PostfixLogsConfig:
        instances = tuple(node.str_list("instances", ["postfix", "postfix-*"]))
        services = node.child("services")
        service_map = services.str_map("map")
        allow = services.str_list("allow", None)
        max_services = services.integer("max", 50, minimum=1, maximum=1000)
        services.finish()
        tracking = parse_tracking(node.child("tracking"))
        providers = tuple(node.str_map("providers").items())
        for _, name in providers:
            if not LABEL_RE.match(name):
                node.problem(f"provider name {name!r} must match {LABEL_RE.pattern}", "providers")
        parser = PostfixParserConfig(
            instances=instances,
            service_map=service_map,
            service_allow=tuple(allow) if allow is not None else None,
            max_services=max_services,
            reject_rules=_rules(node, "reject_reasons", "reason", REJECT_REASONS),
            delivery_rules=_rules(node, "delivery_reasons", "reason", DELIVERY_REASONS),
            relay_classes=_rules(node, "relay_classes", "class", None),
            providers=providers,
            internal_relays=tracking.internal_relays,
        )
        return PostfixLogsConfig(parser, tracking)

    def absent(self) -> PostfixLogsConfig:
        return PostfixLogsConfig()

    def formats(self, config: PostfixLogsConfig | PostfixParserConfig) -> Sequence[Format]:
        if isinstance(config, PostfixParserConfig):  # scan_logs(postfix_config=...) and older callers
            config = PostfixLogsConfig(config)
        parser = PostfixParser(config.parser)
        # the service label's cap starts afresh with each parser (each load); the aggregator reports it
        self.aggregator.track_services(parser.programs)
        handlers = self.aggregator.handlers()
        self.tracking.apply(config.tracking, parser)
        if not config.tracking.enabled:
            return (Format("postfix", parser.parse_line, parser.parse_fields, handlers, postfix_timestamp),)
        tracker = self.tracking.tracker
        self.delays.source = parser
        handlers = chain(chain(handlers, tracker.handlers()), {ev.Delivery: self.delays.record})
        return (
            Format("postfix", parser.parse_line, parser.parse_fields, handlers, postfix_timestamp,
                   self.tracking.end_batch, tracker.flush),
        )  # fmt: skip

    def configure(self, config: PostfixLogsConfig, context: Context) -> Sequence[Service]:
        if not config.tracking.enabled:
            return ()
        self.tracking.start(context.state_dir, context.lock)
        # the probes' hop timelines (and any other reader) query the tracker through this capability
        context.capabilities.provide(
            MESSAGE_TRACKING, MessageTracking(self.tracking.tracker, context.lock, self.delays)
        )
        return (self.tracking,)

    def parts(self) -> Sequence[Part]:
        return (self.aggregator, self.tracking.metrics)

    def status(self) -> StatusSection | None:
        """Message tracking's section while tracking is on (the log sources are the kernel's section)."""
        if not self.tracking.config.enabled:
            return None
        from mailpulse.exporter.features.tracking_status import tracking_section  # noqa: PLC0415

        return tracking_section(self.tracking.metrics)

    def summary(self) -> Summary:
        report = SummaryAggregator()
        if self.tracking.config.enabled:
            report.follow(self.tracking.tracker)
        return report


def with_tracking(config: PostfixLogsConfig, **changes: object) -> PostfixLogsConfig:
    """A copy of ``config`` with some tracking keys changed (tests, benchmarks)."""
    return replace(config, tracking=replace(config.tracking, **changes))  # type: ignore[arg-type]


def _rules(node: Node, key: str, label: str, allowed: tuple[str, ...] | None) -> tuple[tuple[str, str], ...]:
    def parse(item: Node) -> tuple[str, str]:
        pattern = item.regex("pattern")
        value = item.string(label, pattern=LABEL_RE)
        if allowed is not None and value not in allowed:
            item.problem(f"must be one of {', '.join(allowed)} (got {value!r})", label)
        return pattern, value

    return tuple(node.list_of(key, parse))
