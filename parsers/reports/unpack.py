"""Recognise what a blob is by its first bytes (never by a MIME type or a file name: reporters send
``application/octet-stream``, ``.xml`` files that are gzip, ...) and decompress it within a size cap.

Decompression is streamed: zlib's ``decompressobj`` with ``max_length`` never produces more than the cap
plus one byte, so a 1 GB gzip bomb costs the cap and a few milliseconds. A zip must hold exactly one file;
its declared size is checked before anything is read, and the read itself is bounded too (a member that
lies about its size stops at the cap, and zipfile's length/CRC check refuses it).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_STEP = 1 << 20  # most bytes zlib produces in one call
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Unpacked:
    """The decompressed content, or why there is none."""

    data: bytes = b""
    reason: str = ""  # a REJECT_REASONS value when data is unusable
    quirks: tuple[str, ...] = ()


def sniff(data: bytes) -> str:
    """``zip``, ``gzip``, ``xml``, ``json``, ``mail`` or ``unknown``, from the content alone."""
    if data[:4] == ZIP_MAGIC:
        return "zip"
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    head = data[:4096].removeprefix(_BOM).lstrip(_WHITESPACE)
    if head[:1] == b"<":
        return "xml"
    if head[:1] in (b"{", b"["):
        return "json"
    if _looks_like_mail(head):
        return "mail"
    return "unknown"


def _looks_like_mail(head: bytes) -> bool:
    """An RFC 5322 header block: the first line is ``Name: value`` (or an mbox ``From `` line)."""
    first = head.split(b"\n", 1)[0]
    if first.startswith(b"From "):
        return True
    name, colon, _ = first.partition(b":")
    return bool(colon) and 0 < len(name) <= 76 and all(33 <= c <= 126 for c in name)


def gunzip(data: bytes, limit: int) -> Unpacked:
    """Every gzip member, at most ``limit`` bytes in all; bytes after the last member that are not gzip
    are tolerated (``gzip_trailing_bytes``), a stream cut short is not."""
    out: list[bytes] = []
    size = 0
    quirks: list[str] = []
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = rest
        while not d.eof:
            try:  # at most _STEP bytes out per call: zlib's output buffer never grows past that
                chunk = d.decompress(pending, min(_STEP, limit + 1 - size))
            except zlib.error:
                return Unpacked(reason="bad_gzip")
            size += len(chunk)
            if size > limit:
                return Unpacked(reason="too_large")
            out.append(chunk)
            pending = d.unconsumed_tail
            if not chunk and not pending:  # all input consumed, stream not finished: cut short
                return Unpacked(reason="bad_gzip")
        rest = d.unused_data
        if rest and rest[:2] != GZIP_MAGIC:
            if rest.strip(b"\x00" + _WHITESPACE):
                quirks.append("gzip_trailing_bytes")
            break
    return Unpacked(b"".join(out), quirks=tuple(quirks))


def unzip(data: bytes, limit: int) -> Unpacked:
    """The one file of a zip archive, at most ``limit`` bytes."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if len(members) != 1:
                return Unpacked(reason="zip_members")
            info = members[0]
            if info.file_size > limit:
                return Unpacked(reason="too_large")
            if info.flag_bits & 0x1:
                return Unpacked(reason="bad_zip")  # encrypted
            with archive.open(info) as member:
                content = member.read(limit + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError,
            zlib.error, RuntimeError):  # fmt: skip
        return Unpacked(reason="bad_zip")
    if len(content) > limit:
        return Unpacked(reason="too_large")
    return Unpacked(content)


def unpack(data: bytes, limit: int) -> tuple[str, Unpacked]:
    """(what the content is, the content): gzip and zip are opened (one level: a zip in a gzip is not
    a report), anything else is returned as it is if within ``limit``."""
    kind = sniff(data)
    if kind == "gzip":
        inner = gunzip(data, limit)
    elif kind == "zip":
        inner = unzip(data, limit)
    elif len(data) > limit:
        return kind, Unpacked(reason="too_large")
    else:
        return kind, Unpacked(data)
    if inner.reason:
        return kind, inner
    inner_kind = sniff(inner.data)
    if inner_kind not in ("xml", "json"):
        return inner_kind, Unpacked(reason="unknown_format", quirks=inner.quirks)
    return inner_kind, inner
