"""The lab's captured Postfix log, parsed and counted, against what the lab's traffic driver says it did.

tests/fixtures/lab/ holds a real Postfix 3.7 log and the driver's JSON report from one run of
``lab/mail-lab capture-fixtures`` (see docs/lab.md). The driver knows what it sent and how each message
ended; these tests check that mailpulse's counts say the same.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailpulse.exporter.features import scan_logs as scan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"


@pytest.fixture(scope="module")
def traffic() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "traffic.json").read_text())
    return data


@pytest.fixture(scope="module")
def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = io.StringIO()
    assert scan([str(FIXTURES / "postfix.log")], [], progress=False, out=out) == 0
    table: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(out.getvalue()):
        for s in family.samples:
            table[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return table


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **match: str) -> float:
    return sum(
        v for (n, labels), v in samples.items() if n == name and all(dict(labels).get(k) == w for k, w in match.items())
    )


def test_every_lab_line_is_parsed(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    """Every line the lab's Postfix wrote is recognised: no unparsed, no foreign."""
    assert total(samples, "mailpulse_log_lines_total", result="unparsed") == 0
    assert total(samples, "mailpulse_log_lines_total", result="foreign") == 0
    assert total(samples, "mailpulse_log_lines_total", result="parsed") > 1000


def test_sasl_failures_match_the_driver(samples: Any, traffic: dict[str, Any]) -> None:
    """One SASL failure line per failed login, split by submission service."""
    counts = traffic["counts"]
    assert counts["auth_failures_587"] == total(samples, "mailpulse_postfix_sasl_failures_total", service="submission")
    assert counts["auth_failures_465"] == total(samples, "mailpulse_postfix_sasl_failures_total", service="smtps")
    assert counts["auth_failures_587"] + counts["auth_failures_465"] == total(
        samples, "postfix_smtpd_sasl_authentication_failures_total"
    )


def test_rejects_by_reason_match_the_driver(samples: Any, traffic: dict[str, Any]) -> None:
    """Unknown recipients, relay attempts and milter rejects land in their reason classes."""
    counts = traffic["counts"]
    # (the lab's fake remote MX also rejects with 5.1.1: its own rejects, not the driver's)
    assert counts["rejected_unknown_recipient"] == total(
        samples, "mailpulse_postfix_rejects_total", service="submission", reason="unknown_user"
    )
    assert counts["relay_denied_mx"] == total(samples, "mailpulse_postfix_rejects_total", reason="relay_denied")
    # the client-certificate relay refuses a client without a certificate with "Recipient address rejected:
    # Access denied" (check_recipient_access): the object rejected is the recipient, not the client
    assert counts["relay_denied_nocert"] == total(
        samples, "mailpulse_postfix_rejects_total", service="relay", reason="recipient"
    )
    # GTUBE at submission and at the MX, and DMARC p=reject on spoofed mail: all rspamd milter rejects
    milter_5xx = counts["spam_rejected_submission"] + counts["spam_rejected_mx"] + counts["spoofed"]
    assert milter_5xx == total(samples, "mailpulse_postfix_rejects_total", reason="milter", code="5xx")
    # greylisting is a milter soft reject (4xx, "4.7.1 Try again later") at the MX: reason greylist
    assert counts["greylisted"] == total(samples, "mailpulse_postfix_rejects_total", reason="greylist", code="4xx")
    assert 0 == total(samples, "mailpulse_postfix_rejects_total", reason="milter", code="4xx")


def test_delivery_outcomes_match_the_driver(samples: Any, traffic: dict[str, Any]) -> None:
    """Every Postfix status the driver observed for its messages is counted once, plus delivered NDRs."""
    statuses: Counter[str] = Counter()
    for record in traffic["records"]:
        statuses.update(record["postfix_statuses"])
    # an NDR to probe@example.test takes two hops in the lab, like any mail: smtp to the MX, then lmtp
    statuses["sent"] += 2 * traffic["derived"]["ndr_delivered"]
    for status in ("sent", "deferred", "bounced"):
        assert statuses[status] == total(samples, "mailpulse_postfix_deliveries_total", status=status), status
    assert traffic["derived"]["postfix_deferred_attempts"] == total(
        samples, "mailpulse_postfix_deliveries_total", status="deferred"
    )


def test_expiries_and_bounce_notifications_match_the_driver(samples: Any, traffic: dict[str, Any]) -> None:
    """Force-expired messages and the NDRs they and the bounces caused."""
    assert traffic["counts"]["expired"] == total(samples, "postfix_qmgr_messages_expired_total")
    assert traffic["derived"]["ndr_generated"] == total(samples, "postfix_bounce_non_delivery_notification_total")


def test_deferrals_are_not_observed_as_delivery_delays(samples: Any) -> None:
    """Delay histograms hold final outcomes only; kumina's exporter also counted every deferred retry."""
    final = total(samples, "mailpulse_postfix_deliveries_total", agent="smtp", status="sent") + total(
        samples, "mailpulse_postfix_deliveries_total", agent="smtp", status="bounced"
    )
    assert final == total(samples, "postfix_smtp_delivery_delay_seconds_count", stage="transmission")
    assert final == total(samples, "mailpulse_postfix_delivery_delay_seconds_count", agent="smtp", stage="total")


def test_tls_is_counted_both_ways_without_cipher(samples: Any) -> None:
    """Submission TLS inbound, lab relay hops outbound; no cipher label anywhere."""
    assert total(samples, "mailpulse_postfix_tls_connections_total", direction="inbound") > 0
    assert total(samples, "mailpulse_postfix_tls_connections_total", direction="outbound") > 0
    for (name, labels), _ in samples.items():
        if "tls" in name:
            assert "cipher" not in dict(labels)
