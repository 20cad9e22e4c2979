"""waylay: an intercepting HTTP/HTTPS proxy.

The names an addon script needs are here at the top, as mitmproxy's are in `mitmproxy.http`:
``from waylay import Flow, Response``. They are imported on first use (PEP 562), so that the
commands that never run a script (`waylay flows`, `waylay har`) do not pay at start for the
flow model's imports (the content codings, the TLS parser). docs/addons.md describes them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ClientHelloData",
    "Error",
    "Filter",
    "FilterError",
    "Flow",
    "Headers",
    "Loader",
    "Request",
    "Response",
    "TcpMessage",
    "TlsDetails",
    "__version__",
    "parse_filter",
    "passive",
]

# Each exported name, and the module it is defined in.
_EXPORTS = {
    "Client": "waylay.flow",
    "ClientHelloData": "waylay.flow",
    "Error": "waylay.flow",
    "Flow": "waylay.flow",
    "Request": "waylay.flow",
    "Response": "waylay.flow",
    "TcpMessage": "waylay.flow",
    "TlsDetails": "waylay.flow",
    "Headers": "waylay.headers",
    "Loader": "waylay.addons.options",
    "passive": "waylay.hooks",
    "Filter": "waylay.filters",
    "FilterError": "waylay.filters",
    "parse_filter": "waylay.filters",
}

if TYPE_CHECKING:
    from waylay.addons.options import Loader
    from waylay.filters import Filter, FilterError, parse_filter
    from waylay.flow import (
        Client,
        ClientHelloData,
        Error,
        Flow,
        Request,
        Response,
        TcpMessage,
        TlsDetails,
    )
    from waylay.headers import Headers
    from waylay.hooks import passive


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'waylay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
