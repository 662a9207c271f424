"""Outbound webhooks end to end: lives and chat driven through the gateway, the events POSTed by
the webhooks service to a real local receiver that checks every signature with `standardwebhooks`
— through the receiver's failures and restarts of the webhooks service (one with a 2xx on its
way), each event arrives once and in the bus's order; an endpoint that keeps failing is disabled,
the admin told by e-mail, and enabled again.

A system of its own (streams, chat, webhooks, gateway; own schemas, stream, subjects and keys),
so that its retry schedule can be short and the other tests' events never reach its endpoints.
"""

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import nats
import pytest

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from tests.conftest import auth, eventually
from tests.support.webhook_receiver import Receiver, running_receiver
from vitrine.mailcatcher import MailCatcher
from vitrine.services import SERVICES, spec
from vitrine.system import System, free_port, free_ports

STARTED = ("streams", "chat", "webhooks", "gateway")
ADMIN_EMAIL = "ops@example.com"
# Long enough that the receiver's outage and a restart fit before anything is given up.
PATIENT = {"WEBHOOKS_RETRY_DELAYS_S": "[0.5,1,2,4,8,16,32]"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def mail() -> Iterator[MailCatcher]:
    with MailCatcher(port=free_port()) as catcher:
        yield catcher


@pytest.fixture(scope="module")
async def isolated(env: dict) -> dict:
    return {
        **env,
        "db_schema_prefix": "wh_",
        "jetstream_stream": f"{env['jetstream_stream']}_WH",
        "subject_root": f"wh.{env['subject_root']}",
        "redis_prefix": f"wh:{env['redis_prefix']}",
    }


@pytest.fixture(scope="module")
async def system(isolated: dict, mail: MailCatcher, tmp_path_factory) -> AsyncIterator[System]:
    for name in STARTED:
        chosen = spec(name)
        if chosen.migrate is not None:
            await chosen.migrate(chosen.settings(**isolated))  # type: ignore[call-arg]
    running = System(
        env={key.upper(): str(value) for key, value in isolated.items()}
        | {
            "SMTP_URL": mail.url,
            "WEBHOOKS_ADMIN_EMAIL": ADMIN_EMAIL,
            "WEBHOOKS_ATTEMPT_TIMEOUT_S": "1",
            "WEBHOOKS_LEASE_S": "5",
            "WEBHOOKS_POLL_INTERVAL_S": "0.2",
            "WEBHOOKS_DISABLE_AFTER_FAILURES": "2",
        },
        ports=free_ports(SERVICES),
        log_dir=tmp_path_factory.mktemp("webhooks-logs"),
        per_service={"webhooks": PATIENT},
    )
    await asyncio.to_thread(running.start, *STARTED)
    yield running
    await asyncio.to_thread(running.stop)
    nc = await nats.connect(isolated["nats_url"])
    try:
        await nc.jetstream().delete_stream(isolated["jetstream_stream"])
    finally:
        await nc.close()


@pytest.fixture
async def gateway(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as client:
        yield client


async def restart_webhooks(system: System, **env: str) -> None:
    await asyncio.to_thread(system.stop, "webhooks")
    system.per_service["webhooks"] = PATIENT | env
    await asyncio.to_thread(system.start, "webhooks")


async def register(gateway, admin, receiver: Receiver, name: str, **fields) -> dict:
    answer = await gateway.post(
        "/api/webhooks/endpoints", json={"url": receiver.url(name), **fields}, headers=admin
    )
    assert answer.status_code == 201, answer.text
    receiver.secrets[name] = answer.json()["secret"]
    return answer.json()


async def bus_order(isolated: dict, live_id: str, count: int) -> list[str]:
    """The ids of the live's first `count` events, in the order JetStream holds them."""
    nc = await nats.connect(isolated["nats_url"])
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            f"{isolated['subject_root']}.{live_id}.>",
            stream=isolated["jetstream_stream"],
            ordered_consumer=True,
        )
        ids = [json.loads((await sub.next_msg(timeout=10)).data)["id"] for _ in range(count)]
        await sub.unsubscribe()
        return ids
    finally:
        await nc.close()


def zoe() -> dict[str, str]:
    return auth(issue_token(secret=INSECURE_JWT_SECRET, user_id="user-zoe", name="Zoé"))


async def test_only_admins_manage_endpoints_and_bad_input_changes_nothing(
    gateway, tokens, receiver: Receiver
):
    admin, viewer = auth(tokens["admin"]), auth(tokens["user"])
    good = {"url": receiver.url("matrix"), "event_types": ["stream.*"]}
    assert (await gateway.post("/api/webhooks/endpoints", json=good)).status_code == 401
    refused = await gateway.post("/api/webhooks/endpoints", json=good, headers=viewer)
    assert refused.status_code == 403
    assert (await gateway.get("/api/webhooks/endpoints", headers=viewer)).status_code == 403
    before = (await gateway.get("/api/webhooks/endpoints", headers=admin)).json()
    for bad, status in [
        ({**good, "url": "file:///etc/passwd"}, 422),
        ({**good, "url": "not a url"}, 422),
        ({**good, "event_types": ["stream.exploded"]}, 422),
        ({**good, "description": "x" * 501}, 422),
        ({**good, "event_types": ["stream.created"] * 51}, 422),
        ({**good, "description": "x" * 1_100_000}, 413),
    ]:
        answer = await gateway.post("/api/webhooks/endpoints", json=bad, headers=admin)
        assert answer.status_code == status, (bad.get("url"), answer.text[:300])
        assert "detail" in answer.json()
    assert (await gateway.get("/api/webhooks/endpoints/nope", headers=admin)).status_code == 422
    assert (await gateway.get("/api/webhooks/endpoints", headers=admin)).json() == before
    created = await register(gateway, admin, receiver, "matrix", **good)
    one = f"/api/webhooks/endpoints/{created['id']}"
    for method in ("GET", "PUT", "DELETE"):
        assert (await gateway.request(method, one, headers=viewer, json={})).status_code == 403
    changed = await gateway.put(one, json={"description": "CRM"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["description"] == "CRM"
    assert (await gateway.delete(one, headers=admin)).status_code == 204
    assert (await gateway.get(one, headers=admin)).status_code == 404


async def test_events_arrive_once_in_order_through_failures_and_a_restart(
    gateway, tokens, receiver: Receiver, system: System, isolated: dict
):
    admin = auth(tokens["admin"])
    await register(gateway, admin, receiver, "crm", event_types=["stream.*", "chat.*"],
                   allow_personal_data=True)  # fmt: skip
    await register(gateway, admin, receiver, "automation", event_types=["chat.posted"])
    receiver.modes["crm"] = "fail"
    created = await gateway.post("/api/live/streams", json={"title": "Soldes"}, headers=admin)
    live_id = created.json()["id"]

    async def chat_knows_it() -> bool:
        return (await gateway.get(f"/api/live/streams/{live_id}/chat")).status_code == 200

    await eventually(chat_knows_it)
    posted = await gateway.post(
        "/api/live/chat", json={"stream_id": live_id, "message": "first!"}, headers=zoe()
    )
    assert posted.status_code == 201, posted.text
    await eventually(lambda: len(receiver.of("crm")) >= 2)  # the first event, failing
    receiver.modes["crm"] = "hang"  # and now answering too late

    await asyncio.to_thread(system.stop, "webhooks")
    renamed = await gateway.put(
        f"/api/live/streams/{live_id}", json={"title": "Soldes d'hiver"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    await asyncio.to_thread(system.start, "webhooks")
    tried = len(receiver.of("crm"))
    await eventually(lambda: len(receiver.of("crm")) > tried, timeout=20)
    receiver.modes["crm"] = "ok"

    order = await bus_order(isolated, live_id, 3)  # stream.created, chat.posted, stream.updated
    await eventually(lambda: len(receiver.delivered("crm")) == 3, timeout=60)
    await eventually(lambda: receiver.delivered("automation"), timeout=20)
    await asyncio.sleep(1)  # for a copy that should not come
    crm = receiver.delivered("crm")
    assert [r.webhook_id for r in crm] == order
    assert [r.event["type"] for r in crm] == ["stream.created", "chat.posted", "stream.updated"]
    assert all(r.verified for r in receiver.of("crm") + receiver.of("automation"))
    assert crm[1].event["data"]["message"]["display_name"] == "Zoé"
    # Retried attempts carried the same id; none was accepted twice.
    assert max(Counter(r.webhook_id for r in crm).values()) == 1
    assert len({r.webhook_id for r in receiver.of("crm")}) == 3
    (automation,) = receiver.delivered("automation")
    assert automation.webhook_id == order[1]
    message = automation.event["data"]["message"]
    assert message["message"] == "first!" and "display_name" not in message
    assert "user_id" not in message and b"user-zoe" not in automation.body


async def test_an_event_accepted_while_the_service_stops_gracefully_is_not_sent_again(
    gateway, tokens, receiver: Receiver, system: System
):
    admin = auth(tokens["admin"])
    await register(gateway, admin, receiver, "slow", event_types=["stream.created"])
    receiver.modes["slow"], receiver.slow_s = "slow", 0.6  # a 200, within the 1 s timeout
    created = await gateway.post("/api/live/streams", json={"title": "Ventes"}, headers=admin)
    assert created.status_code == 201, created.text
    live_id = created.json()["id"]

    def asked() -> list:
        return [r for r in receiver.of("slow") if r.event["stream_id"] == live_id]

    await eventually(asked, timeout=20)
    # SIGTERM with the receiver's 2xx still on its way; started again.
    await asyncio.to_thread(system.stop, "webhooks")
    await asyncio.to_thread(system.start, "webhooks")
    await asyncio.sleep(2)  # for a copy that should not come
    assert [r.answered for r in asked()] == [200]


async def test_an_endpoint_that_keeps_failing_is_disabled_the_admin_told_then_enabled(
    gateway, tokens, receiver: Receiver, system: System, mail: MailCatcher
):
    admin = auth(tokens["admin"])
    await restart_webhooks(system, WEBHOOKS_RETRY_DELAYS_S="[0.3,0.3]")
    endpoint = await register(gateway, admin, receiver, "down", event_types=["stream.created"])
    one = f"/api/webhooks/endpoints/{endpoint['id']}"
    receiver.modes["down"] = "hang"
    for title in ("Live 1", "Live 2"):
        answer = await gateway.post("/api/live/streams", json={"title": title}, headers=admin)
        assert answer.status_code == 201

    async def disabled() -> dict | None:
        state = (await gateway.get(one, headers=admin)).json()
        return state if state["status"] == "disabled" else None

    state = await eventually(disabled, timeout=30)
    assert state["disabled_reason"] == "2 deliveries in a row were given up"
    await eventually(lambda: mail.messages, timeout=10)
    (letter,) = [m for m in mail.messages if "webhook" in str(m["Subject"])]
    assert letter["To"] == ADMIN_EMAIL and endpoint["id"] in letter.get_content()
    log = (await gateway.get(f"{one}/deliveries?limit=1", headers=admin)).json()
    assert len(log["items"]) == 1 and log["next_cursor"]
    assert log["items"][0]["status"] == "failed"
    assert [a["error"] for a in log["items"][0]["attempts"]] == ["timed out"] * 3
    later = await gateway.get(f"{one}/deliveries?cursor={log['next_cursor']}", headers=admin)
    assert [d["status"] for d in later.json()["items"]] == ["failed"]

    receiver.modes["down"] = "ok"
    assert (await gateway.post(f"{one}/test", headers=admin)).status_code == 409
    enabled = await gateway.post(f"{one}/enable", headers=admin)
    assert enabled.status_code == 200 and enabled.json()["status"] == "enabled"
    sent = await gateway.post(f"{one}/test", headers=admin)
    assert sent.status_code == 202, sent.text
    await eventually(lambda: receiver.delivered("down"))
    (got,) = receiver.delivered("down")
    assert got.verified and got.event["type"] == "webhook.test"
    await restart_webhooks(system)
