"""Keys and certificates of the posture lab, made with the openssl CLI: a CA, the MX and HTTPS server
certificates (one with a name that does not match, one that expires in two days), and DKIM keys."""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import subprocess
from pathlib import Path

from lab.posture.zones import INSECURE, ZONE, Domain, Keys
from mailpulse.exporter.features.posture import der

_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _issue(dir_: Path, name: str, names: list[str], days: int) -> None:
    key, csr, cert = dir_ / f"{name}.key", dir_ / f"{name}.csr", dir_ / f"{name}.crt"
    _openssl("req", "-new", *_EC, "-keyout", str(key), "-subj", f"/CN={names[0]}", "-out", str(csr))
    ext = dir_ / f"{name}.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(dir_ / "ca.crt"), "-CAkey", str(dir_ / "ca.key"),
             "-CAcreateserial", "-days", str(days), "-extfile", str(ext), "-out", str(cert))  # fmt: skip


def spki_b64(key: Path) -> str:
    return base64.b64encode(_openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER")).decode()


def make(dir_: Path, domains: list[Domain]) -> Keys:
    dir_.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *_EC, "-keyout", str(dir_ / "ca.key"), "-subj", "/CN=mailpulse posture lab CA",
             "-days", "30", "-out", str(dir_ / "ca.crt"))  # fmt: skip
    _issue(dir_, "mx", [f"*.{ZONE}", f"mx.{INSECURE}"], 30)
    _issue(dir_, "expiring", [f"mx.expiring.{ZONE}"], 2)
    _issue(dir_, "sts", [f"mta-sts.{d.fqdn}" for d in domains], 30)
    _issue(dir_, "wrong", ["wrong.example"], 30)
    # the signers' own key generators: OpenDKIM's (RSA, PEM) and rspamd's (RSA; ed25519 in its base64 format)
    _run("opendkim-genkey", "-b", "2048", "-D", str(dir_), "-d", "good.posture.test", "-s", "sel1")
    (dir_ / "sel1.private").rename(dir_ / "dkim-good.key")
    _run("rspamadm", "dkim_keygen", "-b", "2048", "-d", "x", "-s", "x", "-k", str(dir_ / "dkim-other.key"))
    ed_record = _run("rspamadm", "dkim_keygen", "-t", "ed25519", "-d", "x", "-s", "x", "-k", str(dir_ / "dkim-ed.key"))
    ed_public = re.search(r"p=([A-Za-z0-9+/=]+)", ed_record)
    assert ed_public is not None, ed_record
    _openssl("genrsa", "-out", str(dir_ / "dkim-weak.key"), "512")
    leaf = ssl.PEM_cert_to_DER_cert((dir_ / "mx.crt").read_text())
    return Keys(spki_b64(dir_ / "dkim-good.key"), spki_b64(dir_ / "dkim-other.key"), spki_b64(dir_ / "dkim-weak.key"),
                hashlib.sha256(der.spki(leaf)).hexdigest(), ed_public[1])  # fmt: skip


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr}")
    return proc.stdout
