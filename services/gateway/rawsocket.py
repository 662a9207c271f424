"""Writing pre-built websocket frames straight to a connection's transport.

A server-to-client frame is not masked, so the bytes of one event's frame are the same for every
viewer: the fan-out builds them once and hands each socket the concatenation of whatever frames
are due, in one `transport.write` (one system call) instead of one per frame.

`FanoutWebSocketProtocol` is uvicorn's websocket protocol plus a `RawSocket` in the ASGI scope's
extensions; the handshake, reads, pings and close still go through uvicorn.
"""

import asyncio
import contextlib
import socket

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Close, Frame, Opcode

EXTENSION = "vitrine.raw_socket"


def text_frame(payload: bytes) -> bytes:
    """The wire bytes of one unmasked text frame."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


def close_frame(code: int, reason: str) -> bytes:
    return Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=False)


class RawSocket:
    """A viewer's connection, as the fan-out sees it.

    Frames wait here, whole, while the transport is above its high-water mark (the kernel is not
    taking more), rather than piling up in the transport's buffer behind which a close frame
    would have to queue: a socket that falls behind is dropped at a frame boundary, its 1013
    close frame goes out right behind the little the transport and the (small) kernel buffer
    hold, and a peer that does not read it within the grace is aborted, which frees its buffers.
    """

    __slots__ = ("_protocol", "_waiting", "_waiting_bytes", "closed")

    def __init__(self, protocol: "FanoutWebSocketProtocol") -> None:
        self._protocol = protocol
        self._waiting: list[bytes] = []
        self._waiting_bytes = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self._waiting or not self._protocol.writable.is_set():
            self._waiting.append(data)
            self._waiting_bytes += len(data)
            return
        self._protocol.transport.write(data)

    def flush(self) -> None:
        """The transport drained below its low-water mark: what waited goes in one write."""
        if self.closed or not self._waiting:
            return
        data = b"".join(self._waiting)
        self._waiting.clear()
        self._waiting_bytes = 0
        self._protocol.transport.write(data)

    def buffered(self) -> int:
        """Bytes not yet taken by the kernel: this socket's send queue."""
        return self._waiting_bytes + self._protocol.transport.get_write_buffer_size()

    def drop(self, code: int, reason: str, *, grace_s: float = 2.0) -> None:
        """Close with `code` at once, the frames still waiting here left out (the viewer resumes
        with since=); abort if the peer has not taken the close frame in time."""
        if self.closed:
            return
        self.closed = True
        self._waiting.clear()
        self._waiting_bytes = 0
        transport = self._protocol.transport
        self._protocol.close_sent = True
        transport.write(close_frame(code, reason))
        asyncio.get_running_loop().call_later(grace_s, transport.abort)

    @property
    def is_closing(self) -> bool:
        return self.closed or self._protocol.transport.is_closing()


class FanoutWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websocket protocol exposing a `RawSocket` to the app.

    Subclassed rather than wrapped because only the protocol holds the transport: the fan-out
    writes pre-built frames to it, one system call per socket per burst, which is where the
    gateway's throughput comes from (README, Benchmarks). It relies on uvicorn's `transport`,
    `close_sent`, `writable`, `handle_connect` and `resume_writing` (uvicorn ≥ 0.35;
    tests/unit/test_rawsocket.py fails if they change).
    """

    raw_socket: RawSocket | None = None
    send_buffer_bytes = 0  # the kernel's send buffer per socket (0: the kernel's own)

    @classmethod
    def configured(cls, *, send_buffer_bytes: int) -> type["FanoutWebSocketProtocol"]:
        """The protocol class uvicorn is given, with the gateway's settings."""
        return type(cls.__name__, (cls,), {"send_buffer_bytes": send_buffer_bytes})

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if self.send_buffer_bytes and sock is not None:
            # A small kernel buffer: what a peer has not read stays here, where it can be
            # dropped at a frame boundary, instead of in the kernel for tens of seconds.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)

    def handle_connect(self, event) -> None:  # type: ignore[no-untyped-def]
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            self.raw_socket = RawSocket(self)
            scope["extensions"][EXTENSION] = self.raw_socket

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.raw_socket is not None:
            self.raw_socket.flush()
