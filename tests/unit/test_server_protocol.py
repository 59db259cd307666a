"""`mobilend serve` switches Nagle off on every connection, also when uvicorn binds the socket.

With --workers > 1 uvicorn binds `socket.socket(family)` itself (protocol number 0) and asyncio
then leaves TCP_NODELAY off, which adds a delayed-ACK wait (about 40 ms) to every response.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from mobilend.api.server import NoDelayH11Protocol


async def _app(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _serve_one(protocol: type[H11Protocol]) -> tuple[int, bytes]:
    """Serve one GET on a socket bound the way uvicorn binds it for several workers."""
    listener = socket.socket(socket.AF_INET)
    assert listener.proto == 0
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    config = Config(app=_app, http=protocol, log_level="warning", access_log=False)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: protocol(config, state, {}), sock=listener)
    reader, writer = await asyncio.open_connection(*listener.getsockname())
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    (conn,) = state.connections
    nodelay = conn.transport.get_extra_info("socket").getsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY
    )
    writer.close()
    server.close()
    return nodelay, head


def test_plain_h11_leaves_nagle_on_for_such_a_socket() -> None:
    nodelay, head = asyncio.run(_serve_one(H11Protocol))
    assert head.startswith(b"HTTP/1.1 200")
    assert nodelay == 0  # the problem the protocol below exists for


def test_mobilend_protocol_sets_nodelay() -> None:
    nodelay, head = asyncio.run(_serve_one(NoDelayH11Protocol))
    assert head.startswith(b"HTTP/1.1 200")
    assert nodelay != 0
