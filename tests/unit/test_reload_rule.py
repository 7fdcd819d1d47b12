"""The one reload rule, held by every feature: counters survive, what left the config leaves /metrics,
what changed restarts. Driven in-process through the daemon's own SIGHUP path (App._reload)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import yaml

from mailpulse import features, load_config
from mailpulse.exporter.app import App
from tests.helpers import free_port

QMGR = "Nov 24 16:58:17 mail postfix/qmgr[1]: {qid}: removed\n"


def write_config(path: Path, tmp: Path, sources: list[str], queue_command: str | None, domains: list[str]) -> None:
    data: dict[str, object] = {
        "state_dir": str(tmp / "state"),
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "sources": [
            {"name": name, "path": str(tmp / f"{name}.log"), "poll_interval": "0.05s", "start_at": "beginning"}
            for name in sources
        ],
        "rspamd": {"signing_domains": domains},
    }
    if queue_command is not None:
        data["postfix"] = {"queue": {"enabled": True, "command": queue_command, "interval": "1s"}}
    path.write_text(yaml.safe_dump(data))


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_counters_survive_removed_parts_leave_changed_parts_restart(tmp_path: Path) -> None:
    for name, n in (("a", 3), ("b", 2), ("c", 4)):
        (tmp_path / f"{name}.log").write_text("".join(QMGR.format(qid=f"{name.upper()}{i:05d}") for i in range(n)))
    config_path = tmp_path / "mailpulse.yaml"
    # /bin/false is a real postqueue that always fails: its error counter must not reset on reload
    write_config(config_path, tmp_path, ["a", "b"], "/bin/false", ["one.test"])
    app = App(load_config(str(config_path)), features())
    get = app.registry.get_sample_value
    runner = asyncio.create_task(app.run())
    try:
        await until(lambda: get("postfix_qmgr_messages_removed_total") == 5.0)
        await until(lambda: (get("mailpulse_postfix_queue_collect_errors_total", {"reason": "failed"}) or 0) >= 1)
        errors_before = get("mailpulse_postfix_queue_collect_errors_total", {"reason": "failed"}) or 0
        assert 1.0 == get("mailpulse_log_source_up", {"source": "b"})

        write_config(config_path, tmp_path, ["a", "c"], "/bin/false", ["two.test"])
        app._reload.set()  # what SIGHUP does
        await until(lambda: get("postfix_qmgr_messages_removed_total") == 9.0)  # a kept (3), b's 2 kept, c's 4 added
        # counters survive: the log counter, the queue's error counter
        assert (get("mailpulse_postfix_queue_collect_errors_total", {"reason": "failed"}) or 0) >= errors_before
        # what left the config leaves /metrics; what is new is there
        assert get("mailpulse_log_source_up", {"source": "b"}) is None
        assert get("mailpulse_log_lines_total", {"source": "b", "result": "parsed"}) is None
        assert 1.0 == get("mailpulse_log_source_up", {"source": "c"})
        # a kept source is not re-read from its start after the restart of its tailer
        assert 3.0 == get("mailpulse_log_lines_total", {"source": "a", "result": "parsed"})

        write_config(config_path, tmp_path, ["a", "c"], None, ["two.test"])
        app._reload.set()
        # the queue was switched off: its families leave /metrics
        await until(lambda: get("mailpulse_postfix_queue_up") is None)
        assert 1 == app.self_metrics.reload_ok
    finally:
        app.request_stop()
        assert 0 == await asyncio.wait_for(runner, 30)


async def test_a_reload_to_an_unusable_state_dir_keeps_the_running_config(tmp_path: Path) -> None:
    """A state_dir that cannot be created is refused like an invalid file: reload_successful 0, and the
    running sources go on counting."""
    (tmp_path / "a.log").write_text(QMGR.format(qid="A00000"))
    config_path = tmp_path / "mailpulse.yaml"
    write_config(config_path, tmp_path, ["a"], None, [])
    app = App(load_config(str(config_path)), features())
    get = app.registry.get_sample_value
    runner = asyncio.create_task(app.run())
    try:
        await until(lambda: get("postfix_qmgr_messages_removed_total") == 1.0)
        data = yaml.safe_load(config_path.read_text())
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        data["state_dir"] = str(blocker / "state")  # under a regular file: cannot be created, even by root
        config_path.write_text(yaml.safe_dump(data))
        app._reload.set()
        await until(lambda: get("mailpulse_config_last_reload_successful") == 0.0)
        with (tmp_path / "a.log").open("a") as fh:
            fh.write(QMGR.format(qid="A00001"))
        await until(lambda: get("postfix_qmgr_messages_removed_total") == 2.0)
    finally:
        app.request_stop()
        assert 0 == await asyncio.wait_for(runner, 30)
