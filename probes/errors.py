"""Typed probe errors, each carrying the stage of the chain it happened in and a bounded reason.

Library errors (aiosmtplib, aioimaplib, ssl, socket, dnspython) are translated into these at one edge
(``probes/send.py``, ``probes/imapconn.py``); everything above works with ``exc.stage`` and
``exc.reason`` only. Both are fixed enums so they can become metric labels; the message text is for
logs and the CLI, never for labels.
"""

from __future__ import annotations

# Stages of one probe run, in chain order. "send": handing the message to the route's SMTP server;
# "receive": looking into the target mailbox over IMAP; "deliver": the message was accepted but did
# not show up; "internal": a bug in mailpulse (logged with a traceback).
STAGES = ("send", "receive", "deliver", "internal")

SEND_REASONS = (
    "dns",  # the route's host name does not resolve
    "connect",  # refused, unreachable, reset before the greeting
    "tls",  # handshake failed, untrusted or wrong certificate, STARTTLS not offered
    "auth",  # SASL/XOAUTH2 refused (535, 534, 530 ...)
    "credentials",  # our side: the XOAUTH2 token file or command failed
    "rejected_4xx",  # MAIL, RCPT or DATA answered with a temporary failure
    "rejected_5xx",  # ... with a permanent failure
    "timeout",  # a connect, command or the whole send took too long
    "protocol",  # anything else on the SMTP side (unexpected reply, disconnect)
)
RECEIVE_REASONS = (
    "imap_dns",
    "imap_connect",
    "imap_tls",
    "imap_auth",
    "imap_credentials",
    "imap_timeout",
    "imap_folder",  # a configured folder (or the \\Junk folder) does not exist
    "imap_protocol",  # NO/BAD replies, BYE, unparsable responses, connection lost
)
# lost: accepted by the route, not found in the mailbox by the deadline; auth_unexpected: found, but the
# receiver's Authentication-Results differ from the probe's `expect` (e.g. SPF failed after forwarding)
DELIVER_REASONS = ("lost", "auth_unexpected")
INTERNAL_REASONS = ("error",)

STAGE_REASONS: dict[str, tuple[str, ...]] = {
    "send": SEND_REASONS,
    "receive": RECEIVE_REASONS,
    "deliver": DELIVER_REASONS,
    "internal": INTERNAL_REASONS,
}


class ProbeError(Exception):
    """A probe failed; ``stage`` and ``reason`` are label-safe enums, the message is for humans."""

    stage = "internal"
    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            if reason not in STAGE_REASONS[self.stage]:
                raise ValueError(f"reason {reason!r} is not a {self.stage} reason")
            self.reason = reason


class SendError(ProbeError):
    stage = "send"
    reason = "protocol"


class ReceiveError(ProbeError):
    stage = "receive"
    reason = "imap_protocol"


class ImapTimeout(ReceiveError, TimeoutError):
    reason = "imap_timeout"


class ImapAuthError(ReceiveError):
    reason = "imap_auth"


class ImapFolderError(ReceiveError):
    reason = "imap_folder"


class CredentialError(Exception):
    """A token source (file or command) failed; the caller maps it to its stage's credentials reason."""
