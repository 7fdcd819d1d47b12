"""The mx_tls and dane checks against the main lab's real Postfix (its MX port, STARTTLS with the lab CA's
certificate for mx.example.test): the posture lab serves a DNSSEC-signed example.test whose TLSA records
are one that matches Postfix's key (3 1 1) for mx.example.test and one that does not for
mail.example.test, behind the validating unbound."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from lab.posture import PostureLab
from mailpulse import parse_config
from mailpulse.exporter.features.posture import der
from mailpulse.exporter.features.posture.feature import Posture
from mailpulse.exporter.features.posture.service import run_once
from mailpulse.exporter.features.posture.smtptls import insecure_context, starttls

pytestmark = pytest.mark.lab


def test_mx_tls_and_dane_against_real_postfix(mail_lab: Any) -> None:
    """Postfix offers STARTTLS with a certificate the lab CA signed for mx.example.test: mx_tls passes on both
    names; DANE-EE matches the SPKI of the certificate Postfix presents on mx.example.test, validated (AD),
    and the deliberately wrong TLSA of mail.example.test fails with tlsa_mismatch."""
    if shutil.which("knotd") is None or shutil.which("unbound") is None:
        pytest.skip("the posture lab needs knotd and unbound (Debian packages knot, unbound)")
    ca_file = Path(mail_lab["LAB_CA_FILE"])
    leaf = _postfix_leaf(mail_lab)
    tlsa = hashlib.sha256(der.spki(leaf)).hexdigest()
    records = ["mx A 127.0.0.1", "mail A 127.0.0.1", f"_25._tcp.mx TLSA 3 1 1 {tlsa}",
               f"_25._tcp.mail TLSA 3 1 1 {'ab' * 32}"]  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="mplab-posture-pf-"))
    lab = PostureLab.up(root, signed_zones={"example.test": records})
    try:
        raw = lab.config()
        raw.update(ca_file=str(ca_file), smtp_port=mail_lab.mx_port, senders=[], dnsbl={"zones": []},
                   domains=[{"name": "example.test", "mx": ["mx.example.test", "mail.example.test"], "dane": True}])  # fmt: skip
        feature = Posture()
        config = parse_config({"posture": raw}, with_features=[feature]).section(feature)
        assert config is not None
        results = {(r.target.check, r.target.item): r for r in asyncio.run(run_once(config, ["mx_tls", "dane"]))}
    finally:
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
    for mx in ("mx.example.test", "mail.example.test"):
        tls = results[("mx_tls", mx)]
        assert (True, "ok") == (tls.ok, tls.reason), tls.detail
        assert tls.infos["version"] in ("TLSv1.3", "TLSv1.2")
    good = results[("dane", "mx.example.test")]
    assert (True, {"validated": 1.0, "records": 1.0, "match": 1.0}) == (good.ok, good.values), good.detail
    bad = results[("dane", "mail.example.test")]
    assert ("tlsa_mismatch", 1.0) == (bad.reason, bad.values["validated"]), bad.detail


def _postfix_leaf(mail_lab: Any) -> bytes:
    """The certificate Postfix presents after STARTTLS (read over the wire, not from a file)."""
    session = asyncio.run(starttls("127.0.0.1", mail_lab.mx_port, "mx.example.test", insecure_context(),
                                   "checker.example.test", 10.0))  # fmt: skip
    assert session.leaf
    return session.leaf
