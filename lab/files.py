"""Write generated files only when their content changes.

Postfix refuses to use files modified within the last second ("pausing to let <file> cool down",
about 2 s per command), so changed files are back-dated by 10 s and unchanged ones never touched;
an unchanged file also keeps the daemons from being reloaded on a repeated `up`.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileSpec:
    """One generated file with its owner and mode."""

    path: Path
    content: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"


def _ids(owner: str, group: str) -> tuple[int, int]:
    return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid


def ensure_dir(path: Path, mode: int = 0o755, owner: str = "root", group: str = "root") -> Path:
    """Create `path` (and parents) and set its owner and mode."""
    path.mkdir(parents=True, exist_ok=True)
    uid, gid = _ids(owner, group)
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


def write(spec: FileSpec) -> bool:
    """Write one file if its content differs; fix owner/mode either way. Return True if written."""
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    data = spec.content.encode()
    changed = not spec.path.exists() or spec.path.read_bytes() != data
    uid, gid = _ids(spec.owner, spec.group)
    if changed:
        tmp = spec.path.with_name(f".{spec.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        past = time.time() - 10
        os.utime(tmp, (past, past))
        os.chown(tmp, uid, gid)
        tmp.chmod(spec.mode)
        tmp.replace(spec.path)
    else:
        os.chown(spec.path, uid, gid)
        spec.path.chmod(spec.mode)
    return changed


def write_all(specs: Iterable[FileSpec]) -> list[Path]:
    """Write every spec; return the paths that changed."""
    return [s.path for s in specs if write(s)]


def digest(paths: Iterable[Path]) -> str:
    """A content hash over files (missing files count as empty): tells a daemon's config changed."""
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p).encode())
        h.update(p.read_bytes() if p.is_file() else b"")
    return h.hexdigest()
