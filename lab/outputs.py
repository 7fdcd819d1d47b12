"""What `up` hands to others: DIR/lab.env, DIR/mailpulse.yaml and the secret files they name."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from lab import envfile, yamlout
from lab.configs import LabSpec
from lab.configs.postfix import MX_HOSTNAME, OUTSIDE_MX_HOSTNAME, REINJECT_SYSLOG_NAME
from lab.files import FileSpec, write_all
from lab.layout import (
    DKIM_SELECTOR,
    EXTERNAL_PROBE_SENDER,
    EXTERNAL_SENDER_DOMAIN,
    EXTERNAL_SOURCE,
    FORWARD_ALIAS,
    FORWARD_TARGET,
    GTUBE_ADD_HEADER,
    HOST,
    MAILBOX_USERS,
    MTA_SOURCE,
    OWN_DOMAIN,
    SCORE_HEADER,
    SENDER,
    SRS_DOMAIN,
    SRS_SOURCE,
    TAMPER_TOKEN,
    TARGETS,
)


def hmac_secret_file(lab: LabSpec) -> Any:
    return lab.paths.secrets / "probe-hmac.key"


def postfix_logs(lab: LabSpec) -> dict[str, Path]:
    """Instance name -> its log file (in central mode every instance has the same one)."""
    return {inst.name: lab.paths.postfix_log_of(inst.name, lab.log_mode) for inst in lab.paths.instances}


def postfix_sources(lab: LabSpec) -> list[tuple[str, Path]]:
    """(source name, file) of every distinct Postfix log: `postfix` is the submission host's (or the
    central file), the others `postfix-<instance>`."""
    out: list[tuple[str, Path]] = []
    for name, path in postfix_logs(lab).items():
        if all(path != known for _n, known in out):
            out.append(("postfix" if not out else f"postfix-{name}", path))
    return out


def env_values(lab: LabSpec) -> dict[str, object]:
    p, ports = lab.paths, lab.ports
    logs = postfix_logs(lab)
    values: dict[str, object] = {
        "LAB_DIR": p.root,
        "LAB_PORT_BASE": ports.base,
        "LAB_HOST": HOST,
        "LAB_CA_FILE": p.ca_cert,
        "LAB_MX_PORT": ports.mx,
        "LAB_SUBMISSION_PORT": ports.submission,
        "LAB_SMTPS_PORT": ports.smtps,
        "LAB_RELAY_PORT": ports.relay,
        "LAB_RELAY_CLIENT_CERT": p.client_cert,
        "LAB_RELAY_CLIENT_KEY": p.client_key,
        "LAB_FAKE_REMOTE_PORT": ports.fake_remote,
        "LAB_IMAP_PORT": ports.imap,
        "LAB_IMAPS_PORT": ports.imaps,
        "LAB_DNS_PORT": ports.dns,
        "LAB_REDIS_PORT": ports.redis,
        "LAB_RSPAMD_CONTROLLER_PORT": ports.rspamd_controller,
        "LAB_SENDER": SENDER,
        "LAB_PASSWORD": lab.state.password,
        "LAB_PASSWORD_FILE": p.password_file,
        # the probe targets first (one per mailbox domain), then the sender's own mailboxes
        "LAB_MAILBOXES": " ".join(MAILBOX_USERS),
        # the submission host's log (per-host mode) or the central file; every log: LAB_POSTFIX_LOGS
        "LAB_POSTFIX_LOG": logs["submit"],
        "LAB_RSPAMD_LOG": p.rspamd_log,
        "LAB_DOVECOT_LOG": p.dovecot_log,
        # every instance's config dir, the submission host's first (`.split()[0]` for postqueue -c)
        "LAB_POSTFIX_CONFIG": " ".join(str(i.etc) for i in p.instances),
        "LAB_DKIM_DOMAIN": OWN_DOMAIN,
        "LAB_DKIM_SELECTOR": DKIM_SELECTOR,
        "LAB_DKIM_TXT": lab.dkim_txt,
        "LAB_MAILPULSE_CONFIG": p.mailpulse_yaml,
        "LAB_METRICS_PORT": ports.metrics,
        "LAB_PROMETHEUS_PORT": ports.prometheus,  # scripts/demo's, not the lab's
        "LAB_ALERTMANAGER_PORT": ports.alertmanager,
        # extras (docs/lab.md)
        "LAB_DKIM_MODE": lab.dkim_mode,
        "LAB_DKIM_TXT_FILE": p.dkim_txt,
        "LAB_MILTER_PORT": ports.milter,
        "LAB_RSPAMD_NORMAL_PORT": ports.rspamd_normal,
        "LAB_OPENDKIM_PORT": ports.opendkim,
        "LAB_DOVECOT_CONFIG": p.dovecot_conf,
        "LAB_MX_HOSTNAME": MX_HOSTNAME,
        "LAB_MTA_SOURCE": MTA_SOURCE,
        "LAB_EXTERNAL_SOURCE": EXTERNAL_SOURCE,
        "LAB_JUNK_BODY": GTUBE_ADD_HEADER,
        "LAB_SCORE_HEADER": SCORE_HEADER,
        "LAB_TAMPER_TOKEN": TAMPER_TOKEN,
        "LAB_HMAC_SECRET_FILE": hmac_secret_file(lab),
        # the multi-host topology (docs/lab.md): instances, logs, content filter, SRS forwarder
        "LAB_LOG_MODE": lab.log_mode,
        "LAB_POSTFIX_LOGS": " ".join(str(path) for _name, path in postfix_sources(lab)),
        "LAB_POSTFIX_INSTANCES": " ".join(i.name for i in p.instances),
        "LAB_RELAY_HOSTNAME": "relay.example.test",
        "LAB_OUTSIDE_MX_PORT": ports.outside_mx,
        "LAB_OUTSIDE_MX_HOSTNAME": OUTSIDE_MX_HOSTNAME,
        "LAB_SRS_PORT": ports.srs_smtpd,
        "LAB_SRS_DOMAIN": SRS_DOMAIN,
        "LAB_SRS_SOURCE": SRS_SOURCE,
        "LAB_CONTENT_FILTER_PORT": ports.content_filter,
        "LAB_REINJECT_PORT": ports.reinject,
        "LAB_REINJECT_SYSLOG_NAME": REINJECT_SYSLOG_NAME,
        "LAB_FILTER_LOG": p.filter_log,
        "LAB_FORWARD_ALIAS": FORWARD_ALIAS,
        "LAB_FORWARD_TARGET": FORWARD_TARGET,
        "LAB_EXTERNAL_SENDER": EXTERNAL_PROBE_SENDER,
        "LAB_EXTERNAL_DKIM_DOMAIN": EXTERNAL_SENDER_DOMAIN,
        "LAB_EXTERNAL_DKIM_KEY": p.external_dkim_key,
    }
    for name, path in logs.items():
        values[f"LAB_POSTFIX_{name.upper()}_LOG"] = path
        values[f"LAB_POSTFIX_{name.upper()}_CONFIG"] = p.instance(name).etc
    return values


ROUTES = (  # (name, port attribute, tls mode, auth)
    ("submission-587", "submission", "starttls", "sasl"),
    ("submission-465", "smtps", "implicit", "sasl"),
    ("relay-cert", "relay", "starttls", "cert"),
)
IMAP_TARGETS = (  # (name, address, port attribute, tls mode): one per mailbox domain, both TLS modes
    ("remote-inbox", TARGETS[0], "imaps", "implicit"),
    ("partner-inbox", TARGETS[1], "imap", "starttls"),
)


def mailpulse_config(lab: LabSpec) -> dict[str, Any]:
    """The ready mailpulse config for this lab (schema: docs/CONTRACTS.md). Adjust here only."""
    p, ports = lab.paths, lab.ports
    routes = []
    for name, port_attr, tls, auth in ROUTES:
        route: dict[str, Any] = {
            "name": name,
            "host": HOST,
            "port": getattr(ports, port_attr),
            "tls": tls,
            "ca_file": str(p.ca_cert),
        }
        if auth == "sasl":
            route.update(username=SENDER, password_file=str(p.password_file))
        else:
            route.update(client_cert=str(p.client_cert), client_key=str(p.client_key))
        route["mail_from"] = SENDER
        routes.append(route)
    targets = [
        {
            "name": name,
            "kind": "imap",
            "address": address,
            "host": HOST,
            "port": getattr(ports, port_attr),
            "tls": tls,
            "ca_file": str(p.ca_cert),
            "username": address,
            "password_file": str(p.password_file),
            "provider": "dovecot",
        }
        for name, address, port_attr, tls in IMAP_TARGETS
    ]
    probes = [
        {
            "name": f"{r['name']}-to-{t['name'].split('-')[0]}",
            "route": r["name"],
            "target": t["name"],
            "interval": "1m",
            "jitter": "5s",
            "deadline": "1m",
            "late_window": "10m",
        }
        for r in routes
        for t in targets
    ]
    fwd_route, fwd_target, fwd_probe = forward_probe(lab)
    routes.append(fwd_route)
    targets.append(fwd_target)
    probes.append(fwd_probe)
    return {
        "log": {"level": "info", "format": "console"},
        "http": {"listen": f"{HOST}:{ports.metrics}"},
        "state_dir": str(p.mailpulse_dir / "state"),
        "sources": [
            *(
                {"name": name, "type": "file", "format": "postfix", "path": str(path)}
                for name, path in postfix_sources(lab)
            ),
            {"name": "rspamd", "type": "file", "format": "rspamd", "path": str(p.rspamd_log)},
        ],
        "postfix": {
            "queue": {"enabled": True, "config_dir": str(p.postfix_etc), "interval": "30s"},
            # reconcile restored messages with the submission host's queue (its log lines say host "mail")
            "tracking": {"config_dir": str(p.postfix_etc), "local_hosts": ["mail"]},
        },
        "rspamd": {"signing_domains": [OWN_DOMAIN]},
        "probes": {
            "secret_file": str(hmac_secret_file(lab)),
            "dns": {"nameservers": [HOST], "port": ports.dns},
            "routes": routes,
            "targets": targets,
            "probes": probes,
        },
    }


FORWARD_ROUTE = "forward-srs"
FORWARD_TARGET_NAME = "outside-inbox"


def forward_probe(lab: LabSpec) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The forward route: from "the internet" (127.0.0.3) to the MX on port 25, STARTTLS required, no
    AUTH, signed by the outside sender (sender.test), to an alias the MX forwards through the SRS host to
    an outside mailbox. The receiver there must see SPF pass for the SRS domain and DKIM still passing."""
    p, ports = lab.paths, lab.ports
    route = {
        "name": FORWARD_ROUTE,
        "host": HOST,
        "port": ports.mx,
        "tls": "starttls",
        "ca_file": str(p.ca_cert),
        "mail_from": EXTERNAL_PROBE_SENDER,
        "source_address": EXTERNAL_SOURCE,
        "helo": f"mail.{EXTERNAL_SENDER_DOMAIN}",
        "dkim": {"domain": EXTERNAL_SENDER_DOMAIN, "selector": DKIM_SELECTOR, "key_file": str(p.external_dkim_key)},
    }
    target = {
        "name": FORWARD_TARGET_NAME,
        "kind": "imap",
        "address": FORWARD_ALIAS,
        "host": HOST,
        "port": ports.imaps,
        "tls": "implicit",
        "ca_file": str(p.ca_cert),
        "username": FORWARD_TARGET,
        "password_file": str(p.password_file),
        "provider": "dovecot",
        "authserv_id": OUTSIDE_MX_HOSTNAME,
    }
    probe = {
        "name": f"{FORWARD_ROUTE}-to-outside",
        "route": FORWARD_ROUTE,
        "target": FORWARD_TARGET_NAME,
        "interval": "1m",
        "jitter": "5s",
        "deadline": "1m",
        "late_window": "10m",
        "expect": {"spf": "pass", "spf_domain": SRS_DOMAIN, "dkim": "pass"},
    }
    return route, target, probe


def write(lab: LabSpec) -> None:
    """Write the secrets (once), lab.env and mailpulse.yaml."""
    p = lab.paths
    secret = hmac_secret_file(lab)
    old_secret = secret.read_text() if secret.exists() else secrets.token_hex(32) + "\n"
    header = (
        f"mailpulse config for the lab in {p.root} (port base {lab.ports.base}).\n"
        f"Generated by lab/mail-lab up; run: mailpulse run --config {p.mailpulse_yaml}"
    )
    write_all(
        [
            FileSpec(p.password_file, lab.state.password + "\n", mode=0o600),
            FileSpec(secret, old_secret, mode=0o600),
            FileSpec(p.env, envfile.render(env_values(lab)), mode=0o600),
            FileSpec(p.mailpulse_yaml, yamlout.dump(mailpulse_config(lab), header), mode=0o600),
        ]
    )
