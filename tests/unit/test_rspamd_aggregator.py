"""rspamd events → numbers → families: labels, rules and the batched counting of verdicts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.metrics import rspamd as m
from mailpulse.exporter.metrics.rspamd import FAMILIES, RspamdAggregator
from mailpulse.parsers.rspamd import RspamdParser
from mailpulse.parsers.rspamd.vocab import SCAN_ACTIONS

TS = "2026-11-24 16:58:18"


def verdict(action: str = "no action", score: str = "-0.20", symbols: str = "R_SPF_ALLOW(-0.20){+ip4:1.2.3.4;}",
            extra: str = "", head: str = "ip: 192.0.2.20, from: <a@sender.test>,", size: str = "604",
            time: str = "46.243") -> str:  # fmt: skip
    flag = "F" if action in {"no action", "soft reject"} else "T"
    return (
        f"{TS} #1287(normal) <16afc4>; task; rspamd_task_write_log: id: <m@x>, qid: <Q1>, {head} "
        f"(default: {flag} ({action}): [{score}/15.00] [{symbols}]), len: {size}, time: {time}ms, dns req: 18, "
        f"digest: <4837a749702151f3a23169ec7a165bfa>, rcpts: <bob@example.test>{extra}"
    )


class _Wrap(Collector):
    def __init__(self, agg: RspamdAggregator) -> None:
        self.agg = agg

    def collect(self) -> Iterator[Metric]:
        return self.agg.collect()


def run(lines: Iterable[str], config: RspamdConfig | None = None) -> tuple[RspamdAggregator, CollectorRegistry]:
    agg = RspamdAggregator(config or RspamdConfig())
    handlers = agg.handlers()
    parser = RspamdParser()
    for line in lines:
        event = parser.parse_line(line)
        handler = handlers.get(type(event))
        if handler is not None:
            handler(event)
    agg.end_batch()  # as the pipeline does at the end of every batch of lines
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Wrap(agg))
    return agg, registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_families_are_unique_and_prefixed() -> None:
    """Every family is mailpulse_rspamd_*: never one of rspamd's own rspamd_* names."""
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    assert all(n.startswith("mailpulse_rspamd_") for n in names)


def test_every_action_is_precreated() -> None:
    """All actions exist at 0 from the first scrape (alerts on rate() and absent() work at once)."""
    _, reg = run([])
    for action in SCAN_ACTIONS:
        assert value(reg, "mailpulse_rspamd_scans_total", action=action) == 0.0
    assert value(reg, "mailpulse_rspamd_auth_results_total", method="dkim", result="reject") == 0.0
    assert value(reg, "mailpulse_rspamd_errors_total", **{"class": "redis"}) == 0.0


def test_actions_and_the_greylist_rule() -> None:
    """The action, not the flag; a soft reject forced by greylist is greylist, by ratelimit it stays
    soft_reject; custom actions are other."""
    greylisted = verdict("soft reject", extra=', forced: soft reject "Try again later"; score=nan (set by greylist)')
    limited = verdict(
        "soft reject", extra=', forced: soft reject "Ratelimit "to" exceeded"; score=nan (set by ratelimit)'
    )
    _, reg = run([verdict(), verdict("reject", "16.00"), greylisted, greylisted, limited, verdict("discard"),
                  verdict("greylist", "4.30")])  # fmt: skip
    assert value(reg, "mailpulse_rspamd_scans_total", action="no_action") == 1
    assert value(reg, "mailpulse_rspamd_scans_total", action="reject") == 1
    assert value(reg, "mailpulse_rspamd_scans_total", action="greylist") == 3
    assert value(reg, "mailpulse_rspamd_scans_total", action="soft_reject") == 1
    assert value(reg, "mailpulse_rspamd_scans_total", action="other") == 1
    assert value(reg, "mailpulse_rspamd_forced_actions_total", action="soft_reject", module="greylist") == 2
    assert value(reg, "mailpulse_rspamd_forced_actions_total", action="soft_reject", module="ratelimit") == 1


def test_forced_modules_are_bounded() -> None:
    """rspamd's modules keep their names (GTUBE → gtube, task timeout → task_timeout), a site's own only when
    configured, everything else is other; a value cut before its module is other."""
    lines = [
        verdict("reject", extra=', forced: reject "Gtube pattern"; score=15.00 (set by GTUBE)'),
        verdict("soft reject", extra=', forced: soft reject "timeout processing message"; score=nan (set by task timeout)'),
        verdict("soft reject", extra=', forced: soft reject "lab forced soft reject"; score=nan (set by lab)'),
        verdict("soft reject", extra=', forced: soft reject "x"; score=nan (set by my_secret_module_123)'),
        verdict("reject", extra=', forced: reject "clamav: virus found: "A.Very.Long.Name'),
    ]  # fmt: skip
    _, reg = run(lines, RspamdConfig(forced_modules=("lab",)))
    assert value(reg, "mailpulse_rspamd_forced_actions_total", action="reject", module="gtube") == 1
    assert value(reg, "mailpulse_rspamd_forced_actions_total", action="soft_reject", module="task_timeout") == 1
    assert value(reg, "mailpulse_rspamd_forced_actions_total", action="soft_reject", module="lab") == 1
    assert value(reg, "mailpulse_rspamd_forced_actions_total", action="soft_reject", module="other") == 1
    assert value(reg, "mailpulse_rspamd_forced_actions_total", action="reject", module="other") == 1


def test_histograms() -> None:
    """Score (negative buckets), scan time in seconds, size; nan scores and unknown sizes are not observed."""
    _, reg = run([verdict(score="-0.20", time="46.243", size="604"), verdict(score="15.00", time="1506.209"),
                  verdict(score="nan")])  # fmt: skip
    assert value(reg, "mailpulse_rspamd_scan_score_bucket", le="0.0") == 1
    assert value(reg, "mailpulse_rspamd_scan_score_bucket", le="15.0") == 2
    assert value(reg, "mailpulse_rspamd_scan_score_bucket", le="+Inf") == 2
    assert value(reg, "mailpulse_rspamd_scan_duration_seconds_bucket", le="0.05") == 2
    assert value(reg, "mailpulse_rspamd_scan_duration_seconds_bucket", le="2.5") == 3
    assert value(reg, "mailpulse_rspamd_scan_duration_seconds_count") == 3
    assert value(reg, "mailpulse_rspamd_message_size_bytes_bucket", le="1024.0") == 3
    sum_seconds = value(reg, "mailpulse_rspamd_scan_duration_seconds_sum")
    assert sum_seconds is not None
    assert abs(sum_seconds - (0.046243 * 2 + 1.506209)) < 1e-9


def test_auth_results_one_per_method_and_scan() -> None:
    """Each scan adds one result per method; ``none`` when the method did not run."""
    inbound = "DMARC_POLICY_ALLOW(-0.50){x;reject;},R_DKIM_ALLOW(-0.20){x:s=lab;},R_SPF_ALLOW(-0.20){+ip4:1.2.3.4;},ARC_NA(0.00){}"
    _, reg = run([verdict(symbols=inbound), verdict(symbols="GTUBE(0.00){}")])
    for method, result in (("dkim", "allow"), ("spf", "allow"), ("dmarc", "allow"), ("arc", "na")):
        assert value(reg, "mailpulse_rspamd_auth_results_total", method=method, result=result) == 1
        assert value(reg, "mailpulse_rspamd_auth_results_total", method=method, result="none") == 1


def test_signing_by_configured_domain() -> None:
    """DKIM_SIGNED domains: configured ones by name, the rest as other; authenticated scans signed or not."""
    signed = "MIME_GOOD(-0.10){text/plain;},DKIM_SIGNED(0.00){example.test:s=lab;}"
    user = "ip: 127.0.0.1, user: probe@example.test, from: <probe@example.test>,"
    lines = [
        verdict(symbols=signed, head=user),
        verdict(symbols="DKIM_SIGNED(0.00){Example.TEST:s=lab;customer.test:s=x;}", head=user),
        verdict(symbols="MIME_GOOD(-0.10){text/plain;}", head=user),
        verdict(),
    ]
    _, reg = run(lines, RspamdConfig(signing_domains=("example.test", "unused.test")))
    assert value(reg, "mailpulse_rspamd_dkim_signatures_total", domain="example.test") == 2
    assert value(reg, "mailpulse_rspamd_dkim_signatures_total", domain="other") == 1
    assert value(reg, "mailpulse_rspamd_dkim_signatures_total", domain="unused.test") == 0  # pre-created
    assert value(reg, "mailpulse_rspamd_authenticated_scans_total", signed="true") == 2
    assert value(reg, "mailpulse_rspamd_authenticated_scans_total", signed="false") == 1


def test_antivirus_and_symbol_allowlist() -> None:
    """Detections and scanner failures by scanner; hits only for allowlisted symbols, at boundaries."""
    lines = [
        verdict(symbols="MIME_BAD_EXTENSION(4.00){com;},CLAM_VIRUS(0.00){Eicar;}"),
        verdict(symbols="CLAM_VIRUS_FAIL(0.00){failed to scan and retransmits exceed;},BAYES_SPAM(5.10){99%;}"),
        verdict(symbols="X(0.00){CLAM_VIRUS(},BAYES_SPAM(5.10){99%;}"),
    ]
    _, reg = run(lines, RspamdConfig(symbols=("BAYES_SPAM", "RBL_SPAMHAUS_SBL")))
    assert value(reg, "mailpulse_rspamd_virus_detections_total", scanner="clamav") == 1
    assert value(reg, "mailpulse_rspamd_antivirus_failures_total", scanner="clamav") == 1
    assert value(reg, "mailpulse_rspamd_virus_detections_total", scanner="sophos") == 0
    assert value(reg, "mailpulse_rspamd_symbol_hits_total", symbol="BAYES_SPAM") == 2
    assert value(reg, "mailpulse_rspamd_symbol_hits_total", symbol="RBL_SPAMHAUS_SBL") == 0
    assert value(reg, "mailpulse_rspamd_symbol_hits_total", symbol="MIME_BAD_EXTENSION") is None


def test_repeated_errors_are_multiplied() -> None:
    """``Last message repeated 5 times`` after an error line: 4 more occurrences than lines (see
    RspamdRepeated), counted for the process that wrote them; repeats of noise count nothing."""
    lines = [f"{TS} #1285(controller) <8mjxqq>; map; rspamd_map_dns_callback: cannot resolve maps.rspamd.com"] * 5
    lines += [
        f"{TS} #1287(normal) <16afc4>; task; rspamd_mime_part_detect_language: detected part language: en",
        f"{TS} #1285(controller) rspamd_log_reset_repeated: Last message repeated 5 times",
        f"{TS} #1287(normal) rspamd_log_reset_repeated: Last message repeated 300 times",
    ]
    _, reg = run(lines)
    assert value(reg, "mailpulse_rspamd_errors_total", **{"class": "map"}) == 9


def test_repeated_verdicts_count_as_scans() -> None:
    """A repeated verdict (slow path: a journald or syslog line) counts as that many scans."""
    agg, reg = run([])
    parser = RspamdParser()
    handlers = agg.handlers()
    for line in (verdict(), f"{TS} #1287(normal) rspamd_log_reset_repeated: Last message repeated 3 times"):
        event = parser.parse_fields(TS, "rspamd", "#1287(normal) " + line.partition("#1287(normal) ")[2])
        handlers[type(event)](event)
    assert value(reg, "mailpulse_rspamd_scans_total", action="no_action") == 3


def test_side_line_families() -> None:
    """Lifecycle, greylist decisions, ratelimit buckets (bounded), learns, unparsed lines by kind."""
    main = f"{TS} #1280(main) <fcc6c3>; main; "
    lines = [
        main + "rspamd_check_termination_clause: normal process 28503 terminated abnormally with exit code 0 by signal",
        main + "rspamd_cld_handler: respawn process normal in lieu of terminated process with pid 28503",
        f'{TS} #1287(normal) <1>; lua; greylist.lua:430: greylisted until "Tue, 24 Nov 2026 15:48:08 GMT", new record',
        f"{TS} #1287(normal) <1>; lua; greylist.lua:370: greylisting pass (body) until Wed, 25 Nov 2026",
        *(f'{TS} #1287(normal) <1>; lua; ratelimit.lua:617: ratelimit "b{i}(1:x@y)" exceeded, (2 / 1)' for i in range(25)),
        f"{TS} #1285(controller) <2>; csession; rspamd_controller_learn_fin_task: <127.0.0.1> learned message as spam: m",
        f"{TS} #1287(normal) <16afc4>; task; rspamd_task_write_log: id: <broken",
        "not an rspamd line",
        verdict().partition(" [R_SPF")[0] + " [R_SPF_ALLOW(-0.20){cut",
    ]  # fmt: skip
    _, reg = run(lines)
    assert value(reg, "mailpulse_rspamd_lifecycle_events_total", event="worker_crash", process="normal") == 1
    assert value(reg, "mailpulse_rspamd_lifecycle_events_total", event="worker_respawn", process="normal") == 1
    assert value(reg, "mailpulse_rspamd_greylist_checks_total", result="new") == 1
    assert value(reg, "mailpulse_rspamd_greylist_checks_total", result="pass") == 1
    assert value(reg, "mailpulse_rspamd_greylist_checks_total", result="too_early") == 0
    assert value(reg, "mailpulse_rspamd_ratelimit_exceeded_total", bucket="b0") == 1
    assert value(reg, "mailpulse_rspamd_ratelimit_exceeded_total", bucket="other") == 5
    assert value(reg, "mailpulse_rspamd_learns_total", **{"class": "spam", "result": "learned"}) == 1
    assert value(reg, "mailpulse_rspamd_unparsed_lines_total", kind="verdict") == 1
    assert value(reg, "mailpulse_rspamd_unparsed_lines_total", kind="prefix") == 1
    assert value(reg, "mailpulse_rspamd_truncated_verdicts_total") == 1


def test_batches_are_counted_at_batch_end_and_on_their_own_and_a_scrape_changes_nothing() -> None:
    """Verdicts are queued and counted in batches: a full batch at once, the rest at the end of the
    pipeline's batch; a scrape only reads (what is still queued is not counted by it)."""
    agg = RspamdAggregator(RspamdConfig())
    parser = RspamdParser()
    for _ in range(m.BATCH + 3):
        agg.handle(parser.parse_line(verdict()))
    assert len(agg._batch) == 3  # one full batch already counted
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Wrap(agg))
    assert value(registry, "mailpulse_rspamd_scans_total", action="no_action") == m.BATCH
    assert len(agg._batch) == 3
    agg.end_batch()
    assert agg._batch == []
    assert value(registry, "mailpulse_rspamd_scans_total", action="no_action") == m.BATCH + 3
    # a second scrape counts nothing twice
    assert value(registry, "mailpulse_rspamd_scans_total", action="no_action") == m.BATCH + 3


def test_reconfigure_keeps_counts() -> None:
    """A reload changes label sets, not counts."""
    signed = verdict(symbols="DKIM_SIGNED(0.00){example.test:s=lab;}")
    agg, reg = run([signed])
    assert value(reg, "mailpulse_rspamd_dkim_signatures_total", domain="other") == 1
    agg.reconfigure(RspamdConfig(signing_domains=("example.test",)))
    handlers = agg.handlers()
    event = RspamdParser().parse_line(signed)
    handlers[type(event)](event)
    agg.end_batch()
    assert value(reg, "mailpulse_rspamd_dkim_signatures_total", domain="other") == 1
    assert value(reg, "mailpulse_rspamd_dkim_signatures_total", domain="example.test") == 1
    assert value(reg, "mailpulse_rspamd_scans_total", action="no_action") == 2


def test_exposition_text() -> None:
    """One family exactly as Prometheus reads it."""
    _, reg = run([verdict("add header", "6.30")])
    text = generate_latest(reg).decode()
    assert "# HELP mailpulse_rspamd_scans_total Messages scanned (verdict lines), by the action rspamd took: " in text
    assert "# TYPE mailpulse_rspamd_scans_total counter\n" in text
    assert 'mailpulse_rspamd_scans_total{action="add_header"} 1.0\n' in text
