"""structlog configuration: console or JSON, and a redaction step that keeps secrets out of every line.

Two layers keep secrets out of logs:

* keys that name a secret (``password``, ``token``, ``secret``, ``authorization`` ...) are replaced;
* every secret value mailpulse loaded is registered with :func:`register_secret`, and any log field or
  stdlib log message containing one has it replaced, whatever the key. This catches a password echoed
  inside a library's exception text or debug line.

Libraries that log through the standard ``logging`` module are routed through the same redaction, and
aioimaplib, which logs LOGIN and XOAUTH2 arguments at DEBUG, is held at WARNING.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"
_SECRET_KEY_RE = re.compile(r"pass(word|wd|phrase)?|secret|token|authorization|credential|api_?key|private_key",
                            re.IGNORECASE)  # fmt: skip
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# Libraries that log credentials below WARNING (aioimaplib: LOGIN/XOAUTH2 arguments at DEBUG).
QUIET_LIBRARIES = ("aioimaplib", "aioimaplib.aioimaplib", "apscheduler", "asyncio", "aiosmtplib")


def register_secret(value: str) -> None:
    """Make sure ``value`` never appears in a log line. Short values (<4 chars) are ignored."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)
            # the same secret as a library might print it: base64 in AUTH PLAIN, escaped quotes in LOGIN
            _secrets.add(value.replace("\\", "\\\\").replace('"', '\\"'))


def scrub(text: str) -> str:
    if not _secrets:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide values of secret-looking keys and any registered secret value."""
    for key, value in event_dict.items():
        if _SECRET_KEY_RE.search(key) and value is not None and key != "event":
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = scrub(value)
        elif isinstance(value, BaseException):
            event_dict[key] = scrub(f"{type(value).__name__}: {value}")
    return event_dict


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str = "info", fmt: str = "console", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # stdlib logging (libraries) through the same renderer and redaction
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RedactingFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer, foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared]
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
