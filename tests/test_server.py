"""The listening socket: what accepted connections inherit from it."""

from __future__ import annotations

import asyncio
import socket

from waylay.options import parse_listen
from waylay.server import listening_socket


def test_accepted_connections_get_tcp_nodelay() -> None:
    # asyncio sets TCP_NODELAY only on sockets whose proto says TCP; a listening socket made
    # with proto 0 passes 0 on, and Nagle then holds a response's second write back 40 ms.
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[asyncio.BaseTransport] = loop.create_future()

        class Server(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.set_result(transport)

        sock = listening_socket(parse_listen("127.0.0.1:0"))
        port = sock.getsockname()[1]
        server = await loop.create_server(Server, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        transport = await accepted
        nodelay: int = transport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY
        )
        transport.close()
        writer.close()
        server.close()
        await server.wait_closed()
        return nodelay

    assert asyncio.run(scenario()) != 0
