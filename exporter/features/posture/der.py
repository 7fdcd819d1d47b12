"""A tiny DER walker: enough to take a PKCS#8 private key apart and find a certificate's
SubjectPublicKeyInfo (DANE ``1 x x``) and validity, without the ``cryptography`` package."""

from __future__ import annotations

from datetime import UTC, datetime


class DerError(ValueError):
    pass


def read(data: bytes, pos: int = 0) -> tuple[int, int, int, int]:
    """One TLV at ``pos``: (tag, start of value, end of value, end of whole TLV incl. header)."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag = data[pos]
    length = data[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise DerError("truncated value")
    return tag, start, end, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The TLVs inside a constructed value: (tag, value start, value end, TLV start)."""
    out = []
    pos = start
    while pos < end:
        tag, vstart, vend, nxt = read(data, pos)
        out.append((tag, vstart, vend, pos))
        pos = nxt
    return out


def unwrap_pkcs8(der: bytes) -> tuple[bytes, bytes]:
    """PKCS#8 PrivateKeyInfo → (algorithm OID bytes, inner private key bytes)."""
    tag, start, end, _ = read(der)
    items = children(der, start, end)
    if tag != 0x30 or len(items) < 3 or items[1][0] != 0x30 or items[2][0] != 0x04:
        raise DerError("not a PKCS#8 private key")
    alg = children(der, items[1][1], items[1][2])
    oid = der[alg[0][1] : alg[0][2]]
    return oid, der[items[2][1] : items[2][2]]


OID_RSA = bytes.fromhex("2a864886f70d010101")
OID_ED25519 = bytes.fromhex("2b6570")


def _tbs(cert: bytes) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    tag, start, end, _ = read(cert)
    outer = children(cert, start, end)
    if tag != 0x30 or not outer or outer[0][0] != 0x30:
        raise DerError("not a certificate")
    fields = children(cert, outer[0][1], outer[0][2])
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    if len(fields) < 6:
        raise DerError("short tbsCertificate")
    return cert, fields


def spki(cert: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER certificate (RFC 6698 selector 1)."""
    data, fields = _tbs(cert)
    _, _start, vend, tlv = fields[5]
    return data[tlv:vend]


def not_after(cert: bytes) -> float:
    """The certificate's notAfter as a Unix timestamp."""
    data, fields = _tbs(cert)
    validity = children(data, fields[3][1], fields[3][2])
    tag, vstart, vend, _ = validity[1]
    text = data[vstart:vend].decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
