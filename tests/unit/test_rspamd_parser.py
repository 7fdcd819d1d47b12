"""One rspamd line in, one typed event out: the prefixes, the verdict line's edge cases, the side lines.

Lines marked "lab" were written by the project's lab rspamd 3.4 (tests/fixtures/lab/rspamd.log); the
others are written by hand after rspamd 3.4's source (logger_file.c, logger_syslog.c, task.c) to reach
what the lab does not produce: null senders, unescaped options, cut lines, other loggers.
"""

from __future__ import annotations

import math

import pytest

from mailpulse.parsers.results import FOREIGN, Unparsed
from mailpulse.parsers.rspamd import RspamdParser, rspamd_timestamp
from mailpulse.parsers.rspamd.events import (
    NOISE,
    RspamdError,
    RspamdGreylist,
    RspamdLearn,
    RspamdLifecycle,
    RspamdRatelimit,
    RspamdRepeated,
    RspamdScan,
)

TS = "2026-11-24 16:58:18"
PREFIX = f"{TS} #25874(normal) <896180>; task; rspamd_task_write_log: "
# lab: a message through the MX, DKIM/SPF/DMARC pass
HAM = (
    "id: <lab-165817e6c9-003-submitted_587@example.test>, qid: <24B9F20C5A2>, ip: 127.0.0.2, "
    "from: <probe@example.test>, (default: F (no action): [-1.00/15.00] [DMARC_POLICY_ALLOW(-0.50)"
    "{example.test;reject;},R_DKIM_ALLOW(-0.20){example.test:s=lab;},R_SPF_ALLOW(-0.20){+ip4:127.0.0.2;},"
    "MIME_GOOD(-0.10){text/plain;},ARC_NA(0.00){},ARC_SIGNED(0.00){example.test:s=lab:i=1;},"
    "DKIM_TRACE(0.00){example.test:+;},RCPT_COUNT_ONE(0.00){1;}]), len: 1481, time: 12.179ms, dns req: 12, "
    "digest: <0bbd3d4e4a4c3fd9bbf6a6b2c6f6c61a>, rcpts: <probe@remote.test>, mime_rcpts: <probe@remote.test>"
)


def parse(line: str) -> object:
    return RspamdParser().parse_line(line)


def scan(line: str) -> RspamdScan:
    event = parse(line)
    assert isinstance(event, RspamdScan), event
    return event


# --- the verdict line --------------------------------------------------------------------------------------
def test_ham_through_the_mx() -> None:
    """A lab verdict: action, numbers, auth results, and the correlation fields read on demand."""
    e = scan(PREFIX + HAM)
    assert (e.ts, e.tag, e.action, e.score, e.size) == (TS, "896180", "no_action", -1.0, 1481)
    assert math.isclose(e.seconds, 0.012179)
    assert e.auth == ("allow", "allow", "allow", "na")
    assert (e.dkim, e.spf, e.dmarc, e.arc) == ("allow", "allow", "allow", "na")
    assert e.qid == "24B9F20C5A2"
    assert e.message_id == "lab-165817e6c9-003-submitted_587@example.test"
    assert (e.flag, e.required, e.signed, e.authenticated, e.complete) == ("F", 15.0, (), False, True)
    assert (e.forced_action, e.forced_by, e.settings_id) == ("", "", "")


def test_null_sender_has_no_from_field() -> None:
    """A bounce (envelope sender <>): rspamd leaves out ``from:`` entirely (lab, an NDR at the MX)."""
    line = (
        PREFIX + "id: <20261124165824.EDD4820CAA3@mail.example.test>, qid: <F00A120CA73>, ip: 127.0.0.2, "
        "(default: F (no action): [-0.40/15.00] [R_SPF_ALLOW(-0.20){+ip4:127.0.0.2;},BOUNCE(-0.10){DSN;},"
        "ARC_NA(0.00){},DMARC_NA(0.00){mail.example.test;},R_DKIM_NA(0.00){}]), len: 3613, time: 9.062ms, "
        "dns req: 2, digest: <c072d18562b03bb79b4c1ffd7a4446e5>, rcpts: <probe@example.test>, "
        "mime_rcpts: <probe@example.test>"
    )
    e = scan(line)
    assert (e.qid, e.action, e.score, e.auth) == ("F00A120CA73", "no_action", -0.4, ("na", "allow", "na", "na"))


def test_authenticated_signed_outbound() -> None:
    """SMTP AUTH user and DKIM_SIGNED (lab: a submission through the milter); no checks ran."""
    line = (
        PREFIX + "id: <m@example.test>, qid: <D570620C5A2>, ip: 127.0.0.1, user: probe@example.test, "
        "from: <probe@example.test>, (default: F (no action): [-0.10/15.00] [MIME_GOOD(-0.10){text/plain;},"
        "ARC_NA(0.00){},DKIM_SIGNED(0.00){Example.TEST:s=lab;},RCVD_VIA_SMTP_AUTH(0.00){}]), len: 603, "
        "time: 4.330ms, dns req: 0, digest: <d41d8cd98f00b204e9800998ecf8427e>, rcpts: <probe@remote.test>"
    )
    e = scan(line)
    assert e.authenticated
    assert e.signed == ("example.test",)
    assert e.auth == ("none", "none", "none", "na")


def test_options_with_commas_braces_quotes_and_brackets() -> None:
    """Options are not escaped: commas, braces, quotes, brackets and ``]), `` inside them change nothing."""
    line = (
        PREFIX + "id: <x@y>, (default: T (add header): [6.60/15.00] [FAKE_SUBJ(3.00){Hello, {world}; "
        '"quoted"; ]), len: 1;},R_DKIM_REJECT(1.00){example.test:s=lab;},PHISHING(2.00){a.test->b.test;},'
        "R_SPF_SOFTFAIL(0.50){~all;},DMARC_POLICY_QUARANTINE(1.50){example.test;quarantine;}]), len: 900, "
        "time: 5.000ms, dns req: 3, digest: <00>"
    )
    e = scan(line)
    assert (e.action, e.score, e.size) == ("add_header", 6.6, 900)
    assert e.auth == ("reject", "softfail", "quarantine", "none")
    assert e.symbols.startswith("FAKE_SUBJ(3.00){Hello, {world}; ")
    assert e.symbols.endswith("DMARC_POLICY_QUARANTINE(1.50){example.test;quarantine;}")


def test_forced_action_with_quotes_in_the_message() -> None:
    """``forced:`` text is not escaped (lab-like: clamav's message quotes the virus name)."""
    line = (
        PREFIX + "id: <m11@lab.test>, qid: <LAB11EICAR>, ip: 192.0.2.20, from: <m@sender.test>, "
        "(default: T (reject): [3.69/15.00] [MIME_BAD_EXTENSION(4.00){com;},CLAM_VIRUS(0.00)"
        "{Lab.Eicar-Test-Signature.UNOFFICIAL;}]), len: 505, time: 5.602ms, dns req: 18, digest: <45eb>, "
        'rcpts: <bob@example.test>, forced: reject "clamav: virus found: "Lab.Eicar-Test-Signature.UNOFFICIAL""; '
        "score=nan (set by clamav)"
    )
    e = scan(line)
    assert (e.action, e.forced_action, e.forced_by) == ("reject", "reject", "clamav")


def test_greylist_soft_reject_and_settings_id() -> None:
    """A soft reject set by greylist (lab), with a settings id after the forced action."""
    line = (
        PREFIX + "id: <g@lab.test>, qid: <ABC>, (default: F (soft reject): [4.30/15.00] "
        "[LAB_GREYLIST(5.50){},GREYLIST(0.00){greylisted;Tue, 24 Nov 2026 16:58:32 GMT;new record;}]), len: 629, "
        'time: 6.148ms, dns req: 18, digest: <9b16>, forced: soft reject "Try again later"; score=nan '
        "(set by greylist), settings_id: lab_probe"
    )
    e = scan(line)
    assert (e.action, e.forced_action, e.forced_by, e.settings_id) == (
        "soft_reject", "soft_reject", "greylist", "lab_probe",
    )  # fmt: skip


def test_ratelimit_message_with_quotes() -> None:
    """Quotes inside the forced message end neither the message nor the module."""
    line = (
        PREFIX + "id: <r@lab.test>, qid: <LAB14RL3>, (default: F (soft reject): [0.00/15.00] "
        "[RATELIMITED(0.00){to(RLx41jf9m1e8br7y6rqey8rk3c);}]), len: 604, time: 1.652ms, dns req: 1, "
        'digest: <48>, forced: soft reject "Ratelimit "to" exceeded"; score=nan (set by ratelimit)'
    )
    assert (scan(line).forced_action, scan(line).forced_by) == ("soft_reject", "ratelimit")


def test_gtube_skipped_task() -> None:
    """GTUBE: flag S, one symbol, a forced reject with a score (lab)."""
    line = (
        PREFIX + "id: <gt@sender.test>, qid: <Q>, ip: 127.0.0.3, from: <spam@sender.test>, "
        "(default: S (reject): [15.00/15.00] [GTUBE(0.00){}]), len: 498, time: 0.393ms, dns req: 0, "
        'digest: <bc0e>, rcpts: <bob@example.test>, forced: reject "Gtube pattern"; score=15.00 (set by GTUBE)'
    )
    e = scan(line)
    assert (e.flag, e.action, e.score, e.forced_by) == ("S", "reject", 15.0, "GTUBE")
    assert e.auth == ("none", "none", "none", "none")


def test_nan_scores() -> None:
    """rspamd prints nan for a nan score or threshold."""
    e = scan(PREFIX + "id: <n@x>, (default: F (no action): [nan/nan] [X(0.00){}]), len: 1, time: 1.000ms")
    assert math.isnan(e.score)
    assert math.isnan(e.required)


def test_options_cut_at_max_log_elts() -> None:
    """``...;`` after the last option rspamd kept; the symbol list is still complete."""
    e = scan(
        PREFIX + "id: <t@x>, (default: F (no action): [0.00/15.00] [DKIM_SIGNED(0.00){a.test:s=x;b.test:s=y;...;},"
        "MIME_TRACE(0.00){0:+;1:~;...;}]), len: 10, time: 1.000ms"
    )
    assert e.signed == ("a.test", "b.test")
    assert e.complete


def test_custom_action_and_undef_qid() -> None:
    """A custom action keeps its name (the metrics bound it); ``undef`` means no queue id."""
    e = scan(PREFIX + "id: <c@x>, qid: <undef>, (default: T (quarantine): [9.00/15.00] []), len: 10, time: 1.000ms")
    assert (e.action, e.qid, e.symbols) == ("quarantine", "", "")


def test_line_cut_inside_the_symbol_list() -> None:
    """rspamd cuts a message at 8 KiB: the verdict stays, the symbols before the cut too."""
    e = scan(PREFIX + "id: <cut@x>, (default: T (reject): [16.00/15.00] [R_SPF_FAIL(1.00){-all;},BIG(5.00){aaaa")
    assert (e.action, e.score, e.complete, e.size, e.spf) == ("reject", 16.0, False, -1, "fail")
    assert math.isnan(e.seconds)


def test_custom_format_with_extra_fields() -> None:
    """A custom log_format (lab: mime_from, groups, time real/virtual, mempool, lua) and no options."""
    line = (
        PREFIX + "id: <m04@lab.test>, qid: <LAB22CUSTOMFMT>, ip: 192.0.2.20, from: <alice@sender.test>, "
        "mime_from: <dave@sender.test>, (default: T (add header): [6.60/15.00] [LAB_SCORE(6.50),R_SPF_ALLOW(-0.20),"
        "ARC_NA(0.00),DMARC_NA(0.00),R_DKIM_NA(0.00)]), groups: [arc(0.00),lab(6.50)], public_groups: [], "
        "len: 625, time: 40.817ms real, 40.817ms virtual, dns req: 18, digest: <aedc>, lua: subject=x"
    )
    e = scan(line)
    assert (e.action, e.score, e.size, e.qid) == ("add_header", 6.6, 625, "LAB22CUSTOMFMT")
    assert math.isclose(e.seconds, 0.040817)
    assert e.auth == ("na", "allow", "na", "na")


def test_other_metric_name() -> None:
    """The metric name in ``(default: ...`` is part of the log_format text: any name is read."""
    e = scan(PREFIX + "id: <o@x>, (main: T (reject): [20.00/15.00] [A(20.00){}]), len: 5, time: 2.000ms")
    assert (e.action, e.score) == ("reject", 20.0)


def test_lua_log_variable_failure_is_a_lua_error() -> None:
    """The same function logs a failed ``$lua{}`` variable instead of a verdict."""
    assert parse(PREFIX + "call to log function failed: x.lua:1: boom") == RspamdError(TS, "896180", "lua")


@pytest.mark.parametrize(
    "text",
    ["", "id: <x>", "id: <x>, (default: F (no action", "id: <x>, (default: Q [1/2] [A(0.00){}]), len: 1",
     "id: <x>, (default: F (no action): [abc/15.00] [A(1.00){}]), len: 1, time: 1ms"],
)  # fmt: skip
def test_damaged_verdicts_are_unparsed(text: str) -> None:
    """A verdict line that cannot be read is Unparsed (kind verdict), never a guess."""
    event = parse(PREFIX + text)
    assert isinstance(event, Unparsed)
    assert event.daemon == "task"


# --- prefixes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "ts"),
    [
        (f"{TS} #25874(normal) <896180>; task; rspamd_task_write_log: ", TS),
        (f"{TS}.93515 #25874(normal) <896180>; task; rspamd_task_write_log: ", f"{TS}.93515"),  # log_usec
        (f"{TS} [notice] #25874(normal) <896180>; task; rspamd_task_write_log: ", TS),  # log_severity
        (f"{TS}.93515 [notice] #25874(normal) <896180>; task; rspamd_task_write_log: ", f"{TS}.93515"),
        ("(normal) <896180>; task; rspamd_task_write_log: ", ""),  # file logger, systemd = true
        ("#25874(normal) <896180>; task; rspamd_task_write_log: ", ""),  # console logger, systemd = true
        ("\x1b[0m\x1b[0;37m#25874(normal) <896180>; task; rspamd_task_write_log: ", ""),  # console, color
        ("Nov 24 16:58:18 mx rspamd[25874]: <896180>; task; rspamd_task_write_log: ", "Nov 24 16:58:18"),  # syslog
        ("2026-11-24T16:58:18.123456+00:00 mx rspamd[25874]: <896180>; task; rspamd_task_write_log: ",
         "2026-11-24T16:58:18.123456+00:00"),  # rsyslog high precision
    ],
)  # fmt: skip
def test_verdict_under_every_prefix(prefix: str, ts: str) -> None:
    """The same verdict under every logger and option combination."""
    e = scan(prefix + HAM)
    assert (e.ts, e.tag, e.qid, e.auth) == (ts, "896180", "24B9F20C5A2", ("allow", "allow", "allow", "na"))


def test_journald_fields() -> None:
    """journald: SYSLOG_IDENTIFIER rspamd, MESSAGE as the syslog logger writes it."""
    parser = RspamdParser()
    e = parser.parse_fields("2026-11-24T16:58:18+00:00", "rspamd", "<896180>; task; rspamd_task_write_log: " + HAM)
    assert isinstance(e, RspamdScan)
    assert (e.ts, e.tag, e.qid) == ("2026-11-24T16:58:18+00:00", "896180", "24B9F20C5A2")
    assert parser.parse_fields("2026-11-24T16:58:18+00:00", "postfix/smtpd", "connect from x[1.2.3.4]") is FOREIGN


def test_syslog_empty_tag_and_module() -> None:
    """The syslog logger writes ``<>; ; function: `` for lines without tag and module."""
    line = "Nov 24 16:58:18 mx rspamd[1280]: <>; ; rspamd_hup_handler: rspamd 3.4 is requested to reload configuration"
    assert parse(line) == RspamdLifecycle("Nov 24 16:58:18", "", "reload", "main")


@pytest.mark.parametrize(
    "line",
    [
        "Nov 24 16:58:17 mail postfix/smtpd[1]: connect from localhost[127.0.0.1]",
        "2026-11-24T16:58:17+00:00 mail dovecot[5]: imap-login: Login: user=<probe@remote.test>",
        "Nov 24 16:58:17 mail rspamc[9]: <>; ; main: x",
    ],
)
def test_other_programs_are_foreign(line: str) -> None:
    """Lines of other programs in a shared syslog file are FOREIGN, not errors."""
    assert parse(line) is FOREIGN


@pytest.mark.parametrize(
    "line",
    ["", "garbage", "2026-11-24 16:58:18 garbage", "2026-11-24 16:58:18 #25874normal) x",
     "2026-11-24 16:58:18 #25874(normal) <8961; task; f: x", "2026-11-24 16:58:18 [notice #1(main) main: x",
     "2026-11-24 16:58:18 #25874(normal) no function here"],
)  # fmt: skip
def test_shapeless_lines_are_unparsed(line: str) -> None:
    """A line without an rspamd prefix (in an rspamd log) is Unparsed and counted."""
    assert isinstance(parse(line), Unparsed)


def test_timestamps() -> None:
    """The raw timestamp of each prefix, for the last-line gauge."""
    assert rspamd_timestamp(PREFIX + HAM) == TS
    assert rspamd_timestamp(f"{TS}.93515 [info] #1(main) main: x") == f"{TS}.93515"
    assert rspamd_timestamp("Nov 24 16:58:18 mx rspamd[1]: <>; ; main: x") == "Nov 24 16:58:18"
    assert rspamd_timestamp("(normal) <abcdef>; task; f: x") is None


# --- side lines ----------------------------------------------------------------------------------------------
F = f"{TS} #1287(normal) <c91b29>; "
M = f"{TS} #1280(main) <fcc6c3>; main; "
SIDE: list[tuple[str, object]] = [
    (F + "task; rspamd_redis_connected: error getting reply from redis server 127.0.0.1:6379: Connection refused",
     RspamdError(TS, "c91b29", "redis")),  # corpus
    (F + "lua; greylist.lua:290: got error while getting greylisting keys: Connection refused",
     RspamdError(TS, "c91b29", "redis")),
    (F + "lua; history_redis.lua:132: got error Connection refused when writing history row: no value",
     RspamdError(TS, "c91b29", "redis")),
    (f"{TS} #1287(normal) lua; ratelimit.lua:595: cannot check limit 50000:bob@example.test: Connection refused nil",
     RspamdError(TS, "", "redis")),  # no tag
    (f"{TS} #1287(normal) rdns; rdns_make_request_full: cannot send DNS request: Connection refused",
     RspamdError(TS, "", "dns")),
    (F + "lua; rbl.lua:248: error looking up 20.2.0.192.zen.spamhaus.org: query timed out",
     RspamdError(TS, "c91b29", "dns")),
    (F + 'lua; asn.lua:72: error querying dns "10.2.0.192.asn.rspamd.com" on 127.0.0.1: query timed out',
     RspamdError(TS, "c91b29", "dns")),
    (f"{TS} #1280(main) <64d0b9>; upstreams; rspamd_resolve_addrs: address resolution for fuzzy1.rspamd.com "
     "failed: Name or service not known", RspamdError(TS, "64d0b9", "upstream")),
    (f"{TS} #1285(controller) <8mjxqq>; map; rspamd_map_dns_callback: cannot resolve maps.rspamd.com: no records "
     "with this name", RspamdError(TS, "8mjxqq", "map")),
    (F + "task; lua_metric_symbol_callback: call to (LAB_LUA_ERROR) failed (2): /x.lua:30: lab: deliberate lua "
     "error; trace: [1]:{[C]:-1 - error [C]};", RspamdError(TS, "c91b29", "lua")),
    (F + 'lua; common.lua:110: clamav: result - FAILED with error: "failed to scan and retransmits exceed - score: 0"',
     RspamdError(TS, "c91b29", "antivirus")),
    (F + "lua; clamav.lua:117: clamav: failed to scan, maximum retransmits exceed", NOISE),  # counted by common.lua
    (F + "task; dkim_module_load_key_format: cannot load dkim key /srv/dkim/nokey.test.lab.key: cannot stat key "
     "file: '/srv/dkim/nokey.test.lab.key' No such file or directory", RspamdError(TS, "c91b29", "dkim_key")),
    (F + "lua; dkim_signing.lua:120: signing failure: cannot sign", RspamdError(TS, "c91b29", "dkim_sign")),
    (F + "lua; arc.lua:700: cannot load private key for signing", RspamdError(TS, "c91b29", "dkim_key")),
    (f"{TS} #1281(rspamd_proxy) <a1b2c3>; milter; rspamd_milter_process_command: abnormally closing milter "
     "connection from: 127.0.0.1:4444, error: timeout", RspamdError(TS, "a1b2c3", "milter")),
    (F + "task; rspamd_task_timeout: processing of task time out: 8.0s spent; 8.0s limit; forced processing",
     RspamdError(TS, "c91b29", "task_timeout")),
    (f"{TS} #1242(main) <fcc6c3>; main; main: rspamd 3.4 is starting, build id: release",
     RspamdLifecycle(TS, "fcc6c3", "start", "main")),
    (M + "rspamd_hup_handler: rspamd 3.4 is requested to reload configuration",
     RspamdLifecycle(TS, "fcc6c3", "reload", "main")),
    (M + "rspamd_term_handler: catch termination signal, waiting for 4 children for 5.0 s",
     RspamdLifecycle(TS, "fcc6c3", "stop", "main")),
    (f"{TS} #1287(normal) <fcc6c3>; main; rspamd_handle_child_fork: starting normal process 1287 (0); listen on: "
     "127.0.0.1:11333", RspamdLifecycle(TS, "fcc6c3", "worker_start", "normal")),
    (M + "rspamd_check_termination_clause: normal process 1287 terminated abnormally with exit code 0 by signal: "
     "Killed but NOT created core file (throttled=no); core file limits: 0 current, -1 max",
     RspamdLifecycle(TS, "fcc6c3", "worker_crash", "normal")),
    (M + "rspamd_check_termination_clause: controller process 1285 terminated normally",
     RspamdLifecycle(TS, "fcc6c3", "worker_exit", "controller")),
    (M + "rspamd_cld_handler: respawn process normal in lieu of terminated process with pid 1287",
     RspamdLifecycle(TS, "fcc6c3", "worker_respawn", "normal")),
    (M + "rspamd_cld_handler: do not respawn process hs_helper after found terminated process with pid 1290", NOISE),
    (F + 'lua; greylist.lua:430: greylisted until "Tue, 24 Nov 2026 15:48:08 GMT", new record',
     RspamdGreylist(TS, "c91b29", "greylisted", "new_record")),
    (F + 'lua; greylist.lua:430: greylisted until "Tue, 24 Nov 2026 15:48:08 GMT" (body only)',
     RspamdGreylist(TS, "c91b29", "greylisted", "too_early")),
    (F + "lua; greylist.lua:370: greylisting pass (body) until Wed, 25 Nov 2026 16:58:32 GMT",
     RspamdGreylist(TS, "c91b29", "pass", "")),
    (F + "lua; greylist.lua:101: Score too low - skip greylisting", NOISE),
    (F + 'lua; ratelimit.lua:617: ratelimit "to(50000:limited@example.test)" exceeded, (2 / 0.0003): 1.99 '
     "(1.0201:1.0404 dyn); redis key: RLx41jf9m1e8br7y6rqey8rk3c", RspamdRatelimit(TS, "c91b29", "to")),
    (f"{TS} #1285(controller) <c8a388>; csession; rspamd_controller_learn_fin_task: <127.0.0.1> learned message "
     "as ham: m01_ham-17151@lab.test", RspamdLearn(TS, "c8a388", "ham", "learned")),
    (f"{TS} #1285(controller) <7d889d>; csession; rspamd_task_process: skip learning: <m01@lab.test> has been "
     "already learned as ham, ignore it", RspamdLearn(TS, "7d889d", "ham", "skipped")),
    (F + "task; rspamd_mime_part_detect_language: detected part language: en", NOISE),
    (f"{TS} #1242(main) rspamd_url_init: start compiling of 9628 TLD suffixes; it might take a long time", NOISE),
    (f"{TS} [error] #1287(normal) <c91b29>; task; some_new_function: an error no rule knows",
     RspamdError(TS, "c91b29", "other")),
    (f"{TS} [warn] #1287(normal) <c91b29>; task; some_new_function: a warning no rule knows", NOISE),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), SIDE)
def test_side_lines(line: str, expected: object) -> None:
    """Errors by class, lifecycle, greylisting, ratelimits, learns; the rest is noise, not unparsed."""
    assert parse(line) == expected


def test_last_message_repeated_refers_to_the_same_process() -> None:
    """``Last message repeated N times`` multiplies the previous line of the same process (pid), not the
    previous line of the file; N counts the held-back copies, one of which was written again."""
    parser = RspamdParser()
    error = parser.parse_line(f"{TS} #1285(controller) <8mjxqq>; map; rspamd_map_dns_callback: cannot resolve x")
    parser.parse_line(f"{TS} #1287(normal) <c91b29>; task; rspamd_mime_part_detect_language: detected part language")
    repeated = parser.parse_line(f"{TS} #1285(controller) rspamd_log_reset_repeated: Last message repeated 5 times")
    assert repeated == RspamdRepeated(TS, "", 4, error)
    other = parser.parse_line(f"{TS} #1287(normal) rspamd_log_reset_repeated: Last message repeated 2 times")
    assert other == RspamdRepeated(TS, "", 1, NOISE)


def test_repeated_line_without_a_count_is_unparsed() -> None:
    assert isinstance(parse(f"{TS} #1285(controller) rspamd_log_reset_repeated: Last message repeated"), Unparsed)


def test_verdicts_of_other_workers_and_modules() -> None:
    """The proxy in self-scan mode and the controller log verdicts under their own process and module."""
    for prefix in (f"{TS} #1281(rspamd_proxy) <896180>; proxy; rspamd_task_write_log: ",
                   f"{TS} #1285(controller) <896180>; csession; rspamd_task_write_log: ",
                   f"{TS} #1287(normal) <8961>; task; rspamd_task_write_log: "):  # fmt: skip
        e = scan(prefix + HAM)
        assert (e.qid, e.action) == ("24B9F20C5A2", "no_action")


def test_long_function_names() -> None:
    """A header longer than the fast path's window is still split at its first ': '."""
    line = f"{TS} #1287(normal) <c91b29>; lua; " + "x" * 300 + ".lua:12: got error"
    assert parse(line) is NOISE
