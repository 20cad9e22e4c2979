"""What every connection needs to know, passed to it rather than imported (no globals)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from waylay.hooks import HookTable
from waylay.hosts import Resolver
from waylay.options import Options

if TYPE_CHECKING:
    from waylay.connection import ClientConnection


@dataclass(slots=True)
class ProxyContext:
    options: Options
    resolver: Resolver
    hooks: HookTable = field(default_factory=HookTable)
    connections: set[ClientConnection] = field(default_factory=set)
    # Client transports closing gently after their last response (connection._LingeringClose).
    lingering: set[asyncio.Transport] = field(default_factory=set)
