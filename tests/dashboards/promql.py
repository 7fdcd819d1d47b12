"""Offline PromQL checks shared by the dashboard and alert tests: which metrics an expression uses, with which
label matchers, inside which function, and whether its divisions are guarded.

Not a PromQL parser (promtool and the loopback Prometheus check the syntax); a tokenizer that knows enough of
the grammar to find series selectors: an identifier that is not a keyword, not followed by ``(`` and not
inside ``{}``, ``[]`` or a ``by (...)``-style label list. The metric reference is docs/metrics.md, generated
from the family declarations, so a metric that is not documented does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
METRICS_MD = REPO / "docs" / "metrics.md"
ALERTS_DIR = REPO / "alerts"
RUNBOOKS_DIR = REPO / "docs" / "runbooks"

# What the loopback Prometheus test and the offline syntax check put in place of Grafana's variables.
GRAFANA_SUBSTITUTIONS = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "30s"}

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"}
)
# Series Prometheus itself creates for every target.
BUILTIN_SERIES = {"up": ("job", "instance")}

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>(?<![\w:])\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![\w:]))
  | (?P<number>(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)(?![\w:]))
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%^<>=(){},])
  | (?P<space>\s+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Selector:
    """One series selector in an expression."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)
    range: str | None  # "[5m]" when followed by a range
    function: str | None  # innermost function call around it (rate, histogram_quantile, ...)

    @property
    def labels(self) -> set[str]:
        return {label for label, _, _ in self.matchers}


def tokens(expr: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot tokenize {expr[pos : pos + 30]!r} in {expr!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(Token(kind, m.group()))
    return out


def _unquote(text: str) -> str:
    return text[1:-1]


def selectors(expr: str) -> list[Selector]:
    """Every series selector of ``expr`` (Grafana variables must be substituted first)."""
    toks = tokens(expr)
    found: list[Selector] = []
    # One entry per open parenthesis: the function it calls, or None for grouping/label lists.
    stack: list[str | None] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if tok.kind == "ident" and tok.text in LABEL_LIST_KEYWORDS and nxt is not None and nxt.text == "(":
            i = _skip_group(toks, i + 1)  # by (job, instance): label names, not metrics
            continue
        if tok.kind == "ident" and tok.text in AGGREGATIONS and nxt is not None and nxt.text in ("by", "without"):
            i = _skip_group(toks, i + 2)  # sum by (probe) (...): the call's "(" follows the label list
            nxt = toks[i] if i < len(toks) else None
            if nxt is None or nxt.text != "(":
                raise ValueError(f"{tok.text} by (...) without an argument in {expr!r}")
            stack.append(tok.text)
            i += 1
            continue
        if tok.kind == "ident" and nxt is not None and nxt.text == "(":
            stack.append(tok.text)
            i += 2
            continue
        if tok.text == "(":
            stack.append(None)
        elif tok.text == ")":
            stack.pop()
        elif tok.kind == "ident" and tok.text not in KEYWORDS and tok.text.lower() not in ("inf", "nan"):
            i, selector = _selector(toks, i, stack)
            found.append(selector)
            continue
        elif tok.text == "{":  # a selector without a metric name: {__name__=...}; not used here
            raise ValueError(f"selector without a metric name in {expr!r}")
        i += 1
    return found


def _skip_group(toks: list[Token], i: int) -> int:
    """Index after the parenthesised group starting at toks[i] == "("."""
    depth = 0
    while i < len(toks):
        if toks[i].text == "(":
            depth += 1
        elif toks[i].text == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced parentheses")


def _selector(toks: list[Token], i: int, stack: list[str | None]) -> tuple[int, Selector]:
    metric = toks[i].text
    i += 1
    matchers: list[tuple[str, str, str]] = []
    if i < len(toks) and toks[i].text == "{":
        i += 1
        while toks[i].text != "}":
            if toks[i].text == ",":
                i += 1
                continue
            label, op, value = toks[i].text, toks[i + 1].text, toks[i + 2]
            if value.kind != "string":
                raise ValueError(f"matcher {label}{op}{value.text} is not a string")
            matchers.append((label, op, _unquote(value.text)))
            i += 3
        i += 1
    rng = None
    if i < len(toks) and toks[i].kind == "range":
        rng = toks[i].text
        i += 1
    function = next((f for f in reversed(stack) if f is not None), None) if stack else None
    innermost = stack[-1] if stack else None
    # A range selector is the direct argument of its function; report that one.
    return i, Selector(metric, tuple(matchers), rng, innermost if rng else function)


def unguarded_divisions(expr: str) -> list[str]:
    """Divisions whose right-hand side is not filtered by a comparison (``/ (x > 0)``, ``/ (x >= 20)``).

    A filtered denominator drops the series where it is 0, so the division yields no point instead of
    NaN or Inf. Accepted forms: a parenthesised expression or a function call with a comparison at its
    top level, a number, or ``(1 - mailpulse:probe_slo_objective:ratio...)`` (an objective below 1).
    """
    toks = tokens(expr)
    problems = []
    for i, tok in enumerate(toks):
        if tok.text != "/":
            continue
        j = i + 1
        while toks[j].kind == "ident" and toks[j].text in LABEL_LIST_KEYWORDS:
            j = _skip_group(toks, j + 1) if toks[j + 1].text == "(" else j + 1
        if toks[j].kind == "number":
            continue
        if toks[j].kind == "ident" and toks[j + 1].text == "(":
            j += 1  # a function call such as scalar(...): look inside it
        if toks[j].text != "(":
            problems.append(" ".join(t.text for t in toks[i : i + 4]))
            continue
        end = _skip_group(toks, j)
        inner = toks[j + 1 : end - 1]
        if _top_level_comparison(inner) or _is_budget(inner):
            continue
        problems.append(" ".join(t.text for t in toks[i:end]))
    return problems


def _top_level_comparison(toks: list[Token]) -> bool:
    depth = 0
    for tok in toks:
        if tok.text in ("(", "{"):
            depth += 1
        elif tok.text in (")", "}"):
            depth -= 1
        elif depth == 0 and tok.text in (">", ">=", "!=", "=="):
            return True
    return False


def _is_budget(toks: list[Token]) -> bool:
    return (
        len(toks) >= 3
        and toks[0].text == "1"
        and toks[1].text == "-"
        and toks[2].text.startswith("mailpulse:probe_slo_objective:ratio")
    )


def substitute_grafana(expr: str) -> str:
    """Grafana's built-in intervals by fixed values, template variables (``$job``, ``${job}``) by ``.*``."""
    for var, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


# --- the metrics reference ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    name: str
    kind: str  # counter, gauge, histogram (for _bucket/_sum/_count), builtin, recording
    labels: tuple[str, ...]


_ROW = re.compile(
    r"^\| `(?P<name>[a-z_:][a-z0-9_:]*)` \| (?P<type>\w+)[^|]* \| (?P<labels>[^|]*) \| (?P<meaning>.*) \|$"
)


def reference(path: Path = METRICS_MD) -> dict[str, Series]:
    """Every series name mailpulse exports, from docs/metrics.md: histograms as _bucket/_sum/_count."""
    out: dict[str, Series] = {}
    for line in path.read_text().splitlines():
        m = _ROW.match(line)
        if m is None:
            continue
        name, kind = m["name"], m["type"]
        labels = tuple(re.findall(r"`(\w+)`", m["labels"]))
        if kind == "histogram":
            out[f"{name}_bucket"] = Series(f"{name}_bucket", kind, (*labels, "le"))
            # A histogram whose buckets go below zero has no _sum/_count (OpenMetrics); its row says so.
            if "No _sum and _count" not in m["meaning"]:
                out[f"{name}_sum"] = Series(f"{name}_sum", kind, labels)
                out[f"{name}_count"] = Series(f"{name}_count", kind, labels)
        else:
            out[name] = Series(name, kind, labels)
    return out


def iter_names(exprs: list[str]) -> Iterator[str]:
    for expr in exprs:
        for sel in selectors(expr):
            yield sel.metric
