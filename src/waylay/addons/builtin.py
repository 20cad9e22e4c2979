"""The built-in rules of the command line (--block, --map-remote, --map-local, --modify-body,
--modify-headers, --intercept), as addons on the hook API scripts use.

`builtin_addons` is where they join the chain: after `waylay dump`'s dumper, before the
scripts' addons. None is written yet.
"""

from __future__ import annotations

from waylay.options import Options


def builtin_addons(options: Options) -> list[object]:
    """The addons the options ask for, in the order their hooks run."""
    return []
