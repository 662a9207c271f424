"""Writing pre-built websocket frames straight to a connection's transport.

A server-to-client frame is not masked, so the bytes of one event's frame are the same for every
viewer: the fan-out builds them once and hands each socket the concatenation of whatever frames
are due, in one `transport.write` (one system call) instead of one per frame.

`FanoutWebSocketProtocol` is uvicorn's websocket protocol plus a `RawSocket` in the ASGI scope's
extensions; the handshake, reads, pings and close still go through uvicorn.
"""

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Close, Frame, Opcode

EXTENSION = "vitrine.raw_socket"


def text_frame(payload: bytes) -> bytes:
    """The wire bytes of one unmasked text frame."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


def close_frame(code: int, reason: str) -> bytes:
    return Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=False)


class RawSocket:
    """A viewer's connection, as the fan-out sees it."""

    __slots__ = ("_protocol", "closed")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self._protocol.transport.write(data)

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel: this socket's send queue."""
        return self._protocol.transport.get_write_buffer_size()

    def drop(self, code: int, reason: str, *, grace_s: float = 2.0) -> None:
        """Close with `code` after what is queued; abort if the peer does not read it in time."""
        if self.closed:
            return
        self.closed = True
        transport = self._protocol.transport
        self._protocol.close_sent = True
        transport.write(close_frame(code, reason))
        asyncio.get_running_loop().call_later(grace_s, transport.abort)

    @property
    def is_closing(self) -> bool:
        return self.closed or self._protocol.transport.is_closing()


class FanoutWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websocket protocol exposing a `RawSocket` to the app."""

    def handle_connect(self, event) -> None:  # type: ignore[no-untyped-def]
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = RawSocket(self)
