"""Pure parts of the lab (no daemons): ports, lab.env, the generated mailpulse config and configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lab import envfile, outputs, yamlout
from lab.configs import LabSpec, dns, dovecot, postfix, rspamd
from lab.layout import PORT_SPAN, Paths, Ports, check_port_base
from lab.state import LabState


@pytest.fixture
def spec(tmp_path: Path) -> LabSpec:
    return LabSpec(
        Paths(tmp_path),
        LabState(port_base=21000, dkim="rspamd", password="pw 'quoted'"),
        "v=DKIM1; k=rsa; p=" + "A" * 392,
        "AA:BB",
    )


def test_ports_are_distinct_and_inside_the_span() -> None:
    """Every lab port is base + an offset below the span, and no two services share one."""
    ports = Ports(20000).all("opendkim")
    values = [*ports.values(), Ports(20000).metrics]
    assert len(set(values)) == len(values)
    assert all(20000 <= p < 20000 + PORT_SPAN for p in values)


@pytest.mark.parametrize("base", [80, 65500])
def test_port_base_out_of_range_is_refused(base: int) -> None:
    """A base whose ports would leave 1024..65535 is refused."""
    with pytest.raises(ValueError, match="port base"):
        check_port_base(base)


def test_lab_env_round_trips_and_has_the_contract_keys(spec: LabSpec) -> None:
    """lab.env holds every contract key, shell-quoted, and parses back to the same values."""
    values = outputs.env_values(spec)
    text = envfile.render(values)

    parsed = envfile.parse(text)

    assert set(envfile.REQUIRED_KEYS) <= set(parsed)
    assert parsed == {k: str(v) for k, v in values.items()}
    assert parsed["LAB_PASSWORD"] == "pw 'quoted'"
    env = envfile.LabEnv(parsed)
    assert env.submission_port == 21087
    assert env.mailboxes[:2] == ["probe@remote.test", "probe@partner.test"]


def test_mailpulse_yaml_follows_the_contract(spec: LabSpec) -> None:
    """The generated YAML loads to the config dict: two file sources, queue dir, signing domains,
    a state dir under DIR, metrics on loopback, routes x targets probes."""
    cfg = outputs.mailpulse_config(spec)

    loaded = yaml.safe_load(yamlout.dump(cfg, "header"))

    assert loaded == cfg
    # per-host log mode (the default): one postfix source per host, the submission host's first
    assert [(s["name"], s["type"], s["format"]) for s in cfg["sources"]] == [
        ("postfix", "file", "postfix"),
        ("postfix-relay", "file", "postfix"),
        ("postfix-mx", "file", "postfix"),
        ("postfix-srs", "file", "postfix"),
        ("rspamd", "file", "rspamd"),
    ]
    assert cfg["sources"][2]["path"] == str(spec.paths.instance("mx").log)
    assert cfg["postfix"]["queue"]["config_dir"] == str(spec.paths.postfix_etc)
    assert cfg["rspamd"]["signing_domains"] == ["example.test"]
    assert cfg["state_dir"].startswith(str(spec.paths.root))
    assert cfg["http"]["listen"] == "127.0.0.1:21047"
    probes = cfg["probes"]
    assert [r["port"] for r in probes["routes"]] == [21087, 21065, 21024, 21025]
    assert {r["tls"] for r in probes["routes"]} == {"starttls", "implicit"}
    assert {t["address"].split("@")[1] for t in probes["targets"]} == {"remote.test", "partner.test", "example.test"}
    # routes x mailbox targets, plus the forward route to its outside mailbox
    assert len(probes["probes"]) == 3 * 2 + 1
    forward = probes["routes"][-1]
    assert (forward["source_address"], forward["mail_from"], "username" in forward) == (
        "127.0.0.3",
        "probe@sender.test",
        False,
    )
    assert forward["dkim"]["domain"] == "sender.test"
    assert probes["probes"][-1]["expect"] == {"spf": "pass", "spf_domain": "srs.example.test", "dkim": "pass"}
    assert probes["dns"] == {"nameservers": ["127.0.0.1"], "port": 21053}


def test_every_listener_in_the_configs_is_loopback_in_range(spec: LabSpec) -> None:
    """Postfix, rspamd and dnsmasq configs bind only 127.0.0.1 and ports of the lab's range."""
    text = "".join(f.content for f in [*postfix.files(spec), *rspamd.files(spec), *dns.files(spec)])
    binds = re.findall(r"(\d+\.\d+\.\d+\.\d+):(\d{4,5}) inet|bind_socket = \"([\d.]+):(\d+)\"", text)
    assert len(binds) >= 8
    for a1, p1, a2, p2 in binds:
        assert (a1 or a2) == "127.0.0.1"
        assert 21000 <= int(p1 or p2) < 21000 + PORT_SPAN
    assert "listen-address=127.0.0.1\n" in text
    assert "port=21053\n" in text


def test_dovecot_has_a_junk_folder_and_the_sieve_rule(spec: LabSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dovecot flags Junk as \\Junk and runs a sieve script filing X-Spam: Yes into it."""
    monkeypatch.setattr("pwd.getpwnam", lambda _n: type("P", (), {"pw_uid": 900, "pw_gid": 900})())
    conf, _users, sieve = dovecot.files(spec)
    assert "special_use = \\Junk" in conf.content
    assert 'header :is "X-Spam" "Yes"' in sieve.content
    assert 'fileinto "Junk"' in sieve.content


def test_each_postfix_instance_has_its_own_host_queue_and_log(spec: LabSpec) -> None:
    """Four instances, each with its own myhostname, queue and data directory and, per host, its own
    maillog_file; in central mode all four maillog_files are the same file."""
    mains = {i.name: postfix.instance_files(spec, i.name)["main.cf"] for i in spec.paths.instances}
    assert list(mains) == ["submit", "relay", "mx", "srs"]
    settings = {name: dict(re.findall(r"^(\w+) = (.*)$", text, re.M)) for name, text in mains.items()}
    hostnames = [s["myhostname"] for s in settings.values()]
    assert hostnames == ["mail.example.test", "relay.example.test", "mx.example.test", "srs.example.test"]
    for key in ("queue_directory", "data_directory", "maillog_file"):
        assert len({s[key] for s in settings.values()}) == 4, key
    central = LabSpec(spec.paths, LabState(21000, "rspamd", "pw", log_mode="central"), spec.dkim_txt, "AA:BB")
    logs = {dict(re.findall(r"^(\w+) = (.*)$", postfix.instance_files(central, n)["main.cf"], re.M))["maillog_file"]
            for n in ("submit", "relay", "mx", "srs")}  # fmt: skip
    assert logs == {str(spec.paths.central_log)}
    assert [s["name"] for s in outputs.mailpulse_config(central)["sources"]] == ["postfix", "rspamd"]
    env = outputs.env_values(central)
    assert env["LAB_POSTFIX_LOG"] == env["LAB_POSTFIX_MX_LOG"] == spec.paths.central_log


def test_mx_filters_reinjects_and_forwards_through_srs(spec: LabSpec) -> None:
    """The MX hands mail to the content filter and takes it back on the re-injection port without a filter;
    the forward alias leaves through the SRS host, whose canonical maps are postsrsd's tcp tables."""
    ports = spec.ports
    mx = postfix.instance_files(spec, "mx")
    assert f"-o content_filter=scan:[127.0.0.1]:{ports.content_filter}" in mx["master.cf"]
    reinject = mx["master.cf"].split(f"127.0.0.1:{ports.reinject} inet")[1].split("\n#")[0]
    assert "-o content_filter=\n" in reinject
    assert "-o syslog_name=postfix/10025\n" in reinject
    assert "forward@example.test\tprobe@outside.test" in mx["virtual"]
    assert f"outside.test\ttosrs:[127.0.0.1]:{ports.srs_smtpd}" in mx["transport"]
    srs = postfix.instance_files(spec, "srs")
    assert f"sender_canonical_maps = tcp:127.0.0.1:{ports.srs_forward}" in srs["main.cf"]
    assert "-o smtp_bind_address=127.0.0.4" in srs["master.cf"]
    assert 'txt-record=srs.example.test,"v=spf1 ip4:127.0.0.4 -all"' in dns.files(spec)[0].content
