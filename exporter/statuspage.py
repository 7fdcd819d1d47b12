"""Render the status page (``/``) from the features' :class:`exporter.status.StatusSection` data.

One self-contained HTML document: inline CSS, no script, no external asset (it must work on an
air-gapped mail host and behind the same basic auth as /metrics). Every string that reaches the page
goes through :func:`_e` (``html.escape`` with quotes): section data comes from log lines, server
replies and config names, and a hostile value must stay text.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from mailpulse.exporter.status import Cell, State, StatusSection, Table, worst

REFRESH_SECONDS = 30

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2330;background:#f6f7f9}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .3em}
header p,.note,caption{color:#5a6270}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.5em}
nav a,table{background:#fff;border:1px solid #d5d9e0;border-radius:4px}
nav a{display:inline-block;padding:.25em .6em;text-decoration:none;color:inherit}
table{border-collapse:collapse;margin:.4em 0 1em;max-width:100%}
caption{text-align:left;padding:.2em 0;caption-side:top}
th,td{padding:.3em .6em;border-bottom:1px solid #e4e7ec;text-align:left;vertical-align:top;white-space:nowrap}
td:last-child,.wrap td{white-space:normal}.wrap td{overflow-wrap:normal}
th{background:#eef0f4;font-weight:600}
td{max-width:40em;overflow-wrap:anywhere}
.ok{background:#e3f4e6;color:#175d25}.warn{background:#fff1cc;color:#6b4e00}
.fail{background:#fbe0e0;color:#8a1c1c}.unknown{background:#eceef2;color:#4a505c}
.badge{border-radius:3px;padding:0 .4em;font-size:.85em;font-weight:600;text-transform:uppercase}
footer{margin-top:2em;color:#5a6270;font-size:.9em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(state: State | None) -> str:
    if state is None:
        return ""
    return f' <span class="badge {_e(state.value)}">{_e(state.value)}</span>'


def _cell(cell: Cell, tag: str = "td") -> str:
    if cell.state is None:
        return f"<{tag}>{_e(cell.text)}</{tag}>"
    # the state is also in the title: colour is not the only carrier of the judgement
    return f'<{tag} class="{_e(cell.state.value)}" title="{_e(cell.state.value)}">{_e(cell.text)}</{tag}>'


def _table(table: Table) -> str:
    if not table.rows:
        title = f"<p>{_e(table.caption)}</p>" if table.caption else ""
        return f'{title}<p class="note">{_e(table.empty)}</p>'
    caption = f"<caption>{_e(table.caption)}</caption>" if table.caption else ""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in table.rows)
    wrap = ' class="wrap"' if table.wrap else ""
    return f"<table{wrap}>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(index: int, section: StatusSection) -> str:
    note = f'<p class="note">{_e(section.note)}</p>' if section.note else ""
    tables = "".join(_table(t) for t in section.tables)
    return f'<section id="s{index}"><h2>{_e(section.title)}{_badge(section.state)}</h2>{note}{tables}</section>'


def render(sections: Sequence[StatusSection], *, version: str, now: float | None = None) -> bytes:
    """The whole page as UTF-8 bytes."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    overall = worst([s.state for s in sections])
    nav = "".join(f'<li><a href="#s{i}">{_e(s.title)}{_badge(s.state)}</a></li>' for i, s in enumerate(sections))
    body = "".join(_section(i, s) for i, s in enumerate(sections))
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>mailpulse status</title><style>{_CSS}</style></head><body>"
        f"<header><h1>mailpulse status{_badge(overall)}</h1>"
        f"<p>{_e(stamp)} · mailpulse {_e(version)} · refreshes every {REFRESH_SECONDS} s · "
        '<a href="/metrics">/metrics</a> · <a href="/health">/health</a></p></header>'
        f'<nav aria-label="sections"><ul>{nav}</ul></nav><main>{body}</main>'
        "<footer>What each section shows: docs/status-page.md. Alerts and history live in Prometheus.</footer>"
        "</body></html>\n"
    )
    return page.encode("utf-8")
