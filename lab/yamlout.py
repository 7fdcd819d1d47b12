"""A tiny YAML emitter for plain data (dict, list, str, int, float, bool, None).

Strings are emitted as JSON strings, which YAML reads as double-quoted scalars, so nothing needs
PyYAML (the lab runs on the system python3 before any venv exists).
"""

from __future__ import annotations

import json
from typing import Any

Data = dict[str, Any] | list[Any] | str | int | float | bool | None


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"cannot emit {type(value).__name__} as YAML")


def _flow(value: Any) -> str:
    """Short lists of scalars stay on one line: [a, b]."""
    return "[" + ", ".join(_scalar(v) for v in value) + "]"


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            nested_list = isinstance(item, list) and item and all(isinstance(v, dict) for v in item)
            if (isinstance(item, dict) and item) or nested_list:
                out.append(f"{pad}{key}:")
                _emit(item, indent + 1, out)
            elif isinstance(item, list):
                out.append(f"{pad}{key}: {_flow(item)}")
            elif isinstance(item, dict):
                out.append(f"{pad}{key}: {{}}")
            else:
                out.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            sub: list[str] = []
            _emit(item, indent + 1, sub)
            first = sub[0].lstrip()
            out.append(f"{pad}- {first}")
            out.extend(sub[1:])
    else:
        out.append(pad + _scalar(value))


def dump(data: dict[str, Any], header: str = "") -> str:
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    _emit(data, 0, out)
    return "\n".join(out) + "\n"
