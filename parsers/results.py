"""What every parser returns besides its own events: a line it could not read, or a line not meant for it.

Parsers never raise on input. A line either becomes a typed event, an :class:`Unparsed` (the format is
ours but the shape is unknown: counted, so drift shows) or :data:`FOREIGN` (another program's line in the
same file: counted separately, never an error).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Unparsed:
    """A line of our format whose shape no rule recognises.

    ``daemon`` is a bounded name (a known daemon or ``"unknown"``); ``level`` is the syslog-style level
    the line carried (``info`` when none); ``text`` is kept for debug logging only, never for a label.
    """

    ts: str
    daemon: str
    level: str
    text: str


@dataclass(slots=True)
class Foreign:
    """A line from another program (Dovecot, OpenDKIM, the kernel ...)."""


# One shared instance: foreign lines are common (half of a typical mail.log) and carry no data.
FOREIGN = Foreign()
