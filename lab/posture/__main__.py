"""``python -m lab.posture DIR [--bench-domains N]``: run the posture lab until stopped; writes the
``posture:`` config for it to DIR/posture.yaml and prints ``ready`` on stdout."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import yaml

from lab.posture import PostureLab


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.posture")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--bench-domains", type=int, default=0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lab = PostureLab.up(args.dir, args.bench_domains)
    try:
        (args.dir / "posture.yaml").write_text(yaml.safe_dump({"posture": lab.config()}, sort_keys=False))
        print("ready", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
