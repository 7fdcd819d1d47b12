"""Which files under a path are reports (by name: only to skip the other files of a directory; the content
decides what a file is)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

SUFFIXES = (".xml", ".xml.gz", ".gz", ".zip", ".json", ".json.gz", ".eml")


def report_files(paths: Sequence[str]) -> Iterator[str]:
    """Each path, and the report files under each directory (recursively, sorted): ``.xml``, ``.xml.gz``,
    ``.zip``, ``.json``, ``.json.gz``, ``.eml``. A path named explicitly is read whatever its name."""
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name.lower().endswith(SUFFIXES):
                    yield os.path.join(root, name)
