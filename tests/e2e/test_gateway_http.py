"""The gateway's HTTP face: who may do what, what bad input gets, and outages that lose nothing."""

from datetime import timedelta

import pytest

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from tests.conftest import auth, eventually, every_page
from tests.support.viewer import WsViewer

CALLERS = ("anonymous", "user", "moderator", "admin")
JSON = {"content-type": "application/json"}


def headers_for(caller: str, tokens: dict) -> dict:
    return {} if caller == "anonymous" else auth(tokens[caller])


async def new_live(gateway, tokens, title="Matrix") -> str:
    answer = await gateway.post(
        "/api/live/streams", json={"title": title}, headers=auth(tokens["admin"])
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


ADMIN_ONLY = [
    ("post", "/api/live/streams", {"title": "x"}, 201),
    ("put", "/api/live/streams/{id}", {"title": "renamed"}, 200),
    ("post", "/api/live/streams/{id}/rotate-key", None, 200),
    ("post", "/api/live/streams/{id}/start", None, 200),
    ("post", "/api/live/streams/{id}/end", None, 200),
    ("delete", "/api/live/streams/{id}", None, 204),
    ("get", "/api/live/settings", None, 200),
    ("put", "/api/live/settings", {"platform": "nginx_rtmp"}, 200),
]


@pytest.mark.parametrize("caller", CALLERS)
async def test_admin_routes_answer_401_anonymous_403_signed_in_and_work_for_admins(
    gateway, tokens, caller
):
    live_id = await new_live(gateway, tokens)
    expected_denied = 401 if caller == "anonymous" else 403
    for method, path, body, ok in ADMIN_ONLY:
        answer = await gateway.request(
            method.upper(),
            path.format(id=live_id),
            json=body,
            headers=headers_for(caller, tokens),
        )
        expected = ok if caller == "admin" else expected_denied
        assert answer.status_code == expected, (method, path, answer.text)
        assert "detail" in answer.json() if answer.status_code >= 400 else True


@pytest.mark.parametrize("caller", CALLERS)
async def test_anyone_reads_scheduled_and_live_streams_but_only_admins_see_ended_ones(
    gateway, tokens, caller
):
    scheduled = await new_live(gateway, tokens, "Visible")
    ended = await new_live(gateway, tokens, "Finished")
    for action in ("start", "end"):
        await gateway.post(f"/api/live/streams/{ended}/{action}", headers=auth(tokens["admin"]))
    headers = headers_for(caller, tokens)
    listed = {s["id"] for s in await every_page(gateway, "/api/live/streams", headers=headers)}
    assert scheduled in listed
    assert (ended in listed) is (caller == "admin")
    one = await gateway.get(f"/api/live/streams/{scheduled}", headers=headers)
    assert one.status_code == 200
    assert one.json()["stream"]["id"] == scheduled
    assert set(one.json()) >= {
        "stream",
        "products",
        "featured_product",
        "pinned_messages",
        "viewers",
    }
    assert ("stream_key" in one.json()["stream"]) is (caller == "admin")
    hidden = await gateway.get(f"/api/live/streams/{ended}", headers=headers)
    assert hidden.status_code == (200 if caller == "admin" else 404)


async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(gateway, tokens):
    admin = auth(tokens["admin"])
    live_id = await new_live(gateway, tokens, "Untouched")
    before = await every_page(gateway, "/api/live/streams", headers=admin)
    attempts = [
        ("POST", "/api/live/streams", {"json": {"title": 42}}, 422),
        ("POST", "/api/live/streams", {"json": {"title": ""}}, 422),
        ("POST", "/api/live/streams", {"json": {"title": "x", "stream_key": "mine"}}, 422),
        ("POST", "/api/live/streams", {"json": {"title": "x", "scheduled_at": "tomorrow"}}, 422),
        ("POST", "/api/live/streams", {"content": b"{not json", "headers": JSON}, 422),
        ("POST", "/api/live/streams", {"content": b"x" * (5 * 1024 * 1024), "headers": JSON}, 413),
        ("PUT", f"/api/live/streams/{live_id}", {"json": {"title": None, "nope": 1}}, 422),
        ("PUT", "/api/live/streams/not-a-uuid", {"json": {"title": "x"}}, 422),
        ("GET", "/api/live/streams/not-a-uuid", {}, 422),
        ("GET", "/api/live/streams/00000000-0000-0000-0000-000000000000", {}, 404),
        ("POST", "/api/live/streams/00000000-0000-0000-0000-000000000000/start", {}, 404),
        ("POST", f"/api/live/streams/{live_id}/end", {}, 409),
        ("GET", "/api/live/streams?status=bogus", {}, 422),
    ]  # fmt: skip
    for method, path, options, expected in attempts:
        extra = options.pop("headers", {})
        answer = await gateway.request(method, path, headers={**admin, **extra}, **options)
        assert answer.status_code == expected, (method, path, answer.status_code, answer.text[:200])
        assert isinstance(answer.json()["detail"], str | list)
        assert "Traceback" not in answer.text
    after = await every_page(gateway, "/api/live/streams", headers=admin)
    assert after == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not.a.jwt",
        "Bearer " + issue_token(secret="another-secret-entirely-0123456789abcdef", user_id="u"),
        "Bearer "
        + issue_token(
            secret=INSECURE_JWT_SECRET, user_id="u", role="admin", ttl=timedelta(seconds=-60)
        ),
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
    ],
    ids=["malformed", "wrong-signature", "expired", "basic", "empty"],
)
async def test_a_bad_token_is_refused_with_401_even_on_public_routes(gateway, authorization):
    for method, path in (("GET", "/api/live/streams"), ("POST", "/api/live/streams")):
        answer = await gateway.request(
            method, path, headers={"Authorization": authorization}, json={"title": "x"}
        )
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["detail"]


async def test_writes_succeed_while_nats_is_away_and_their_events_arrive_when_it_returns(
    gateway, tokens, system, nats_proxy
):
    admin = auth(tokens["admin"])
    live_id = await new_live(gateway, tokens, "Outage")
    viewer = await WsViewer.open(system.url("gateway"), live_id)
    await viewer.next_of("snapshot")
    nats_proxy.cut()
    try:
        for title in ("During outage 1", "During outage 2"):
            answer = await gateway.put(
                f"/api/live/streams/{live_id}", json={"title": title}, headers=admin
            )
            assert answer.status_code == 200, answer.text
        assert await viewer.silent_for(1.5, ignoring=("viewers.updated",)), viewer.seen[-1]
    finally:
        nats_proxy.start()
    frames = [await viewer.next_of("stream.updated", timeout=30) for _ in range(2)]
    assert [f["data"]["stream"]["title"] for f in frames] == ["During outage 1", "During outage 2"]
    assert await viewer.silent_for(1.0, ignoring=("viewers.updated",))
    await viewer.close()


async def test_health_readiness_metrics_and_docs_are_served(gateway, system):
    assert (await gateway.get("/healthz")).json() == {"status": "ok"}
    ready = await eventually(lambda: _ready(gateway))
    assert ready["checks"] == {"nats": True, "redis": True}
    metrics = await gateway.get("/metrics")
    assert "vitrine_http_requests_total" in metrics.text
    assert (await gateway.get("/docs")).status_code == 200
    paths = (await gateway.get("/openapi.json")).json()["paths"]
    assert "/api/live/streams/{stream_id}/start" in paths


async def _ready(gateway):
    answer = await gateway.get("/readyz")
    return answer.json() if answer.status_code == 200 else None


async def test_nginx_rtmp_callbacks_reach_the_streams_service_through_the_gateway(gateway, tokens):
    from services.streams.settings import INSECURE_RTMP_CALLBACK_SECRET as secret

    admin = auth(tokens["admin"])
    live = (await gateway.post("/api/live/streams", json={"title": "OBS"}, headers=admin)).json()
    form = {"app": "live", "name": live["stream_key"]}
    refused = await gateway.post(
        f"/webhooks/nginx-rtmp/on_publish?secret={secret}", data={**form, "name": "live_wrong"}
    )
    assert refused.status_code == 403
    published = await gateway.post(f"/webhooks/nginx-rtmp/on_publish?secret={secret}", data=form)
    assert published.status_code == 302
    assert published.headers["location"] == live["playback_id"]
    assert (await gateway.get(f"/api/live/streams/{live['id']}")).json()["stream"][
        "status"
    ] == "live"
    # (What on_publish_done does — the reconnect grace, then the end — is in test_video_*.)
    assert (await gateway.post("/webhooks/unknown-source", data=form)).status_code == 404


async def test_text_the_database_cannot_hold_is_a_422_never_a_500(gateway, tokens):
    admin = auth(tokens["admin"])
    for method, path, body in (
        ("POST", "/api/live/streams", {"title": "Nul\x00here"}),
        ("GET", "/api/catalog/products?search=%00", None),
        ("POST", "/api/catalog/products", {"name": "A\x00", "price": "1", "currency": "EUR"}),
    ):
        answer = await gateway.request(method, path, json=body, headers=admin)
        assert answer.status_code == 422, (path, answer.text)


async def test_dot_segments_cannot_reach_routes_the_gateway_did_not_check(gateway, tokens):
    live = (await gateway.post("/api/live/streams", json={"title": "Dots"},
                               headers=auth(tokens["admin"]))).json()  # fmt: skip
    sneaky = f"/api/live/streams/{live['id']}/products/../../../../catalog/products"
    answer = await gateway.post(sneaky, json={"name": "x", "price": "1", "currency": "EUR"},
                                headers=auth(tokens["user"]))  # fmt: skip
    assert answer.status_code in (403, 404)
    listed = await gateway.get("/api/catalog/products", headers=auth(tokens["admin"]))
    assert all(p["name"] != "x" for p in listed.json()["items"])


async def test_the_gateway_serves_the_asyncapi_document_of_every_event(gateway, env):
    document = (await gateway.get("/asyncapi.json")).json()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    # The deployment's own subjects (the run's subject root), one channel per event type.
    assert f"{env['subject_root']}.{{stream_id}}.viewers.updated" in addresses
    assert len(addresses) == 24
