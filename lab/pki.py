"""The lab CA, its server and client certificates, and the DKIM key with its DNS TXT value.

Created once per lab directory with the openssl CLI (stdlib only here). TLS keys are EC P-256 so a
fresh lab costs milliseconds; the DKIM key is RSA 2048 because that is what verifiers expect.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import subprocess
from pathlib import Path

from lab.files import ensure_dir
from lab.layout import DKIM_SELECTOR, EXTERNAL_SENDER_DOMAIN, OWN_DOMAIN, Paths

SERVER_NAMES = (
    "mail.example.test",
    "mx.example.test",
    "relay.example.test",
    "srs.example.test",
    "mx.outside.test",
    "mx.remote.test",
    "mx.partner.test",
    "localhost",
)
CLIENT_CN = "relay-client.example.test"
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str) -> bytes:
    proc = subprocess.run(["openssl", *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _issue(paths: Paths, name: str, subject: str, extensions: str) -> None:
    """Create `<name>.key` and `<name>.pem` signed by the lab CA."""
    tls = paths.tls
    csr, ext = tls / f"{name}.csr", tls / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", "-new", *_EC, "-keyout", str(tls / f"{name}.key"), "-subj", subject, "-out", str(csr))
    serial = "0x" + os.urandom(8).hex()
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(paths.ca_cert),
        "-CAkey",
        str(tls / "ca.key"),
        "-set_serial",
        serial,
        "-days",
        "3650",
        "-extfile",
        str(ext),
        "-out",
        str(tls / f"{name}.pem"),
    )
    csr.unlink()
    ext.unlink()


def ensure_tls(paths: Paths) -> None:
    """Create the CA and the server and client certificates unless they exist."""
    ensure_dir(paths.tls, 0o755)
    if not (paths.ca_cert.exists() and (paths.tls / "ca.key").exists()):
        _openssl(
            "req",
            "-x509",
            "-new",
            *_EC,
            "-keyout",
            str(paths.tls / "ca.key"),
            "-out",
            str(paths.ca_cert),
            "-days",
            "3650",
            "-subj",
            "/O=mailpulse lab/CN=mailpulse lab CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
    if not (paths.server_cert.exists() and paths.server_key.exists()):
        sans = ",".join([*(f"DNS:{n}" for n in SERVER_NAMES), "IP:127.0.0.1"])
        _issue(
            paths,
            "server",
            f"/O=mailpulse lab/CN={SERVER_NAMES[0]}",
            f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
    if not (paths.client_cert.exists() and paths.client_key.exists()):
        _issue(
            paths,
            "client",
            f"/O=mailpulse lab/CN={CLIENT_CN}",
            f"subjectAltName=DNS:{CLIENT_CN}\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
    for key in paths.tls.glob("*.key"):
        key.chmod(0o600)  # root only: Postfix and Dovecot read keys before dropping privileges
    for cert in paths.tls.glob("*.pem"):
        cert.chmod(0o644)


def cert_fingerprint(cert: Path) -> str:
    """SHA-256 fingerprint in Postfix's check_ccert_access format (AA:BB:...)."""
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ensure_dkim(paths: Paths) -> str:
    """Create the DKIM key (rspamd's path scheme) unless it exists; return the TXT record value."""
    ensure_dir(paths.dkim, 0o750, "root", "_rspamd")
    if not paths.dkim_key.exists():
        tmp = paths.dkim_key.with_suffix(".tmp")
        _openssl("genrsa", "-out", str(tmp), "2048")
        tmp.replace(paths.dkim_key)
    paths.dkim_key.chmod(0o640)
    os.chown(paths.dkim_key, 0, _gid("_rspamd"))
    der = _openssl("pkey", "-in", str(paths.dkim_key), "-pubout", "-outform", "DER")
    txt = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    paths.dkim_txt.write_text(txt + "\n")
    paths.dkim_txt.chmod(0o644)
    return txt


def ensure_external_dkim(paths: Paths) -> str:
    """The outside sender's DKIM key (sender.test): the forward probe signs with it (mailpulse's own
    signer, as root), the lab DNS publishes it. Return the TXT record value."""
    key = paths.external_dkim_key
    if not key.exists():
        tmp = key.with_suffix(".tmp")
        _openssl("genrsa", "-out", str(tmp), "2048")
        tmp.chmod(0o600)
        tmp.replace(key)
    key.chmod(0o600)
    der = _openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER")
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def ensure_postsrsd_secret(paths: Paths) -> None:
    """postsrsd's HMAC secret: random, created once per lab, root only (read before it drops privileges)."""
    secret = paths.postsrsd_secret
    if not secret.exists():
        ensure_dir(secret.parent, 0o755)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(os.urandom(24)).decode() + "\n")
        past = secret.stat().st_mtime - 10
        os.utime(secret, (past, past))


def dkim_record_name() -> str:
    return f"{DKIM_SELECTOR}._domainkey.{OWN_DOMAIN}"


def external_dkim_record_name() -> str:
    return f"{DKIM_SELECTOR}._domainkey.{EXTERNAL_SENDER_DOMAIN}"


def txt_chunks(value: str, size: int = 250) -> list[str]:
    """Split a TXT value into character-strings of at most 255 bytes (DNS limit)."""
    return [value[i : i + size] for i in range(0, len(value), size)]


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid
