"""``python -m mailpulse.docsgen [--check]``: docs/metrics.md, the key tables of docs/config.md and the
features table of docs/architecture.md, for every feature mailpulse ships."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mailpulse import features
from mailpulse.exporter import docsgen


def main(argv: Sequence[str] | None = None) -> int:
    return docsgen.main(argv, features())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
