"""Features that ship inside the exporter package: Postfix logs, rspamd logs and the Postfix queue.

They plug into the kernel like any other feature (see :mod:`exporter.feature`); the kernel modules
(everything in exporter/ outside this package) never import them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.features.postfix import PostfixLogs, PostfixLogsConfig
from mailpulse.exporter.features.queue import PostfixQueue
from mailpulse.exporter.features.rspamd import RspamdLogs
from mailpulse.exporter.scan import scan
from mailpulse.parsers.postfix import PostfixParserConfig

__all__ = ["PostfixLogs", "PostfixQueue", "RspamdLogs", "scan_logs"]


def scan_logs(
    postfix_files: Sequence[str],
    rspamd_files: Sequence[str],
    *,
    summary: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
    postfix_config: PostfixParserConfig | PostfixLogsConfig | None = None,
    rspamd_config: RspamdConfig | None = None,
) -> int:
    """``mailpulse scan --postfix ... --rspamd ...`` as a function (tests, benchmarks)."""
    postfix, rspamd = PostfixLogs(), RspamdLogs()
    if isinstance(postfix_config, PostfixParserConfig):
        postfix_config = PostfixLogsConfig(postfix_config)
    sections = {postfix.name: postfix_config or postfix.absent(), rspamd.name: rspamd_config or rspamd.absent()}
    jobs = [("postfix", p) for p in postfix_files] + [("rspamd", p) for p in rspamd_files]
    return scan(jobs, (postfix, rspamd), sections, summary=summary, progress=progress, out=out, err=err)
