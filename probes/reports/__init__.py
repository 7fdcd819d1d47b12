"""The reports feature: DMARC aggregate, SMTP TLS and ARF reports that receivers send about our mail,
read from an IMAP mailbox (with the probes' IMAP session: IDLE, STARTTLS or implicit TLS, XOAUTH2) or from
files (``mailpulse scan --reports``), de-duplicated, and counted with bounded labels.

It lives beside the probes because it reads mailboxes with their IMAP stack (the kernel, ``exporter/``,
may not import ``probes/``); the parsers are pure functions in ``parsers/reports/``.
"""
