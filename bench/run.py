#!/usr/bin/env python3
"""``make bench``: waylay, mitmdump and no proxy side by side (see docs/performance.md).

A script so that ``bench/run.py --smoke`` works from any directory without installing
anything; the work is in the ``bench`` package beside it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
