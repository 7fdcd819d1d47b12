"""rspamd's other lines: errors by class, worker lifecycle, greylisting, ratelimits, learns.

Each line names the C function or the Lua ``file.lua:LINE`` that wrote it. :func:`resolve` picks a
handler once per distinct function (the parser caches it), so the thousands of info lines of a busy log
cost one dict lookup each. Lua line numbers change between releases: Lua handlers key on the file name
and match on the message text. Handlers return an event, or :data:`NOISE` for a line that counts for
nothing (most of them), never None: the prefix was rspamd's, so the line is not "unparsed".

Lines this module reads (rspamd 3.4, message text after ``function: ``)::

    redis      rspamd_redis_connected: error getting reply from redis server 127.0.0.1:6379: Connection refused
               greylist.lua:290: got error while getting greylisting keys: Connection refused
               ratelimit.lua:595: cannot check limit 50000:bob@example.test: Connection refused nil
               history_redis.lua:132: got error Connection refused when writing history row: no value
    dns        rdns; rdns_make_request_full: cannot send DNS request: Connection refused
               rbl.lua:248: error looking up 20.2.0.192.zen.spamhaus.org: query timed out
               asn.lua:72: error querying dns "10.2.0.192.asn.rspamd.com" on 127.0.0.1: query timed out
    upstream   upstreams; rspamd_resolve_addrs: address resolution for fuzzy1.rspamd.com failed: ...
    map        rspamd_map_dns_callback: cannot resolve maps.rspamd.com: no records with this name
    lua        lua_metric_symbol_callback: call to (LAB_LUA_ERROR) failed (2): ...: deliberate lua error
    antivirus  common.lua:110: clamav: result - FAILED with error: "failed to scan and retransmits exceed"
    dkim_key   dkim_module_load_key_format: cannot load dkim key /path/nokey.test.lab.key: cannot stat ...
    milter     abnormally closing milter connection from: ..., error: ... / cannot find scan results, tempfail
    task_timeout  rspamd_task_timeout: processing of task time out: 8.0s spent; 8.0s limit; forced processing
    lifecycle  main: rspamd 3.4 is starting, build id: release
               rspamd_hup_handler: rspamd 3.4 is requested to reload configuration
               rspamd_term_handler: catch termination signal, waiting for 4 children for 5.0 s
               rspamd_handle_child_fork: starting normal process 1287 (0); listen on: 127.0.0.1:11333
               rspamd_check_termination_clause: normal process 28503 terminated abnormally with exit code 0 by
               signal: Killed but NOT created core file ...
               rspamd_cld_handler: respawn process normal in lieu of terminated process with pid 28503
    greylist   greylist.lua:430: greylisted until "Tue, 24 Nov 2026 15:48:08 GMT", new record
               greylist.lua:... greylisting pass (body) until Wed, 25 Nov 2026 16:58:26 GMT
    ratelimit  ratelimit.lua:617: ratelimit "to(50000:limited@example.test)" exceeded, (2 / 0.0003): ...
    learn      rspamd_controller_learn_fin_task: <127.0.0.1> learned message as spam: m07_rej-29787@lab.test
               rspamd_task_process: skip learning: <m01@lab.test> has been already learned as ham, ignore it

The AV scanner itself (clamav.lua: "failed to scan, maximum retransmits exceed") is not counted: the
generic common.lua line that follows it reports the same failure once for every scanner type.
"""

from __future__ import annotations

from collections.abc import Callable

from mailpulse.parsers.rspamd.events import (
    NOISE,
    Noise,
    RspamdError,
    RspamdEvent,
    RspamdGreylist,
    RspamdLearn,
    RspamdLifecycle,
    RspamdRatelimit,
)
from mailpulse.parsers.rspamd.vocab import OTHER, PROCESS_TYPES

SideResult = RspamdEvent | Noise
Handler = Callable[[str, str, str], SideResult]
"""``handler(ts, tag, message) -> event | NOISE``"""


def _process(name: str) -> str:
    return name if name in PROCESS_TYPES else OTHER


def _error(error_class: str, *words: str) -> Handler:
    """A handler counting ``error_class`` when the message contains any of ``words`` (all lines if none)."""

    def handle(ts: str, tag: str, msg: str) -> SideResult:
        if not words or any(w in msg for w in words):
            return RspamdError(ts, tag, error_class)
        return NOISE

    return handle


_FAILURE_WORDS = ("error", "cannot", "failed", "fail ", "refused", "timed out", "timeout")
_redis = _error("redis", *_FAILURE_WORDS)
_dns = _error("dns", *_FAILURE_WORDS)
_map = _error("map", "cannot", "error", "failed")
_upstream = _error("upstream", "failed", "error", "inactive", "cannot")
_milter = _error("milter", "abnormally", "cannot find scan results", "error")
_timeout = _error("task_timeout", "time out")


# --- lifecycle -----------------------------------------------------------------------------------------------
def _main(ts: str, tag: str, msg: str) -> SideResult:
    # "rspamd 3.4 is starting, build id: release"
    if msg[:7] == "rspamd " and " is starting" in msg:
        return RspamdLifecycle(ts, tag, "start", "main")
    return NOISE


def _hup(ts: str, tag: str, msg: str) -> SideResult:
    if "requested to reload" in msg:
        return RspamdLifecycle(ts, tag, "reload", "main")
    return NOISE


def _term(ts: str, tag: str, msg: str) -> SideResult:
    if msg[:24] == "catch termination signal":
        return RspamdLifecycle(ts, tag, "stop", "main")
    return NOISE


def _child_fork(ts: str, tag: str, msg: str) -> SideResult:
    # "starting normal process 1287 (0); listen on: 127.0.0.1:11333"
    if msg[:9] == "starting ":
        return RspamdLifecycle(ts, tag, "worker_start", _process(msg[9:].partition(" ")[0]))
    return NOISE


def _termination(ts: str, tag: str, msg: str) -> SideResult:
    # "normal process 1287 terminated normally" / "... terminated abnormally with exit code 0 by signal: ..."
    kind, sep, rest = msg.partition(" process ")
    if not sep or " terminated " not in rest:
        return NOISE
    event = "worker_crash" if "abnormally" in rest else "worker_exit"
    return RspamdLifecycle(ts, tag, event, _process(kind))


def _respawn(ts: str, tag: str, msg: str) -> SideResult:
    # "respawn process normal in lieu of terminated process with pid 28503"
    if msg[:16] == "respawn process ":
        return RspamdLifecycle(ts, tag, "worker_respawn", _process(msg[16:].partition(" ")[0]))
    return NOISE


# --- modules -------------------------------------------------------------------------------------------------
def _greylist(ts: str, tag: str, msg: str) -> SideResult:
    if msg[:16] == "greylisted until":
        # ', new record' for a first attempt; '(body only)', '(meta only)', '(meta and body)' when too early
        detail = "new_record" if msg[-10:] == "new record" else "too_early"
        return RspamdGreylist(ts, tag, "greylisted", detail)
    if msg[:16] == "greylisting pass":
        return RspamdGreylist(ts, tag, "pass", "")
    if "got error" in msg or "cannot" in msg:
        return RspamdError(ts, tag, "redis")
    return NOISE


def _ratelimit(ts: str, tag: str, msg: str) -> SideResult:
    # 'ratelimit "to(50000:limited@example.test)" exceeded, (2 / 0.0002777777777777778): ...'
    if msg[:11] == 'ratelimit "' and '" exceeded' in msg:
        bucket = msg[11:].partition("(")[0].partition('"')[0]
        return RspamdRatelimit(ts, tag, bucket)
    if msg[:7] == "cannot " or "got error" in msg:  # the Redis behind the buckets
        return RspamdError(ts, tag, "redis")
    return NOISE


def _scanner_result(ts: str, tag: str, msg: str) -> SideResult:
    # lua_scanners/common.lua: 'clamav: result - FAILED with error: "..."'
    if "result - FAILED" in msg:
        return RspamdError(ts, tag, "antivirus")
    return NOISE


def _dkim(ts: str, tag: str, msg: str) -> SideResult:
    if "cannot load" in msg or "cannot read key" in msg or "does not match private key" in msg:
        return RspamdError(ts, tag, "dkim_key")
    if "signing failure" in msg or "cannot create sign context" in msg:
        return RspamdError(ts, tag, "dkim_sign")
    return NOISE


def _lua_call(ts: str, tag: str, msg: str) -> SideResult:
    # "call to (LAB_LUA_ERROR) failed (2): ..."; "call to log function failed: ..."
    if msg[:8] == "call to " and "failed" in msg:
        return RspamdError(ts, tag, "lua")
    return NOISE


def _learn(ts: str, tag: str, msg: str) -> SideResult:
    # "<127.0.0.1> learned message as spam: <mid>"
    _, sep, rest = msg.partition("learned message as ")
    if sep:
        klass = rest.partition(":")[0]
        return RspamdLearn(ts, tag, klass if klass in {"spam", "ham"} else "", "learned")
    if "cannot learn" in msg or "learn failed" in msg:
        return RspamdLearn(ts, tag, "", "failed")
    return NOISE


def _task_process(ts: str, tag: str, msg: str) -> SideResult:
    # "skip learning: <mid> has been already learned as ham, ignore it"
    if msg[:14] == "skip learning:":
        klass = "spam" if "as spam" in msg else "ham" if "as ham" in msg else ""
        return RspamdLearn(ts, tag, klass, "skipped")
    return NOISE


def _noise(ts: str, tag: str, msg: str) -> SideResult:
    return NOISE


FUNCTIONS: dict[str, Handler] = {
    "main": _main,
    "rspamd_hup_handler": _hup,
    "rspamd_term_handler": _term,
    "rspamd_handle_child_fork": _child_fork,
    "rspamd_check_termination_clause": _termination,
    "rspamd_cld_handler": _respawn,
    "rspamd_task_timeout": _timeout,
    "lua_metric_symbol_callback": _lua_call,
    "dkim_module_load_key_format": _dkim,
    "rspamd_controller_learn_fin_task": _learn,
    "rspamd_controller_learn": _learn,
    "rspamd_task_process": _task_process,
    "rspamd_map_dns_callback": _map,
    "http_map_error": _error("map"),
    "rspamd_resolve_addrs": _upstream,
}

# Lua files (the part of "greylist.lua:430" before the colon)
LUA_FILES: dict[str, Handler] = {
    "greylist.lua": _greylist,
    "ratelimit.lua": _ratelimit,
    "common.lua": _scanner_result,
    "history_redis.lua": _redis,
    "lua_redis.lua": _redis,
    "bayes_expiry.lua": _redis,
    "replies.lua": _redis,
    "reputation.lua": _redis,
    "url_redirector.lua": _redis,
    "neural.lua": _error("redis", "got error", "cannot"),
    "rbl.lua": _error("dns", "error looking up", "timed out"),
    "asn.lua": _error("dns", "error querying dns", "timed out"),
    "mx_check.lua": _error("dns", "error", "timed out"),
    "dkim_signing.lua": _dkim,
    "arc.lua": _dkim,
    "lua_dkim_tools.lua": _dkim,
}

# Function-name prefixes and modules, tried in order for functions not in FUNCTIONS.
PREFIXES: tuple[tuple[str, Handler], ...] = (
    ("rspamd_redis_", _redis),
    ("rdns_", _dns),
    ("rspamd_dns_", _dns),
    ("rspamd_map_", _map),
    ("rspamd_milter_", _milter),
    ("proxy_", _milter),
    ("rspamd_proxy_", _milter),
    ("dkim_", _dkim),
    ("lua_dkim_", _dkim),
    ("lua_", _lua_call),
)
MODULES: dict[str, Handler] = {"rdns": _dns, "upstreams": _upstream, "milter": _milter, "dkim": _dkim}


def resolve(function: str, module: str) -> Handler:
    """The handler for lines of ``function`` (``greylist.lua:430`` for Lua) in ``module``."""
    handler = FUNCTIONS.get(function)
    if handler is not None:
        return handler
    name, colon, _ = function.partition(":")
    if colon and name[-4:] == ".lua":
        return LUA_FILES.get(name, _noise)
    for prefix, handler in PREFIXES:
        if function[: len(prefix)] == prefix:
            return handler
    return MODULES.get(module, _noise)
