"""The bounded vocabularies of rspamd events: every label value the rspamd metrics can carry is here.

rspamd writes free text (actions with spaces, module names of site-specific Lua plugins, symbol names by
the hundred). Events keep that text for correlation; the aggregator maps it through these tables, and
anything unknown becomes ``other``, never a new series.
"""

from __future__ import annotations

OTHER = "other"

# rspamd's actions as logged (`(default: F (soft reject): ...`) → label values. The built-in actions of
# rspamd 3.x; custom actions (discard, quarantine, site-defined) are "other" in the metrics.
ACTION_LABELS = {
    "no action": "no_action",
    "greylist": "greylist",
    "add header": "add_header",
    "rewrite subject": "rewrite_subject",
    "soft reject": "soft_reject",
    "reject": "reject",
}
SCAN_ACTIONS = (*ACTION_LABELS.values(), OTHER)
_SCAN_ACTION_SET = frozenset(SCAN_ACTIONS)
GREYLIST_MODULE = "greylist"


def scan_label(action: str, forced_by: str) -> str:
    """The ``action`` label of a scan: the action bounded to SCAN_ACTIONS, except that a soft reject
    forced by the greylist module is ``greylist`` (greylisting soft-rejects by design; other soft rejects,
    from ratelimit or prefilters, are problems to watch)."""
    if action == "soft_reject" and module_key(forced_by) == GREYLIST_MODULE:
        return "greylist"
    return action if action in _SCAN_ACTION_SET else OTHER


# Modules that set a pre-result ("forced: ... (set by X)") in a stock rspamd 3.x: C code (GTUBE, task
# timeouts), the Lua plugins that call task:set_pre_result, and the antivirus/external-service rule types
# (their rule names default to the type). A site's own modules are added from the config.
FORCED_MODULES = frozenset(
    {
        "greylist", "ratelimit", "gtube", "dmarc", "force_actions", "multimap", "replies", "spamtrap",
        "mx_check", "p0f", "settings", "whitelist", "task_timeout", "antivirus", "external_services",
        "clamav", "fprot", "sophos", "savapi", "kaspersky", "avast", "icap", "oletools", "spamassassin",
        "dcc", "razor", "pyzor", "vadesecure", "cloudmark",
    }
)  # fmt: skip


def module_key(module: str) -> str:
    """``GTUBE`` → ``gtube``, ``task timeout`` → ``task_timeout``: the form module names are matched in."""
    return module.lower().replace(" ", "_")


# --- authentication results -------------------------------------------------------------------------------
# A verdict carries at most a few of these symbols; each method's result is one enum value per message.
# When several results of one method are present (a message with two DKIM signatures), the earlier entry
# in the tuple wins: a valid signature makes the message "allow", as for DMARC; DMARC_POLICY_ALLOW comes
# with DMARC_POLICY_ALLOW_WITH_FAILURES when DKIM failed but SPF aligned, and the narrower one wins.
NONE = "none"  # no symbol of the method: not checked (local or authenticated sender, GTUBE, settings)
DKIM_RESULTS = ("allow", "reject", "tempfail", "permfail", "na", NONE)
SPF_RESULTS = ("allow", "fail", "softfail", "neutral", "dnsfail", "permfail", "na", NONE)
DMARC_RESULTS = (
    "allow_with_failures", "allow", "reject", "quarantine", "softfail", "dnsfail", "bad_policy", "na", NONE,
)  # fmt: skip
ARC_RESULTS = ("allow", "reject", "invalid", "dnsfail", "na", NONE)
AUTH_METHODS = ("dkim", "spf", "dmarc", "arc")
AUTH_RESULTS = {"dkim": DKIM_RESULTS, "spf": SPF_RESULTS, "dmarc": DMARC_RESULTS, "arc": ARC_RESULTS}

# Symbol-name prefix of each method and the symbols (after the prefix) that map to a result. Symbols
# sharing a prefix without being a result (DMARC_POLICY_*, ARC_SIGNED) are mapped or ignored explicitly.
DKIM_PREFIX = "R_DKIM_"
DKIM_SYMBOLS = {"ALLOW": "allow", "REJECT": "reject", "TEMPFAIL": "tempfail", "PERMFAIL": "permfail", "NA": "na"}
SPF_PREFIX = "R_SPF_"
SPF_SYMBOLS = {
    "ALLOW": "allow", "FAIL": "fail", "SOFTFAIL": "softfail", "NEUTRAL": "neutral", "DNSFAIL": "dnsfail",
    "PERMFAIL": "permfail", "NA": "na",
}  # fmt: skip
DMARC_PREFIX = "DMARC_"
DMARC_SYMBOLS = {
    "POLICY_ALLOW": "allow", "POLICY_ALLOW_WITH_FAILURES": "allow_with_failures", "POLICY_REJECT": "reject",
    "POLICY_QUARANTINE": "quarantine", "POLICY_SOFTFAIL": "softfail", "DNSFAIL": "dnsfail",
    "BAD_POLICY": "bad_policy", "NA": "na",
}  # fmt: skip
ARC_PREFIX = "ARC_"
ARC_SYMBOLS = {"ALLOW": "allow", "REJECT": "reject", "INVALID": "invalid", "DNSFAIL": "dnsfail", "NA": "na"}

# Antivirus: the symbol each scanner type inserts by default (rspamd's lua_scanners), and the scanner label.
# A failed scan adds "<symbol>_FAIL". Sites with other symbol names configure their own map.
ANTIVIRUS_SYMBOLS = {
    "CLAM_VIRUS": "clamav",
    "FPROT_VIRUS": "fprot",
    "SOPHOS_VIRUS": "sophos",
    "SAVAPI_VIRUS": "savapi",
    "KAS_VIRUS": "kaspersky",
    "AVAST_VIRUS": "avast",
    "ICAP_VIRUS": "icap",
}

# --- side lines ---------------------------------------------------------------------------------------------
# Errors by the dependency or part that failed. See parsers/rspamd/side.py for the lines behind each class.
ERROR_CLASSES = (
    "redis",  # Redis unreachable or failing (greylist, ratelimit, history, bayes, neural, lua_redis)
    "dns",  # resolver failures (rdns, RBL/ASN/SPF lookups timing out)
    "upstream",  # upstream servers unresolvable or marked down
    "map",  # maps that cannot be fetched or resolved
    "lua",  # Lua rules and log functions that raised
    "antivirus",  # antivirus scanner failures (retransmits exceeded, scanner errors)
    "dkim_key",  # DKIM/ARC signing keys that cannot be loaded
    "dkim_sign",  # DKIM signing failures with a loaded key
    "milter",  # milter sessions that ended abnormally, missing scan results
    "task_timeout",  # scans that hit the task timeout
    OTHER,  # a line logged at error/crit severity that no rule classifies (only with log_severity)
)

# Worker and daemon lifecycle (main process lines).
LIFECYCLE_EVENTS = (
    "start",  # "rspamd 3.4 is starting"
    "reload",  # "rspamd 3.4 is requested to reload configuration" (SIGHUP)
    "stop",  # "catch termination signal, waiting for N children"
    "worker_start",  # "starting normal process 1287"
    "worker_exit",  # "normal process 1287 terminated normally"
    "worker_crash",  # "normal process 1287 terminated abnormally ..."
    "worker_respawn",  # "respawn process normal in lieu of terminated process with pid 1287"
)
PROCESS_TYPES = frozenset({"main", "normal", "controller", "rspamd_proxy", "hs_helper", "fuzzy", "lua"})

GREYLIST_RESULTS = ("greylisted", "pass", "error")
LEARN_CLASSES = ("spam", "ham")
LEARN_RESULTS = ("learned", "skipped", "failed")
