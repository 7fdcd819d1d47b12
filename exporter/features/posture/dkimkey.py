"""DKIM: the published key per selector, and whether it is the public half of the signer's private key.

Like ``opendkim-testkey -d DOMAIN -s SELECTOR -k KEYFILE``, for OpenDKIM and rspamd key files:

* PEM RSA keys, PKCS#1 (``BEGIN RSA PRIVATE KEY``) or PKCS#8 (``BEGIN PRIVATE KEY``, what OpenSSL 3's
  ``genrsa``, ``opendkim-genkey`` and ``rspamadm dkim_keygen`` write): compared by modulus and exponent;
* rspamd's ed25519 keys (``rspamadm dkim_keygen -t ed25519``: base64 of libsodium's 64-byte secret key,
  seed then public key): compared with the last 32 bytes. A PKCS#8 ed25519 key holds only the seed;
  deriving its public key needs curve arithmetic, so it is reported as ``key_file_unreadable``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from dkim.crypto import UnparsableKeyError, parse_private_key, parse_public_key
from dkim.util import InvalidTagValueList, parse_tag_value

from mailpulse.exporter.features.posture.der import OID_ED25519, OID_RSA, DerError, unwrap_pkcs8
from mailpulse.exporter.features.posture.result import CheckFailed

_PEM_RE = re.compile(rb"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class PublicKey:
    kind: str  # rsa | ed25519
    bits: int
    material: tuple[int, int] | bytes  # (modulus, exponent) or the raw ed25519 key


@dataclass(frozen=True)
class DkimRecord:
    key: PublicKey
    testing: bool  # t=y
    strict: bool  # t=s


def parse_record(text: str) -> DkimRecord:
    """A DKIM key record (RFC 6376 §3.6.1); raises :class:`CheckFailed` with a dkim reason."""
    try:
        tags = parse_tag_value(text.encode())
    except InvalidTagValueList as exc:
        raise CheckFailed("syntax", f"tag list: {exc}") from exc
    version = tags.get(b"v")
    if version is not None and version != b"DKIM1":
        raise CheckFailed("syntax", "v= must be DKIM1")
    if b"p" not in tags:
        raise CheckFailed("syntax", "no p= tag")
    p = re.sub(rb"\s+", b"", tags[b"p"])
    if not p:
        raise CheckFailed("revoked", "p= is empty (key revoked)")
    kind = tags.get(b"k", b"rsa").decode(errors="replace").lower()
    try:
        raw = base64.b64decode(p, validate=True)
    except binascii.Error as exc:
        raise CheckFailed("syntax", "p= is not base64") from exc
    flags = {f.strip() for f in tags.get(b"t", b"").decode(errors="replace").split(":")}
    if kind == "rsa":
        try:
            pk = parse_public_key(raw)
        except (UnparsableKeyError, IndexError, TypeError) as exc:
            raise CheckFailed("syntax", "p= is not an RSA public key") from exc
        modulus, exponent = int(pk["modulus"]), int(pk["publicExponent"])
        key = PublicKey("rsa", modulus.bit_length(), (modulus, exponent))
    elif kind == "ed25519":
        if len(raw) != 32:
            raise CheckFailed("syntax", "an ed25519 p= must be 32 bytes")
        key = PublicKey("ed25519", 256, raw)
    else:
        raise CheckFailed("key_type", f"k={kind} is not rsa or ed25519")
    return DkimRecord(key, "y" in flags, "s" in flags)


def load_private(data: bytes) -> PublicKey:
    """The public half of a private key file's content; raises :class:`CheckFailed` key_file_unreadable."""
    m = _PEM_RE.search(data)
    if m is None:
        return _rspamd_ed25519(data)
    try:
        der = base64.b64decode(re.sub(rb"\s+", b"", m[2]))
        if m[1] == b"RSA PRIVATE KEY":
            return _rsa(der)
        if m[1] == b"PRIVATE KEY":
            oid, inner = unwrap_pkcs8(der)
            if oid == OID_RSA:
                return _rsa(inner)
            if oid == OID_ED25519:
                raise CheckFailed("key_file_unreadable", "PKCS#8 ed25519 keys hold no public key; use rspamd's "
                                  "base64 format or an RSA key")  # fmt: skip
            raise CheckFailed("key_file_unreadable", "unsupported key algorithm")
    except (binascii.Error, DerError, UnparsableKeyError, IndexError) as exc:
        raise CheckFailed("key_file_unreadable", "not a readable private key") from exc
    raise CheckFailed("key_file_unreadable", f"unsupported PEM block {m[1].decode(errors='replace')}")


def _rsa(der: bytes) -> PublicKey:
    pk = parse_private_key(der)
    modulus, exponent = int(pk["modulus"]), int(pk["publicExponent"])
    return PublicKey("rsa", modulus.bit_length(), (modulus, exponent))


def _rspamd_ed25519(data: bytes) -> PublicKey:
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except binascii.Error as exc:
        raise CheckFailed("key_file_unreadable", "neither PEM nor a base64 ed25519 key") from exc
    if len(raw) != 64:
        raise CheckFailed("key_file_unreadable", "a base64 ed25519 key must hold 64 bytes (seed and public key)")
    return PublicKey("ed25519", 256, raw[32:])


def same_key(published: PublicKey, private: PublicKey) -> bool:
    return published.kind == private.kind and published.material == private.material
