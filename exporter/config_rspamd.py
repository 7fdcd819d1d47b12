"""The ``rspamd:`` section of the config: which label values the rspamd metrics may carry."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.configtools import Node


@dataclass(frozen=True)
class RspamdConfig:
    # DKIM signing domains that get their own label value; every other domain is "other".
    signing_domains: tuple[str, ...] = ()
    # Symbols with their own hit counter (an allowlist: rspamd has ~550 symbols).
    symbols: tuple[str, ...] = ()


def parse_rspamd(node: Node) -> RspamdConfig:
    return RspamdConfig(
        signing_domains=tuple(d.lower() for d in node.str_list("signing_domains")),
        symbols=tuple(node.str_list("symbols")),
    )
