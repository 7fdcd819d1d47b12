"""Where a file source stands: the saved position, its on-disk format, and how it is read and written.

A position names a file by its inode *and* its first bytes (the fingerprint logrotate-aware tailers
keep), because an inode alone is not an identity: a file deleted and recreated between two polls can
get the same inode back, and copytruncate keeps the inode while the content starts over.

The state file (``state_dir/offsets/<name>.offset``) is small text, written atomically::

    mailpulse-offset 2
    inode 1234567
    offset 52311
    size 52840
    head 4e6f762032342031363a35383a3137206d61696c...

``size`` is the file's size when the position was saved: bytes known to exist, so ``size - offset`` is
what is certainly lost if the file disappears before it is read. ``head`` is the hex of the file's first
:data:`HEAD_BYTES` bytes (fewer while the file is shorter). pygtail's two-line format (inode, offset),
used before version 2, is still read, without a fingerprint.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from dataclasses import dataclass

HEAD_BYTES = 256
MAGIC = "mailpulse-offset 2"
_MAX_STATE_BYTES = 4096  # a valid state is ~600 bytes; more is garbage and is not read whole
_KEYS = ("inode", "offset", "size", "head")


@dataclass(frozen=True, slots=True)
class Position:
    inode: int
    offset: int
    size: int
    head: bytes | None  # None: a pygtail-format state, no fingerprint

    def same_head(self, head: bytes) -> bool:
        """True if ``head`` (the first bytes of some file) starts like the file this position is in."""
        return self.head is None or head[: len(self.head)] == self.head


class CorruptState(ValueError):
    """The state file exists but cannot be trusted; ``str(exc)`` says why, for the log."""


def format_position(pos: Position) -> str:
    head = (pos.head or b"").hex()
    return f"{MAGIC}\ninode {pos.inode}\noffset {pos.offset}\nsize {pos.size}\nhead {head}\n"


def parse_position(text: str) -> Position:
    """Parse a state file's text; raise :class:`CorruptState` for anything not exactly valid."""
    lines = text.splitlines()
    if not lines or not text.strip():
        raise CorruptState("empty")
    if lines[0] == MAGIC:
        return _parse_v2(lines[1:])
    if len(lines) == 2:  # pygtail: inode, offset
        inode, offset = (_natural(line.strip(), name) for line, name in zip(lines, ("inode", "offset"), strict=True))
        return Position(inode, offset, offset, None)
    raise CorruptState(f"unrecognised ({len(lines)} line{'s' if len(lines) != 1 else ''})")


def _parse_v2(lines: list[str]) -> Position:
    fields: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if key not in _KEYS or key in fields:
            raise CorruptState(f"unexpected line {line[:40]!r}")
        fields[key] = value.strip()
    missing = [k for k in _KEYS if k not in fields]
    if missing:
        raise CorruptState(f"missing {', '.join(missing)}")
    inode, offset, size = (_natural(fields[k], k) for k in ("inode", "offset", "size"))
    try:
        head = bytes.fromhex(fields["head"])
    except ValueError:
        raise CorruptState("head is not hex") from None
    if size < offset:
        raise CorruptState(f"size {size} below offset {offset}")
    if len(head) > HEAD_BYTES or len(head) > size:
        raise CorruptState("head longer than the file")
    return Position(inode, offset, size, head)


def _natural(text: str, name: str) -> int:
    # isascii + isdecimal, not isdigit: int() refuses superscripts that isdigit accepts; below 2**63, or a
    # seek to it raises OverflowError instead of OSError
    if not text.isascii() or not text.isdecimal() or len(text) > 19 or int(text) >= 1 << 63:
        raise CorruptState(f"{name} is not a non-negative 64-bit integer: {text[:40]!r}")
    return int(text)


def load_position(path: str) -> Position | None:
    """The saved position, None if there is none; :class:`CorruptState` if the file is bad or unreadable."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptState(f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > _MAX_STATE_BYTES:
        raise CorruptState(f"larger than {_MAX_STATE_BYTES} bytes")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptState("not text") from None
    return parse_position(text)


def save_position(path: str, pos: Position) -> None:
    write_atomic(path, format_position(pos))


def write_atomic(path: str, text: str) -> None:
    """Write a state file atomically (temporary file + rename): a crash leaves the old state or the new,
    never half.

    Raises OSError (a full disk, a read-only state dir); the temporary file is not left behind.
    """
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_head(path: str) -> bytes:
    """The first :data:`HEAD_BYTES` of a file, decompressed for ``.gz``; raises OSError/EOFError."""
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as gz:
            return gz.read(HEAD_BYTES)
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)
