"""The baseline: the fan-out most of us would write first (DESIGN.md §6), to measure against.

A FastAPI app on plain uvicorn and its default websocket protocol. Like the real gateway it holds
one JetStream subscription per live and builds each event's frame text once — but then it awaits
`ws.send_text(text)` socket after socket: one frame, one write, one system call per viewer, and no
bound on what waits. Run with `python -m bench.naive_gateway --port <port>` and the services' env.
"""

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import nats
import orjson
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from chassis.settings import ServiceSettings
from contracts import event_type_of, stream_subject

HIDDEN_EVENT_PREFIXES = ("viewer.",)  # as the real gateway


def create_app(settings: ServiceSettings) -> FastAPI:
    rooms: dict[str, set[WebSocket]] = {}
    subscribing = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.nc = await nats.connect(settings.nats_url, name="vitrine-naive-gateway")
        app.state.js = app.state.nc.jetstream()
        yield
        await app.state.nc.close()

    app = FastAPI(lifespan=lifespan)

    async def subscribe(stream_id: str) -> None:
        """The live's one subscription: new events only, each sent to every socket in turn."""

        async def on_event(msg: Msg) -> None:
            if event_type_of(msg.subject, root=settings.subject_root).startswith(
                HIDDEN_EVENT_PREFIXES
            ):
                return
            envelope = orjson.loads(msg.data)
            text = orjson.dumps(
                {
                    "seq": msg.metadata.sequence.stream,
                    "type": envelope["type"],
                    "stream_id": envelope["stream_id"],
                    "occurred_at": envelope["occurred_at"],
                    "data": envelope["data"],
                }
            ).decode()
            for ws in list(rooms[stream_id]):
                try:
                    await ws.send_text(text)
                except Exception:  # closed meanwhile: forget it
                    rooms[stream_id].discard(ws)

        await app.state.js.subscribe(
            stream_subject(stream_id, root=settings.subject_root),
            stream=settings.jetstream_stream,
            cb=on_event,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.websocket("/ws/live/{stream_id}")
    async def watch_live(websocket: WebSocket, stream_id: str) -> None:
        await websocket.accept()
        async with subscribing:
            if stream_id not in rooms:
                rooms[stream_id] = set()
                await subscribe(stream_id)
        # The clients wait for a first frame, as with the real gateway's snapshot.
        await websocket.send_text(orjson.dumps({"seq": 0, "type": "snapshot"}).decode())
        rooms[stream_id].add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            rooms[stream_id].discard(websocket)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(ServiceSettings()),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
