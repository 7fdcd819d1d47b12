"""The probe message: token, signed tag, Message-ID MAC, unique body, DKIM signing and our own check."""

from __future__ import annotations

import base64
import email
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mailpulse.probes import message
from mailpulse.probes.config import DnsConfig
from mailpulse.probes.dkimcheck import DkimChecker, signatures

KEY = b"k" * 32


def test_token_is_128_bit_base32() -> None:
    """Tokens are 26 chars of [a-z2-7] and never repeat."""
    tokens = {message.new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(message.TOKEN_RE.fullmatch(t) for t in tokens)


def test_probe_carries_token_everywhere_and_signed_tag() -> None:
    """Token in Message-ID, Subject and the tag; the tag verifies with the key only; CRLF; Auto-Submitted."""
    probe = message.build(key=KEY, probe="p1", mail_from="probe@example.test", rcpt="x@remote.test", now=1000)
    msg = email.message_from_bytes(probe.data)
    assert probe.token in msg["Message-ID"]
    assert probe.token in msg["Subject"]
    assert msg["Message-ID"].endswith("@example.test>")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert b"\r\n" in probe.data
    assert b"\n" not in probe.data.replace(b"\r\n", b"")
    assert message.Tag(probe.token, "p1", 1000) == message.parse_tag(msg[message.TAG_HEADER], KEY)
    assert message.parse_tag(msg[message.TAG_HEADER], b"other-key" * 4) is None
    assert [probe.token] == message.tokens_in(f"In-Reply-To: {msg['Message-ID']}", KEY)
    assert [] == message.tokens_in(f"In-Reply-To: {msg['Message-ID']}", b"other-key" * 4)


def test_forged_tags_are_refused() -> None:
    """Changing any signed field, or the version, invalidates the tag."""
    tag = message.make_tag(KEY, "a" * 26, "p1", 1000)
    assert message.parse_tag(tag, KEY) is not None
    for forged in (tag.replace("p1", "p2"), tag.replace("ts=1000", "ts=1001"), tag.replace("v=1", "v=2"),
                   tag.replace("id=" + "a" * 26, "id=" + "b" * 26), "v=1; id=x", ""):  # fmt: skip
        assert message.parse_tag(forged, KEY) is None


def test_bodies_differ_and_extra_lines_go_in() -> None:
    """Two probes never share a body (greylisting keys on it); extra headers and lines are added."""
    a = message.build(key=KEY, probe="p", mail_from="a@b.test", rcpt="c@d.test", now=1)
    b = message.build(key=KEY, probe="p", mail_from="a@b.test", rcpt="c@d.test", now=1,
                      extra_headers={"X-Lab-Score": "8"}, body_lines=("LAB-TAMPER-ME",))  # fmt: skip
    body_a = a.data.split(b"\r\n\r\n", 1)[1]
    body_b = b.data.split(b"\r\n\r\n", 1)[1]
    assert body_a != body_b.replace(b"LAB-TAMPER-ME\r\n", b"")
    assert b"X-Lab-Score: 8\r\n" in b.data
    assert b"LAB-TAMPER-ME" in body_b


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("dkim") / "key.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout  # fmt: skip
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


class FakeResolver:
    def __init__(self, records: dict[str, bytes], fail: type[Exception] | None = None) -> None:
        self.records, self.fail = records, fail

    async def resolve(self, name: str, rdtype: str) -> Any:
        import dns.resolver

        if self.fail is not None:
            raise self.fail()
        if name not in self.records:
            raise dns.resolver.NXDOMAIN()  # type: ignore[no-untyped-call]

        class RR:
            strings = (self.records[name],)

        return [RR()]


async def test_probe_side_dkim_signature_verifies(rsa_key: tuple[Path, bytes]) -> None:
    """A probe signed with dkim: {...} verifies with our own checker; a changed body fails; no key = permerror."""
    path, txt = rsa_key
    signer = message.DkimKey("example.test", "probe", str(path))
    probe = message.build(key=KEY, probe="p", mail_from="probe@example.test", rcpt="x@remote.test", dkim_sign=signer)
    assert [("example.test", "probe")] == signatures(probe.data)
    checker = DkimChecker(DnsConfig(nameservers=("127.0.0.1",), port=5353))
    checker.resolver = FakeResolver({"probe._domainkey.example.test": txt})  # type: ignore[assignment]
    received = b"Received: from somewhere\r\n" + probe.data  # receivers prepend headers: still valid
    assert "pass" == (await checker.check(received)).result
    assert "fail" == (await checker.check(received.replace(b"nonce:", b"nonce-"))).result
    checker.resolver = FakeResolver({})  # type: ignore[assignment]
    assert "permerror" == (await checker.check(received)).result


async def test_dkim_check_unsigned_and_dns_timeout(rsa_key: tuple[Path, bytes]) -> None:
    """Unsigned mail is "none"; a DNS timeout is "temperror", not "fail"."""
    import dns.exception

    path, _ = rsa_key
    checker = DkimChecker(DnsConfig())
    unsigned = message.build(key=KEY, probe="p", mail_from="probe@example.test", rcpt="x@remote.test")
    assert "none" == (await checker.check(unsigned.data)).result
    signed = message.build(key=KEY, probe="p", mail_from="probe@example.test", rcpt="x@remote.test",
                           dkim_sign=message.DkimKey("example.test", "probe", str(path)))  # fmt: skip
    checker.resolver = FakeResolver({}, fail=dns.exception.Timeout)  # type: ignore[assignment]
    assert "temperror" == (await checker.check(signed.data)).result
