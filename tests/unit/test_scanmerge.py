"""scan of several files of one kind: one stream, merged on the lines' timestamps (exporter/scanmerge.py)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from mailpulse.exporter.features.postfix import PostfixLogs, postfix_timestamp
from mailpulse.exporter.scan import open_log, scan
from mailpulse.exporter.scanmerge import merged_batches


def lines(paths: list[Path]) -> list[str]:
    return [line for batch in merged_batches([str(p) for p in paths], open_log, postfix_timestamp, lambda n: None)
            for line in batch]  # fmt: skip


def test_lines_come_out_in_time_order_ties_in_file_order(tmp_path: Path) -> None:
    a = tmp_path / "a.log"
    b = tmp_path / "b.log.gz"
    a.write_text("Dec  3 10:00:00 a x: 1\nDec  3 10:00:02 a x: 3\nno timestamp here\nDec  3 10:00:04 a x: 6\n")
    with gzip.open(b, "wt") as fh:  # rotated files are read too
        fh.write("Dec  3 10:00:01 b x: 2\nDec  3 10:00:02 b x: 4\nDec  3 10:00:03 b x: 5")  # no final newline
    assert [line.rpartition(" ")[2] for line in lines([a, b])] == ["1", "2", "3", "here", "4", "5", "6"]
    assert [line.rpartition(" ")[2] for line in lines([b, a])] == ["1", "2", "4", "3", "here", "5", "6"]


def test_scan_joins_a_hop_across_two_hosts_files_in_either_order(tmp_path: Path) -> None:
    """The submission host's file and the MX's: one message, whichever file is named first."""
    submit = tmp_path / "submit.log"
    mx = tmp_path / "mx.log"
    submit.write_text(
        "Dec  3 10:00:00 mail postfix/submission/smtpd[1]: 3D9C222A98D: client=localhost[127.0.0.1]\n"
        "Dec  3 10:00:00 mail postfix/qmgr[2]: 3D9C222A98D: from=<a@example.test>, size=10, nrcpt=1 (queue active)\n"
        "Dec  3 10:00:01 mail postfix/smtp[3]: 3D9C222A98D: to=<b@example.test>, relay=127.0.0.1[127.0.0.1]:25, delay=1,"
        " delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 52C2F22E49D)\n"
        "Dec  3 10:00:01 mail postfix/qmgr[2]: 3D9C222A98D: removed\n"
    )
    mx.write_text(
        "Dec  3 10:00:01 mx postfix/smtpd[4]: 52C2F22E49D: client=unknown[127.0.0.2]\n"
        "Dec  3 10:00:01 mx postfix/qmgr[5]: 52C2F22E49D: from=<a@example.test>, size=10, nrcpt=1 (queue active)\n"
        "Dec  3 10:00:09 mx postfix/lmtp[6]: 52C2F22E49D: to=<b@example.test>, relay=mx[private/lmtp], delay=8,"
        " delays=0/0/0/8, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
        "Dec  3 10:00:09 mx postfix/qmgr[5]: 52C2F22E49D: removed\n"
    )
    for order in ([submit, mx], [mx, submit]):
        feature = PostfixLogs()
        assert scan([("postfix", str(p)) for p in order], (feature,), progress=False, out=io.StringIO()) == 0
        assert dict(feature.tracking.metrics.messages) == {("delivered", "submission", "local"): 1}
        (hist,) = feature.tracking.metrics.transit.values()
        assert hist.sum == 9.0  # first accept on mail to the delivery on mx


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    a = tmp_path / "a.log"
    a.write_text("Dec  3 10:00:00 a x: 1\n")
    err = io.StringIO()
    jobs = [("postfix", str(a)), ("postfix", str(tmp_path / "missing.log"))]
    assert scan(jobs, (PostfixLogs(),), progress=False, out=io.StringIO(), err=err) == 1
    assert "missing.log" in err.getvalue()
