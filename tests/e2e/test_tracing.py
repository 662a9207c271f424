"""A trace started by the caller follows the request through the gateway, the service, the
outbox and onto the event in NATS."""

import secrets

import nats

from tests.conftest import auth, eventually


async def test_the_callers_trace_reaches_the_event_on_the_bus(gateway, tokens, env):
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    created = await gateway.post(
        "/api/live/streams",
        json={"title": "Traced"},
        headers={**auth(tokens["admin"]), "traceparent": traceparent},
    )
    assert created.status_code == 201
    stream_id = created.json()["id"]

    nc = await nats.connect(env["nats_url"])
    try:
        js = nc.jetstream()

        async def event():
            try:
                return await js.get_last_msg(
                    env["jetstream_stream"], f"{env['subject_root']}.{stream_id}.stream.created"
                )
            except nats.js.errors.NotFoundError:
                return None

        message = await eventually(event)
        assert message.headers["traceparent"].split("-")[1] == trace_id
        assert message.headers["Nats-Msg-Id"]
    finally:
        await nc.close()
