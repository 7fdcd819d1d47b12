"""Pure parsers for what aioimaplib hands back: LIST lines, FETCH responses, modified UTF-7 names.

aioimaplib returns raw response lines (``bytes``) with literals as separate ``bytearray`` items and
does not parse FETCH at all; field order differs between servers (UID before or after the literal),
so the parser below looks for each field wherever it is.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime

_FETCH_START = re.compile(rb"^(\d+) FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
# BODY[HEADER] {2865}  /  BODY[] {123}  /  BODY[HEADER.FIELDS (X-A B)] {45}
_LITERAL = re.compile(rb"(BODY\[[^\]]*\])(?:<\d+>)? \{(\d+)\}$")
_LIST = re.compile(rb'^\((?P<flags>[^)]*)\)\s+(?P<delim>"(?:[^"\\]|\\.)*"|NIL)\s+(?P<name>.*)$')
_DATE_FORMAT = "%d-%b-%Y %H:%M:%S %z"


@dataclass
class FetchItem:
    seq: int
    uid: int | None = None
    internaldate: float | None = None  # unix time
    size: int | None = None
    flags: tuple[str, ...] = ()
    sections: dict[str, bytes] = field(default_factory=dict)  # "BODY[HEADER]" -> bytes

    def section(self, prefix: str) -> bytes | None:
        for name, data in self.sections.items():
            if name.startswith(prefix):
                return data
        return None


def parse_fetch(lines: list[bytes | bytearray]) -> list[FetchItem]:
    items: list[FetchItem] = []
    current: FetchItem | None = None
    literal_for: str | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if current is not None and literal_for is not None:
                current.sections[literal_for] = bytes(line)
            literal_for = None
            continue
        m = _FETCH_START.match(line)
        if m:
            current = FetchItem(int(m.group(1)))
            items.append(current)
        elif current is None:
            continue
        _fields(current, line)
        lit = _LITERAL.search(line)
        literal_for = lit.group(1).decode("ascii", "replace").upper() if lit else None
    return items


def _fields(item: FetchItem, line: bytes) -> None:
    if item.uid is None and (m := _UID.search(line)):
        item.uid = int(m.group(1))
    if item.internaldate is None and (m := _INTERNALDATE.search(line)):
        item.internaldate = parse_internaldate(m.group(1).decode("ascii", "replace"))
    if item.size is None and (m := _SIZE.search(line)):
        item.size = int(m.group(1))
    if not item.flags and (m := _FLAGS.search(line)):
        item.flags = tuple(m.group(1).decode("ascii", "replace").split())


def parse_internaldate(text: str) -> float | None:
    try:
        return datetime.strptime(text.strip(), _DATE_FORMAT).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Folder:
    name: str  # as the server spells it (modified UTF-7), for commands
    flags: frozenset[str]  # lower-case, e.g. {"\\junk", "\\haschildren"}
    delimiter: str | None

    @property
    def display(self) -> str:
        return decode_mutf7(self.name)


def parse_list(lines: list[bytes | bytearray]) -> list[Folder]:
    folders: list[Folder] = []
    pending: tuple[frozenset[str], str | None] | None = None
    for line in lines:
        if isinstance(line, bytearray):  # the name came as a literal
            if pending is not None:
                folders.append(Folder(bytes(line).decode("utf-8", "replace"), *pending))
            pending = None
            continue
        m = _LIST.match(line)
        if not m:
            continue
        flags = frozenset(f.lower() for f in m.group("flags").decode("ascii", "replace").split())
        delim_raw = m.group("delim").decode("ascii", "replace")
        delim = None if delim_raw == "NIL" else delim_raw[1:-1].replace("\\\\", "\\").replace('\\"', '"')
        name = m.group("name").decode("utf-8", "replace").strip()
        if re.fullmatch(r"\{\d+\}", name):
            pending = (flags, delim)
            continue
        if name.startswith('"') and name.endswith('"') and len(name) >= 2:
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        folders.append(Folder(name, flags, delim))
    return folders


def quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (aioimaplib sends arguments verbatim)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def decode_mutf7(name: str) -> str:
    """RFC 3501 modified UTF-7 (``&AMQ-`` ...) to text; invalid input is returned unchanged."""
    if "&" not in name:
        return name
    out: list[str] = []
    i = 0
    while i < len(name):
        c = name[i]
        if c != "&":
            out.append(c)
            i += 1
            continue
        end = name.find("-", i)
        if end < 0:
            return name
        chunk = name[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                out.append(base64.b64decode(b64).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                return name
        i = end + 1
    return "".join(out)


# RFC 6154 attributes first; these names where a server has none (old Dovecot configs, Exchange).
JUNK_NAMES = ("junk", "junk email", "junk e-mail", "spam", "bulk", "bulk mail", "[gmail]/spam",
              "[google mail]/spam", "inbox.spam", "inbox.junk", "inbox/spam", "inbox/junk",
              "courrier indésirable", "spam-verdacht", "junk-e-mail")  # fmt: skip
TRASH_NAMES = ("trash", "deleted items", "deleted messages", "[gmail]/trash", "[gmail]/bin",
               "[google mail]/trash", "[google mail]/bin", "inbox.trash", "inbox/trash",
               "papierkorb", "gelöschte elemente", "corbeille")  # fmt: skip
_FALLBACK = {"\\junk": JUNK_NAMES, "\\trash": TRASH_NAMES}


def find_special(folders: list[Folder], attribute: str) -> Folder | None:
    """The folder with a SPECIAL-USE ``attribute`` (e.g. ``\\Junk``), else one with a usual name."""
    attr = attribute.lower()
    for folder in folders:
        if attr in folder.flags:
            return folder
    names = _FALLBACK.get(attr, ())
    by_name = {f.display.lower(): f for f in folders if "\\noselect" not in f.flags}
    for name in names:
        if name in by_name:
            return by_name[name]
    return None


def find_named(folders: list[Folder], name: str) -> Folder | None:
    if name.upper() == "INBOX":  # INBOX is case-insensitive (RFC 3501 5.1)
        return next((f for f in folders if f.name.upper() == "INBOX"), Folder("INBOX", frozenset(), None))
    return next((f for f in folders if name in (f.name, f.display)), None)
