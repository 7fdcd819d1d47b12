"""A small, safe XML reader on expat: no DTD, no entity declarations, namespace-agnostic names.

Why not ``xml.etree``: expat >= 2.4.1 already stops billion-laughs expansion (checked: expat 2.5.0 refuses
it with "limit on input amplification factor"), but a report never needs a DTD, so one is refused outright
(``xml_dtd``) before any entity is declared. Elements are matched by local name, lowercased
(``{urn:ietf:params:xml:ns:dmarc-2.0}feedback``, ``dmarc:feedback`` and ``Feedback`` are all ``feedback``);
``xmlns`` attributes of the root are kept so the caller can tell the schema. The tree holds element text
and children only, and at most ``max_nodes`` elements.

Tolerated, as real reports need it: text after the root element (``trailing_text``), a root element that is
never closed when everything inside it is complete (``unclosed_root``), and bytes that are not UTF-8 in a
document that claims (or defaults to) UTF-8 (``invalid_utf8``, replaced before parsing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat

_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_UNCLOSED = {expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS],
             expat.errors.codes[expat.errors.XML_ERROR_UNCLOSED_TOKEN],
             expat.errors.codes[expat.errors.XML_ERROR_PARTIAL_CHAR]}  # fmt: skip
_JUNK_AFTER = expat.errors.codes[expat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]
_MAX_TEXT = 4096  # characters of one element's text kept (report fields are short)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Node:
    tag: str
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def find(self, name: str) -> Node | None:
        for child in self.children:
            if child.tag == name:
                return child
        return None

    def findall(self, name: str) -> list[Node]:
        return [c for c in self.children if c.tag == name]

    def get(self, *path: str) -> str:
        """The stripped text at ``path`` below this node, or ``""``."""
        node: Node | None = self
        for name in path:
            node = node.find(name) if node is not None else None
        return node.text.strip() if node is not None else ""


@dataclass(frozen=True, slots=True)
class Parsed:
    root: Node | None
    namespaces: tuple[str, ...] = ()
    reason: str = ""
    quirks: tuple[str, ...] = ()


def _local(name: str) -> str:
    return name.rpartition(":")[2].rpartition("}")[2].lower()


class _Builder:
    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self.count = 0
        self.stack: list[Node] = []
        self.texts: list[list[str]] = []
        self.root: Node | None = None
        self.closed = False
        self.namespaces: list[str] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.count += 1
        if self.count > self.max_nodes:
            raise _Refused("too_many_records")
        node = Node(_local(name))
        if self.stack:
            self.stack[-1].children.append(node)
        elif self.root is None:
            self.root = node
            self.namespaces = [v for k, v in attrs.items() if k == "xmlns" or k.startswith("xmlns:")]
        self.stack.append(node)
        self.texts.append([])

    def end(self, _name: str) -> None:
        node = self.stack.pop()
        node.text = "".join(self.texts.pop())[:_MAX_TEXT]
        if not self.stack:
            self.closed = True

    def data(self, text: str) -> None:
        if self.texts:
            parts = self.texts[-1]
            if len(parts) < 64:
                parts.append(text)


def _refuse_dtd(*_args: object) -> None:
    raise _Refused("xml_dtd")


def parse_xml(data: bytes, max_nodes: int) -> Parsed:
    quirks: list[str] = []
    data = data.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    declared = _ENCODING.match(data)
    if declared is None or declared.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", "replace").encode("utf-8")
            quirks.append("invalid_utf8")
    builder = _Builder(max_nodes)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd  # type: ignore[assignment]
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        return Parsed(None, reason=exc.reason, quirks=tuple(quirks))
    except expat.ExpatError as exc:
        if builder.closed and exc.code == _JUNK_AFTER:
            quirks.append("trailing_text")
        elif (exc.code in _UNCLOSED and len(builder.stack) == 1 and builder.root is not None
              and builder.root.children):  # fmt: skip
            builder.end("")  # the root, with everything complete inside it
            quirks.append("unclosed_root")
        else:
            return Parsed(None, reason="xml_syntax", quirks=tuple(quirks))
    except (ValueError, RecursionError, MemoryError):
        return Parsed(None, reason="xml_syntax", quirks=tuple(quirks))
    return Parsed(builder.root, tuple(builder.namespaces), quirks=tuple(quirks))
