"""No line stops a source (issue 9, A3): a line whose parsing or counting raises is counted as an error, by
rule, and skipped; the rest of its batch is counted once; the exception is logged once per rule, rate-limited.

A bug is needed to test this, and mailpulse has none known, so the tests plant one: a rule compiled with
module name ``parsers.planted`` (or ``exporter.planted``), as if it lived in mailpulse's code.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from mailpulse import main
from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.metrics.sources import SourcesAggregator, SourceStats
from mailpulse.exporter.pipeline import ErrorLog, Format, LinePipeline
from mailpulse.exporter.sources.files import FileSource
from mailpulse.parsers import postfix as postfix_package
from mailpulse.parsers.postfix import PostfixParser, PostfixParserConfig
from mailpulse.parsers.results import PARSERS_PACKAGE, RuleError, set_strict
from tests.helpers import Aggregators, build_formats

# module names of planted rules, as if they lived in mailpulse's code (whatever the import package is called)
PARSERS_PLANTED = f"{PARSERS_PACKAGE}.planted"
EXPORTER_PLANTED = f"{LinePipeline.__module__.rpartition('.')[0]}.planted"

P = "Nov 24 16:58:17 mail postfix"
REMOVED = f"{P}/qmgr[1]: 4AA091855DA0: removed"
CONNECT = f"{P}/smtpd[1]: connect from x[192.0.2.1]"
POISON = f"{P}/pickup[1]: 4AA091855DA0: uid=0 from=<root>"  # the shape the planted rule fails on


def planted(module: str, body: str = "raise KeyError('planted bug')") -> Callable[..., Any]:
    """A function that raises, whose frames say it lives in ``module``."""
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile(f"def rule(*args):\n    {body}\n", f"<{module}>", "exec"), namespace)
    return namespace["rule"]  # type: ignore[no-any-return]


@pytest.fixture
def rig() -> tuple[PostfixParser, LinePipeline, SourcesAggregator]:
    """The real wiring, with pickup's rule replaced by a planted bug."""
    aggregators = Aggregators.create(RspamdConfig())
    formats = build_formats(aggregators, PostfixParserConfig(), RspamdConfig())
    parser: PostfixParser = formats["postfix"].parse_line.__self__  # type: ignore[attr-defined]
    parser.handlers["pickup"] = planted(PARSERS_PLANTED)
    parser._programs.clear()  # the handler is looked up once per tag: forget the cached one
    sources = SourcesAggregator()
    return parser, LinePipeline(sources.stats("mail"), [formats["postfix"]], threading.Lock()), sources


def counts(stats: SourceStats) -> dict[str, int]:
    return {"parsed": stats.parsed, "unparsed": stats.unparsed, "foreign": stats.foreign, "error": stats.error_lines}


def test_a_rule_that_raises_is_an_error_by_rule_and_the_batch_goes_on(
    rig: tuple[PostfixParser, LinePipeline, SourcesAggregator],
) -> None:
    """The failing lines are errors (not unparsed, not hidden), by rule; the other lines count once."""
    parser, pipeline, _ = rig
    assert isinstance(parser(POISON), RuleError)
    with capture_logs() as logs:
        pipeline.feed([REMOVED, POISON, CONNECT, POISON, REMOVED, "junk"])
    assert {"parsed": 3, "unparsed": 1, "foreign": 0, "error": 2} == counts(pipeline.stats)
    assert {"planted.rule": 2} == pipeline.stats.rule_errors
    errors = [e for e in logs if e["log_level"] == "error"]
    assert 1 == len(errors)  # once per rule within the interval, not once per line
    assert "planted.rule" == errors[0]["rule"]
    assert "KeyError: 'planted bug'" == errors[0]["error"]
    assert ascii(POISON) == errors[0]["line"]


def test_a_handler_that_raises_is_an_error_and_not_also_parsed() -> None:
    """An aggregator's handler raising: the line is an error only; the batch's other lines count once."""
    aggregators = Aggregators.create(RspamdConfig())
    fmt = build_formats(aggregators, PostfixParserConfig(), RspamdConfig())["postfix"]
    handlers = dict(fmt.handlers)
    connect_type = type(PostfixParser()(CONNECT))
    handlers[connect_type] = planted(EXPORTER_PLANTED)
    stats = SourceStats("mail")
    pipeline = LinePipeline(stats, [Format("postfix", fmt.parse_line, fmt.parse_fields, handlers, fmt.timestamp_of)],
                            threading.Lock())  # fmt: skip
    with capture_logs():
        pipeline.feed([CONNECT, REMOVED, CONNECT, REMOVED])
    assert {"parsed": 2, "unparsed": 0, "foreign": 0, "error": 2} == counts(stats)
    assert {"planted.rule": 2} == stats.rule_errors
    assert 2 == aggregators.postfix.values["postfix_qmgr_messages_removed_total"][()]


def test_a_parser_that_raises_outside_its_rules_is_caught_by_the_pipeline() -> None:
    """A bug in a parser's own prefix code (outside the per-rule guard) still only costs its line."""
    boom = planted(PARSERS_PLANTED, "if args[0] == 'bad': raise IndexError('prefix bug')")
    stats = SourceStats("mail")
    pipeline = LinePipeline(stats, [Format("x", boom, boom, {}, lambda line: None)], threading.Lock())
    with capture_logs():
        pipeline.feed(["ok", "bad", "ok", "bad", "ok"])
    assert {"parsed": 3, "unparsed": 0, "foreign": 0, "error": 2} == counts(stats)
    assert {"planted.rule": 2} == stats.rule_errors


def test_multi_format_and_journald_paths_count_errors_too() -> None:
    """The two other entry points (several formats; journald fields) never raise either."""
    boom = planted(PARSERS_PLANTED, "if 'bad' in args[-1]: raise ValueError('x')")
    stats = SourceStats("mail")
    fmt = Format("x", boom, boom, {}, lambda line: None)
    pipeline = LinePipeline(stats, [fmt, fmt], threading.Lock())
    with capture_logs():
        pipeline.feed(["ok", "bad", "ok"])
        pipeline.feed_fields("2026-11-24T16:58:17+00:00", "postfix/smtpd", "bad")
        pipeline.feed_fields("2026-11-24T16:58:17+00:00", "postfix/smtpd", "ok")
    assert {"parsed": 3, "unparsed": 0, "foreign": 0, "error": 2} == counts(stats)


def test_the_rule_label_is_bounded() -> None:
    """Rule names come from the code, and a source keeps at most 20 of them anyway."""
    stats = SourceStats("mail")
    for i in range(30):
        stats.rule_error(f"r{i}")
    assert 21 == len(stats.rule_errors)
    assert 10 == stats.rule_errors["other"]


def test_error_log_is_rate_limited_per_rule() -> None:
    """At most one log line per rule per interval, and the next one says how many were not logged."""
    now = [0.0]
    error_log = ErrorLog("mail", interval=60, clock=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(5):
            error_log("postfix", "a.rule", ValueError("x"), "line")
        error_log("postfix", "b.rule", ValueError("y"), "line")
        now[0] = 61.0
        error_log("postfix", "a.rule", ValueError("x"), "line")
    assert [("a.rule", 0), ("b.rule", 0), ("a.rule", 4)] == [(e["rule"], e["not_logged_since_last"]) for e in logs]


def test_strict_mode_lets_the_exception_through(rig: tuple[PostfixParser, LinePipeline, SourcesAggregator]) -> None:
    """In strict mode (the property tests) a rule that raises fails loudly instead of becoming a RuleError."""
    parser, _, _ = rig
    set_strict(True)
    try:
        with pytest.raises(KeyError, match="planted bug"):
            parser(POISON)
    finally:
        set_strict(False)


def test_a_file_source_is_never_stalled_and_never_recounts(
    rig: tuple[PostfixParser, LinePipeline, SourcesAggregator], tmp_path: Path
) -> None:
    """The crash loop of the issue: a poison line in a batch made the source raise before saving its offset,
    so the batch was read and counted again and again. Now the batch is counted once and the offset saved."""
    _, pipeline, sources = rig
    log = tmp_path / "mail.log"
    log.write_text("\n".join([REMOVED, POISON, CONNECT]) + "\n")
    source = FileSource(sources.stats("mail"), str(log), str(tmp_path / "mail.offset"), pipeline.feed,
                        start_at_end=False)  # fmt: skip
    with capture_logs():
        for _ in range(3):
            source.poll()
        with log.open("a") as fh:
            fh.write(REMOVED + "\n")
        for _ in range(3):
            source.poll()
    assert {"parsed": 3, "unparsed": 0, "foreign": 0, "error": 1} == counts(pipeline.stats)
    assert 1 == pipeline.stats.up
    assert f"\noffset {log.stat().st_size}\n" in (tmp_path / "mail.offset").read_text()


def test_scan_keeps_stdout_for_metrics_when_a_rule_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`mailpulse scan` with a failing rule: the exposition on stdout is whole and parses, with the error
    counted; the log line goes to stderr."""
    monkeypatch.setattr(postfix_package, "parse_pickup", planted(PARSERS_PLANTED))
    log = tmp_path / "mail.log"
    log.write_text("\n".join([REMOVED, POISON, CONNECT]) + "\n")
    out, err = io.StringIO(), io.StringIO()
    assert 0 == main(["scan", "--no-progress", "--postfix", str(log)], out=out, err=err)
    samples = {(s.name, s.labels.get("result")): s.value
               for f in text_string_to_metric_families(out.getvalue()) for s in f.samples
               if s.name == "mailpulse_log_lines_total"}  # fmt: skip
    assert {("mailpulse_log_lines_total", r): n for r, n in
            (("parsed", 2), ("unparsed", 0), ("foreign", 0), ("error", 1))} == samples  # fmt: skip
    assert "a line made a rule fail" in err.getvalue()
    assert "planted.rule" in err.getvalue()


def test_an_exception_that_cannot_be_printed_is_still_counted() -> None:
    """Logging the failure must not become a second failure."""
    boom = planted(PARSERS_PLANTED, "raise type('Odd', (Exception,), {'__str__': lambda self: 1 / 0})()")
    stats = SourceStats("mail")
    pipeline = LinePipeline(stats, [Format("x", boom, boom, {}, lambda line: None)], threading.Lock())
    with capture_logs():
        pipeline.feed(["a", "b"])
    assert {"parsed": 0, "unparsed": 0, "foreign": 0, "error": 2} == counts(stats)
