"""Deliverability posture: how the world sees your domains (SPF, DKIM, DMARC, MTA-STS, TLS-RPT, MX TLS,
DANE, reverse DNS, blocklists), checked on a schedule and exported as metrics. Guide: docs/posture.md."""

from __future__ import annotations

from mailpulse.exporter.features.posture.feature import Posture

__all__ = ["Posture"]
