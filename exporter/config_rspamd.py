"""The ``rspamd:`` section of the config: which label values the rspamd metrics may carry.

Every key is optional::

    rspamd:
      signing_domains: [example.test]         # DKIM signing domains with their own label; others are "other"
      symbols: [BAYES_SPAM, RBL_SPAMHAUS_SBL]  # symbols with their own hit counter (an allowlist)
      antivirus: {CLAM_VIRUS: clamav}          # antivirus symbol → scanner label (default: rspamd's scanners)
      forced_modules: [my_prefilter]           # extra modules that get their own forced_by label
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailpulse.exporter.configtools import Node
from mailpulse.parsers.rspamd.vocab import ANTIVIRUS_SYMBOLS, FORCED_MODULES, module_key

# rspamd symbol names: letters, digits, "_" (Lua plugins may use lower case, "." and "-" too)
SYMBOL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$")
LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")
MAX_SYMBOLS = 200  # each symbol is a series and a substring search per scan

# What the keys of ``rspamd:`` mean (docs/config.md is generated from this and parse_rspamd below).
KEY_DOCS: dict[str, str] = {
    "rspamd": "Which label values the rspamd metrics may carry; every key is optional. How the metrics "
    "read rspamd's log: [rspamd.md](rspamd.md).",
    "rspamd.signing_domains": "DKIM signing domains that get their own `domain` label value in "
    '`mailpulse_rspamd_dkim_signatures_total` (pre-created at 0, so "signing stopped" can alert); every '
    "other domain is `other`. Compared in lower case.",
    "rspamd.symbols": f"rspamd symbols counted in `mailpulse_rspamd_symbol_hits_total` (an allowlist, "
    f"pre-created at 0; rspamd has ~550 symbols), at most {MAX_SYMBOLS}. Each one costs a substring search "
    "per scan: keep the list to what you alert on.",
    "rspamd.antivirus": "Antivirus symbol → `scanner` label (matching `[a-z0-9_]+`). A scan with the symbol is "
    "a detection, with `<symbol>_FAIL` a scanner failure. Set it when your antivirus rules use other symbol "
    "names; the default lists the scanners rspamd ships.",
    "rspamd.forced_modules": "Site-specific modules that force actions (custom prefilters, multimap rule "
    "names) and keep their name in the `module` label of `mailpulse_rspamd_forced_actions_total`, as "
    "rspamd's own modules do.",
}


@dataclass(frozen=True)
class RspamdConfig:
    # DKIM signing domains that get their own label value; every other domain is "other".
    signing_domains: tuple[str, ...] = ()
    # Symbols with their own hit counter (an allowlist: rspamd has ~550 symbols).
    symbols: tuple[str, ...] = ()
    # Antivirus symbol → scanner label. A scan with the symbol is a detection, with "<symbol>_FAIL" a failure.
    antivirus: tuple[tuple[str, str], ...] = tuple(ANTIVIRUS_SYMBOLS.items())
    # Modules (besides rspamd's own, vocab.FORCED_MODULES) that keep their name in the forced_by label.
    forced_modules: tuple[str, ...] = ()

    def forced_labels(self) -> frozenset[str]:
        return FORCED_MODULES | {module_key(m) for m in self.forced_modules}


def parse_rspamd(node: Node) -> RspamdConfig:
    domains = tuple(dict.fromkeys(d.lower().rstrip(".") for d in node.str_list("signing_domains", pattern=DOMAIN_RE)))
    symbols = tuple(dict.fromkeys(node.str_list("symbols", pattern=SYMBOL_RE)))
    if len(symbols) > MAX_SYMBOLS:
        node.problem(f"at most {MAX_SYMBOLS} symbols (got {len(symbols)})", "symbols")
    antivirus = node.str_map("antivirus", ANTIVIRUS_SYMBOLS)
    if node.has("antivirus"):
        for symbol, scanner in antivirus.items():
            if not SYMBOL_RE.match(symbol):
                node.problem(f"{symbol!r} is not a symbol name", f"antivirus.{symbol}")
            if not LABEL_RE.match(scanner):
                node.problem(f"{scanner!r} does not match {LABEL_RE.pattern}", f"antivirus.{symbol}")
    modules = tuple(node.str_list("forced_modules", pattern=re.compile(r"^[A-Za-z0-9_. -]{1,63}$")))
    return RspamdConfig(
        signing_domains=domains,
        symbols=symbols,
        antivirus=tuple(antivirus.items()),
        forced_modules=modules,
    )
