"""A person's address and a link's token never reach a trace: the request span's URL carries
the parameters' names, not their values."""

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chassis.telemetry import instrument, redacted_query

TOKEN = "AbCdEfGhIjKlMnOpQrStUw.ZyXwVuTsRqPoNmLkJiHgFw"  # an unsubscribe link's shape


def test_private_values_are_replaced_and_the_rest_kept() -> None:
    assert redacted_query("email=ann%40example.com&limit=5&token=abc.def") == (
        "email=REDACTED&limit=5&token=REDACTED"
    )
    assert redacted_query("%65mail=ann%40example.com") == "email=REDACTED"  # spelt otherwise


async def test_a_gdpr_request_s_address_is_not_in_its_span() -> None:
    exported = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the first service of the process sets it
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    app = FastAPI()

    @app.get("/api/live/reminders")
    async def export(email: str, limit: int = 1) -> dict[str, int]:
        return {"limit": limit}

    @app.delete("/api/live/reminders/{token}")
    async def unsubscribe(token: str) -> dict[str, int]:
        return {}

    instrument(app, "telemetry-test")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/api/live/reminders?%65mail=ann.private%40example.com&limit=3")
        gone = await client.delete(f"/api/live/reminders/{TOKEN}")
    assert answer.json() == {"limit": 3} and gone.status_code == 200
    spans = exported.get_finished_spans()
    assert spans, "the request was traced"
    seen = " ".join(str(value) for span in spans for value in (span.attributes or {}).values())
    assert "ann.private" not in seen and TOKEN not in seen
    assert "email=REDACTED" in seen and "limit=3" in seen
