"""Bounded labels against junk (issue 9, A8): the reject code label takes only real SMTP reply codes, and junk
program tags cannot fill the service label cap for the life of the process."""

from __future__ import annotations

import pytest

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.metrics.postfix import PostfixAggregator
from mailpulse.parsers.postfix import PostfixParser, PostfixParserConfig
from mailpulse.parsers.postfix.program import ADMIT_AFTER, ProgramTable
from tests.helpers import Aggregators, build_formats

P = "Nov 24 16:58:17 mail postfix"


def reject(code: str, daemon: str = "smtpd") -> str:
    return (f"{P}/{daemon}[1]: NOQUEUE: reject: RCPT from x[192.0.2.1]: {code} 5.7.1 <a@b>: Relay access denied; "
            "from=<c@d> to=<a@b> proto=ESMTP helo=<x>")  # fmt: skip


@pytest.mark.parametrize(
    ("code", "label"),
    [("554", "554"), ("450", "450"), ("421", "421"), ("535", "535"), ("521", "521"), ("556", "556"),
     ("599", "other"), ("500", "500"), ("299", "other"), ("250", "other"), ("400", "other"), ("555", "555")],
)  # fmt: skip
def test_reject_code_label_is_a_real_reply_code_or_other(code: str, label: str) -> None:
    """Both families with a code label take the 4xx/5xx codes that exist; any other 3-digit number is other."""
    agg = PostfixAggregator()
    agg.handle(PostfixParser()(reject(code)))
    assert {("smtpd", "RCPT", label, "relay_denied"): 1} == agg.values["mailpulse_postfix_rejects_total"]
    assert {(label,): 1} == agg.values["postfix_smtpd_messages_rejected_total"]


def test_enhanced_code_only_and_no_code_keep_their_labels() -> None:
    """cleanup's milter-reject logs only 5.7.1: 5xx; an action without a reply: none."""
    agg = PostfixAggregator()
    parse = PostfixParser()
    agg.handle(parse(f"{P}/cleanup[1]: 4AA091855DA0: milter-reject: END-OF-MESSAGE from x[192.0.2.1]: 5.7.1 Spam; "
                     "from=<a@b> to=<c@d> proto=ESMTP helo=<x>"))  # fmt: skip
    assert {("cleanup", "END-OF-MESSAGE", "5xx", "milter")} == set(agg.values["mailpulse_postfix_rejects_total"])


def tag_line(service: str) -> str:
    return f"{P}/{service}/smtpd[1]: connect from x[192.0.2.1]"


def test_junk_tags_cannot_fill_the_service_cap() -> None:
    """Half the cap is first come, first served; the rest needs a name seen on ADMIT_AFTER lines, which
    one-off junk never is, so real services arriving later still get their own label."""
    parse = PostfixParser(PostfixParserConfig(max_services=10))
    junk = [parse(tag_line(f"junk{i}")).service for i in range(1000)]  # type: ignore[union-attr]
    assert 5 == sum(s != "other" for s in junk)  # the first-come half
    first_lines = [parse(tag_line("submission2")).service for _ in range(ADMIT_AFTER + 2)]  # type: ignore[union-attr]
    assert ["other"] * (ADMIT_AFTER - 1) + ["submission2"] * 3 == first_lines
    assert "submission" == parse(tag_line("submission")).service  # type: ignore[union-attr]  # stock: at once
    assert "smtpd" == parse(f"{P}/smtpd[1]: connect from x[192.0.2.1]").service  # type: ignore[union-attr]


def test_refused_names_are_reported_and_reload_resets_the_cap() -> None:
    """Names refused because the cap was full show in mailpulse_postfix_service_names{state="refused"}; a
    reload builds a new table, so the cap starts empty again."""
    aggregators = Aggregators.create(RspamdConfig())
    config = PostfixParserConfig(max_services=4)
    fmt = build_formats(aggregators, config, RspamdConfig())["postfix"]
    for i in range(6):
        for _ in range(ADMIT_AFTER):
            fmt.parse_line(tag_line(f"svc{i}"))
    names = {tuple(m.samples[i].labels.values()): m.samples[i].value
             for m in aggregators.postfix.collect() if m.name == "mailpulse_postfix_service_names"
             for i in range(len(m.samples))}  # fmt: skip
    assert {("labelled",): 4, ("refused",): 2} == names
    fmt = build_formats(aggregators, config, RspamdConfig())["postfix"]  # what a reload does
    assert "svc5" == fmt.parse_line(tag_line("svc5")).service  # type: ignore[attr-defined]


def test_configured_services_are_labelled_at_once() -> None:
    """services.map targets and services.allow entries never wait for ADMIT_AFTER lines."""
    table = ProgramTable(service_map={"postfix-out": "outbound"}, service_allow=None, max_services=2)
    table.lookup("postfix-a1/smtpd")  # takes the one first-come slot
    program = table.lookup("postfix-out/smtp")
    assert program is not None
    assert ("outbound", True) == (program.service, program.settled)
    assert 2 == table.labelled
