"""``python -m lab.posture DIR``: run the posture lab until Ctrl-C and print a config for it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from lab.posture import PostureLab


def main() -> int:
    lab = PostureLab.up(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/posture-lab"))
    try:
        print(yaml.safe_dump({"posture": lab.config()}, sort_keys=False))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        lab.down()


if __name__ == "__main__":
    sys.exit(main())
