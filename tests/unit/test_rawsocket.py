"""The gateway writes frames straight to uvicorn's websocket protocol (gateway/rawsocket.py), and
so relies on parts of it that are not a public API: this fails when an upgrade changes them."""

import asyncio
import inspect

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from services.gateway.rawsocket import FanoutWebSocketProtocol, RawSocket


async def test_the_parts_of_uvicorns_protocol_the_gateway_relies_on_are_there():
    config = uvicorn.Config(app=lambda scope, receive, send: None, ws_per_message_deflate=False)
    config.load()
    protocol = FanoutWebSocketProtocol.configured(send_buffer_bytes=16384)(
        config=config, server_state=ServerState(), app_state={}
    )
    # Attributes it reads and writes.
    for name in ("transport", "close_sent", "writable"):
        assert hasattr(protocol, name), name
    assert isinstance(protocol.writable, asyncio.Event)
    assert protocol.close_sent is False
    # Methods it extends, called by uvicorn and asyncio with these arguments.
    for name, parameters in {
        "connection_made": ["transport"],
        "handle_connect": ["event"],
        "resume_writing": [],
    }.items():
        method = getattr(WebSocketsSansIOProtocol, name)
        assert list(inspect.signature(method).parameters)[1:] == parameters, name
    assert protocol.send_buffer_bytes == 16384
    assert protocol.raw_socket is None  # until the handshake
    assert set(RawSocket.__slots__) >= {"closed"}
