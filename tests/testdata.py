"""Where the bytes from real clients live: a copy of the workplace's shared testdata.

The captures (ClientHellos, HAR exports) are kept in the repository so the suite runs on a
clean clone anywhere; tests/data/README.md says what each file is.
"""

from __future__ import annotations

from pathlib import Path

TESTDATA = Path(__file__).resolve().parent / "data"
CLIENTHELLOS = TESTDATA / "clienthello"
HAR_EXPORTS = TESTDATA / "har"
