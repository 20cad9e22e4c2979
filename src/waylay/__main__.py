"""`python -m waylay` is the `waylay` command."""

from waylay.cli import main

raise SystemExit(main())
