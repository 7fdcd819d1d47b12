"""``mailpulse scan`` of several files of one kind: their lines in time order, as one stream.

Several hosts' logs (one file per host) hold one message's lines in turns: the submission host's
``queued as NEWID`` line, then the MX's lines for NEWID, then the submission host's again. Read one file
after another, message tracking would see a host's whole day before the next host's first line, finish
each journey at its first hop and count the next hop as a message of its own. So scan merges the files
of one kind line by line on their timestamps (a k-way merge, holding one batch per file), as a central
syslog server would have written them. Rotated files of one host (``mail.log.1 mail.log``) come out in
order too, whatever order they were given in.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from mailpulse.exporter.sources.lines import read_batches
from mailpulse.parsers.syslog import TimestampParser

BATCH = 4096  # lines fed to the pipeline at a time


def _timed_lines(
    path: str, open_log: Callable[[str], IO[bytes]], timestamp_of: Callable[[str], str | None],
    progress: Callable[[int], None],
) -> Iterator[tuple[float, str]]:  # fmt: skip
    """``(epoch, line)`` for each line of ``path``; a line without a readable time has the time of the line
    before it (continuations, damaged lines), so it stays next to its neighbours."""
    parse = TimestampParser()
    parse.set_reference(os.stat(path).st_mtime)  # BSD stamps have no year: the file's mtime bounds them
    last = 0.0
    with open_log(path) as fh:
        for batch in read_batches(fh, progress):
            for line in batch:
                raw = timestamp_of(line)
                epoch = parse(raw) if raw is not None else None
                if epoch is not None:
                    last = epoch
                yield last, line


def merged_batches(
    paths: Sequence[str], open_log: Callable[[str], IO[bytes]], timestamp_of: Callable[[str], str | None],
    progress: Callable[[int], None],
) -> Iterator[list[str]]:  # fmt: skip
    """The lines of ``paths`` in time order, in batches. Lines of the same second keep their order within
    their file; between files, the file given first comes first (logs have whole seconds: the tracker's
    link grace covers a hop whose two sides are logged in the same second in either order)."""
    streams = [_timed_lines(p, open_log, timestamp_of, progress) for p in paths]
    batch: list[str] = []
    for _, line in heapq.merge(*streams, key=lambda item: item[0]):
        batch.append(line)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
