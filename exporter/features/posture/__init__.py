"""Deliverability posture: how the world sees your domains (SPF, DKIM, DMARC, MTA-STS, TLS-RPT, MX TLS,
DANE, reverse DNS, blocklists), checked on a schedule and exported as metrics. Guide: docs/posture.md.

The feature is :class:`mailpulse.exporter.features.posture.feature.Posture`; this package imports nothing
itself, so its modules can import each other through it without a cycle."""
