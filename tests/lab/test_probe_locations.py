"""Two probers in different locations sharing one real lab mailbox (Dovecot) and one HMAC key: each finds and
counts its own probes only, and the sweep removes only its own stale messages.

Without the location in the tag, both probers (same key) took each other's stale probes for their own and
swept them; the planted messages below show the difference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lab.envfile import LabEnv
from mailpulse.probes.message import _tag_mac, make_tag, new_token
from tests.lab.test_probes_e2e import REPO, _message, imap, imap_probe_uids, lab_config, lab_probes, probe

pytestmark = [pytest.mark.lab]


def _plant(env: LabEnv, user: str, messages: list[bytes], when: float) -> None:
    conn = imap(env, user)
    try:
        date = f'"{datetime.fromtimestamp(when, UTC).strftime("%d-%b-%Y %H:%M:%S +0000")}"'
        for raw in messages:
            assert conn.append("INBOX", "", date, raw)[0] == "OK"
    finally:
        conn.logout()


def _subjects_left(env: LabEnv, user: str) -> list[str]:
    """Subjects of the probe-like messages still in INBOX; removes them (the mailbox is shared by tests)."""
    uids = imap_probe_uids(env, user)["INBOX"]
    conn = imap(env, user)
    try:
        conn.select("INBOX")
        subjects = []
        for uid in uids:
            _typ, data = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(data[0][1].decode())
            conn.uid("STORE", uid.decode(), "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()
    finally:
        conn.logout()
    return subjects


@pytest.mark.timeout(150)
def test_two_locations_share_a_mailbox(mail_lab: LabEnv, tmp_path: Path) -> None:
    """Probers `fra` and `ams` (MAILPULSE_PROBE_LOCATION, one config file) run the same probes into the same
    mailbox at the same time: every run of each is delivered (neither consumed the other's message), each
    result's Message-ID names its location; fra's stale probe is swept (by fra), ams's too (by ams), and a
    stale probe of a third location and one from before locations existed are left alone."""
    env = mail_lab
    user = "probe@remote.test"
    key = Path(lab_probes(env)["secret_file"]).read_text().strip().encode()
    old = time.time() - 3 * 86400
    stale = {}
    for loc in ("fra", "ams", "nyc"):
        token = new_token()
        stale[loc] = token
        _plant(env, user, [_message(f"mailpulse probe old {token}", make_tag(key, token, "shared", int(old), loc))],
               old)  # fmt: skip
    legacy = new_token()
    legacy_tag = (
        f"v=1; id={legacy}; probe=shared; ts={int(old)}; sig={_tag_mac(key, legacy, 'shared', str(int(old)), None)}"
    )
    _plant(env, user, [_message(f"mailpulse probe old {legacy}", legacy_tag)], old)

    probes = [probe("shared", deadline="30s"), probe("shared-465", route="submission-465", deadline="30s")]
    config = lab_config(env, tmp_path, probes=probes, sweep_interval="10s")
    procs = {}
    for loc in ("fra", "ams"):
        (tmp_path / loc).mkdir()
        text = config.read_text().replace(str(tmp_path / "state"), str(tmp_path / loc / "state"))
        (tmp_path / loc / "mailpulse.yaml").write_text(text)
        (tmp_path / loc / "mailpulse.yaml").chmod(0o600)
        procs[loc] = subprocess.Popen(
            [sys.executable, "-m", "mailpulse", "probe", "-c", str(tmp_path / loc / "mailpulse.yaml")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "MAILPULSE_PROBE_LOCATION": loc},
        )  # fmt: skip
    results = {}
    for loc, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[loc] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert 0 == proc.returncode, (loc, results[loc], err[-2000:])
    for loc, lines in results.items():
        assert {"shared", "shared-465"} == {line["probe"] for line in lines}
        assert all(line["outcome"] == "delivered" for line in lines), lines
        assert all(line["message_id"].startswith(f"<mp.{loc}.") for line in lines), lines
    left = " ".join(_subjects_left(env, user))
    assert stale["fra"] not in left
    assert stale["ams"] not in left
    assert stale["nyc"] in left  # a third prober's: not ours to sweep, in either location
    assert legacy in left  # the default location's (an upgraded prober without a location still owns it)
