"""rspamd overlay (passed as LOCAL_CONFDIR; /etc/rspamd is only read): one milter (proxy) worker
used by every smtpd, DKIM signing for the sending side, full checks at the MX.

Who gets what (all clients are loopback, which rspamd always calls "local"):
- SASL-authenticated submissions: no checks (check_authed = false), DKIM-signed (sign_authenticated).
- 127.0.0.1 without SASL (client-cert relay): checked like inbound mail, DKIM-signed (sign_networks).
- 127.0.0.2 (our SMTP client at the MX) and 127.0.0.3 (direct injections): checked
  (check_local = true), never signed (sign_local = false), Authentication-Results added.
Greylisting: for scores >= the greylist action (4); normal probes score about -1 at the MX.
Lab rules (rspamd.local.lua) make scores deterministic from headers:
- `X-Lab-Score: <n>` adds n (LAB_SCORE), e.g. 8 = add header -> Junk with every check done;
  messages carrying it are never greylisted (greylist whitelist_symbols).
- `X-Lab-Greylist: yes` adds 5.5 (LAB_GREYLIST): about 4.5 at the MX -> greylisted once, passes
  after GREYLIST_TIMEOUT_S on retry.
DMARC policies are enforced (a spoof of example.test is rejected, "set by dmarc"); example.test
publishes sp=none so Postfix's own bounces (From: MAILER-DAEMON@mail.example.test, null sender, no
DKIM: never aligned in rspamd) are not rejected at the MX.
"""

from __future__ import annotations

from lab.configs import LabSpec
from lab.files import FileSpec
from lab.layout import HOST, RSPAMD_HS_CACHE

GREYLIST_TIMEOUT_S = 5  # how long a greylisted triplet must wait before a retry passes

LAB_RULES_LUA = """\
-- mailpulse lab rules: deterministic scores and forced actions from message headers
rspamd_config.LAB_SCORE = {
  callback = function(task)
    local h = task:get_header('X-Lab-Score')
    if h and tonumber(h) then
      return true, tonumber(h), 'lab=' .. h
    end
    return false
  end,
  score = 1.0,
  description = 'lab: score injected from the X-Lab-Score header',
  group = 'lab',
}
rspamd_config.LAB_GREYLIST = {
  callback = function(task)
    if task:get_header('X-Lab-Greylist') then
      return true, 'lab'
    end
    return false
  end,
  score = 5.5,
  description = 'lab: pushes the score into the greylist range',
  group = 'lab',
}
rspamd_config:register_symbol({
  name = 'LAB_FORCE',
  type = 'prefilter',
  priority = 10,
  callback = function(task)
    local h = task:get_header('X-Lab-Force')
    if h then
      task:insert_result('LAB_FORCE', 1.0, h)
      task:set_pre_result(h, 'lab forced ' .. h, 'lab')
    end
  end,
})
rspamd_config:set_metric_symbol({ name = 'LAB_FORCE', score = 0.0, group = 'lab' })
"""


def _overlay(lab: LabSpec) -> dict[str, str]:
    p, ports = lab.paths, lab.ports
    signing = lab.dkim_mode == "rspamd"
    dkim_signing = (
        f'path = "{p.dkim}/$domain.$selector.key";\nselector = "lab";\n'
        "sign_authenticated = true;\n"
        "# the client-cert relay is 127.0.0.1 without SASL; the MX's clients are not\n"
        'sign_local = false;\nsign_networks = ["127.0.0.1/32"];\nallow_username_mismatch = true;\n'
        if signing
        else "# OpenDKIM signs in this lab (--dkim opendkim)\nenabled = false;\n"
    )
    return {
        "local.d/logging.inc": 'level = "info";\n',
        "local.d/options.inc": (
            f'dns {{\n  nameserver = ["{HOST}:{ports.dns}"];\n  timeout = 1s;\n  retransmits = 2;\n}}\n'
            "# GTUBE variants: YJS... = add header (-> Junk), ZJS... = rewrite subject, AJS... = no action\n"
            "enable_test_patterns = true;\n"
            f'hs_cache_dir = "{RSPAMD_HS_CACHE}/";\n'
        ),
        "local.d/redis.conf": f'servers = "{HOST}:{ports.redis}";\n',
        "override.d/worker-normal.inc": f'bind_socket = "{HOST}:{ports.rspamd_normal}";\ncount = 1;\n',
        "override.d/worker-controller.inc": (f'bind_socket = "{HOST}:{ports.rspamd_controller}";\ncount = 1;\n'),
        "override.d/worker-proxy.inc": (
            f'bind_socket = "{HOST}:{ports.milter}";\nmilter = yes;\ntimeout = 120s;\ncount = 1;\n'
            f'upstream "local" {{\n  default = yes;\n  hosts = "{HOST}:{ports.rspamd_normal}";\n}}\n'
        ),
        "local.d/dkim_signing.conf": dkim_signing,
        "local.d/dkim.conf": "check_local = true;\n",
        "local.d/spf.conf": "check_local = true;\n",
        "local.d/dmarc.conf": (
            "check_local = true;\n# enforce p=reject / p=quarantine, as many receivers do\n"
            'actions {\n  reject = "reject";\n  quarantine = "add header";\n}\n'
        ),
        "local.d/greylist.conf": (
            f'check_local = true;\ntimeout = {GREYLIST_TIMEOUT_S}s;\nwhitelist_symbols = ["LAB_SCORE"];\n'
        ),
        "local.d/milter_headers.conf": (
            "skip_local = false;\nskip_authenticated = true;\n"
            'use = ["authentication-results", "x-spamd-result", "x-rspamd-server", "x-rspamd-queue-id", '
            '"x-spam-level"];\n'
        ),
        "rspamd.local.lua": LAB_RULES_LUA,
    }


def files(lab: LabSpec) -> list[FileSpec]:
    etc = lab.paths.rspamd_etc
    return [FileSpec(etc / name, text) for name, text in _overlay(lab).items()]


def command(lab: LabSpec) -> list[str]:
    p = lab.paths
    return [
        "rspamd",
        "-u",
        "_rspamd",
        "-g",
        "_rspamd",
        "-c",
        "/etc/rspamd/rspamd.conf",
        f"--var=LOCAL_CONFDIR={p.rspamd_etc}",
        f"--var=DBDIR={p.rspamd_db}",
        f"--var=RUNDIR={p.rspamd_run}",
        f"--var=LOGDIR={p.rspamd}",
        "-p",
        str(p.rspamd_pid),
    ]
