"""The HTTP protocol `mobilend serve` runs: uvicorn's h11 protocol with Nagle switched off.

With `--workers` above 1 uvicorn binds the listening socket itself (`socket.socket(family)`,
protocol number 0), and asyncio only sets TCP_NODELAY on accepted sockets whose protocol
number is IPPROTO_TCP. Without it a response written in two parts (headers, then body) waits
for the client's delayed ACK: about 40 ms added to every request. This protocol sets the
option on every TCP connection it is given, whatever created the listening socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
