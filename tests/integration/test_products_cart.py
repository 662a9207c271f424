"""The viewer's cart through the products service's HTTP API, over real PostgreSQL and NATS
JetStream: lines as the page shows them, quantities set and lines removed, the stock, bad input,
and the anonymous cart claimed on sign-in."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import pytest
from nats.js import JetStreamContext

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from services.products.app import create_app, migrate
from services.products.settings import ProductsSettings
from tests.conftest import auth
from tests.integration.test_products_service import add_to_live, events_of, new_product, on_air
from tests.support.services import serving


@pytest.fixture(scope="module")
async def client(env: dict) -> AsyncIterator[httpx.AsyncClient]:
    settings = ProductsSettings(**env)
    await migrate(settings)
    async with serving(create_app(settings), "products") as client:
        yield client


def signed_in_user() -> dict[str, str]:
    """Headers of a user of this test alone (a cart follows its user across tests otherwise)."""
    token = issue_token(secret=INSECURE_JWT_SECRET, user_id=f"user-{uuid4().hex}", name="Cleo")
    return auth(token)


@dataclass
class Viewer:
    """One viewer's calls to the cart: anonymous (their session's cart) or signed in."""

    client: httpx.AsyncClient
    headers: dict[str, str] = field(default_factory=dict)
    session_id: str = field(default_factory=lambda: "sess-" + uuid4().hex)

    async def add(
        self, stream_id: str, product_id: str, quantity: Any = 1, **headers: str
    ) -> httpx.Response:
        body = {"stream_id": stream_id, "product_id": product_id, "quantity": quantity}
        return await self.client.post(
            "/api/live/cart/items",
            json={**body, "session_id": self.session_id},
            headers={**self.headers, **headers},
        )

    async def set(
        self, stream_id: str, product_id: str, quantity: Any, **headers: str
    ) -> httpx.Response:
        body = {"stream_id": stream_id, "product_id": product_id, "quantity": quantity}
        return await self.client.put(
            "/api/live/cart/items",
            json={**body, "session_id": self.session_id},
            headers={**self.headers, **headers},
        )

    async def remove(self, stream_id: str, product_id: str) -> httpx.Response:
        return await self.client.delete(
            f"/api/live/cart/items/{stream_id}/{product_id}",
            params={"session_id": self.session_id},
            headers=self.headers,
        )

    async def claim(self, session_id: str) -> httpx.Response:
        return await self.client.post(
            "/api/live/cart/claim", json={"session_id": session_id}, headers=self.headers
        )

    async def cart(self) -> dict:
        answer = await self.client.get(
            "/api/live/cart", params={"session_id": self.session_id}, headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


async def live_showing(
    client: httpx.AsyncClient, admin: dict, *products: dict[str, Any]
) -> tuple[str, list[dict]]:
    """A new live showing a new catalog product for each of `products`: the product's fields,
    with `special_price` (the live price) and `visible` for the live."""
    stream_id = str(uuid4())
    made = []
    for fields in products:
        in_live = {k: v for k, v in fields.items() if k in ("special_price", "visible")}
        product = await new_product(
            client, admin, **{k: v for k, v in fields.items() if k not in in_live}
        )
        added = await add_to_live(client, admin, stream_id, product["id"], **in_live)
        assert added.status_code == 201, added.text
        made.append(product)
    return stream_id, made


def quantities(cart: dict) -> dict[str, int]:
    return {line["product_id"]: line["quantity"] for line in cart["lines"]}


# --- what a line shows ---------------------------------------------------------------------------


async def test_a_line_carries_its_image_the_catalog_price_to_strike_and_the_stock_now(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, (coat, scarf) = await live_showing(
        client,
        admin,
        {"price": "49.90", "special_price": "39.90", "stock": 7,
         "images": ["https://cdn.example/coat.jpg", "https://cdn.example/coat-2.jpg"]},
        {"price": "19.90"},
    )  # fmt: skip
    await on_air(client, js, env, admin, stream_id)
    viewer = Viewer(client)
    assert (await viewer.add(stream_id, coat["id"], 2)).status_code == 201
    added = await viewer.add(stream_id, scarf["id"])
    assert added.status_code == 201, added.text
    cart = added.json()
    assert [
        {key: line[key] for key in ("name", "quantity", "unit_price", "regular_price")}
        | {"image_url": line["image_url"], "stock": line["stock"]}
        for line in cart["lines"]
    ] == [
        {"name": coat["name"], "quantity": 2, "unit_price": "39.90", "regular_price": "49.90",
         "image_url": "https://cdn.example/coat.jpg", "stock": 7},
        {"name": scarf["name"], "quantity": 1, "unit_price": "19.90", "regular_price": "19.90",
         "image_url": None, "stock": None},
    ]  # fmt: skip
    assert (cart["items"], cart["total"], cart["currency"]) == (3, "99.70", "EUR")

    # The stock and the catalog price are the catalog's now; the live price still holds.
    await client.put(
        f"/api/catalog/products/{coat['id']}", json={"stock": 4, "price": "59.90"}, headers=admin
    )
    line = (await viewer.cart())["lines"][0]
    assert (line["stock"], line["unit_price"], line["regular_price"]) == (4, "39.90", "59.90")
    assert len(await events_of(js, env, stream_id, count=2, kind="cart.added")) == 2


# --- setting a quantity, removing a line ---------------------------------------------------------


async def test_a_quantity_is_set_and_zero_or_delete_removes_the_line(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, (coat, scarf) = await live_showing(client, admin, {}, {})
    viewer = Viewer(client)
    await viewer.add(stream_id, coat["id"])
    first = (await viewer.add(stream_id, scarf["id"])).json()

    more = await viewer.set(stream_id, coat["id"], 3)
    assert more.status_code == 200, more.text
    assert quantities(more.json()) == {coat["id"]: 3, scarf["id"]: 1}
    assert (more.json()["items"], more.json()["total"]) == (4, "79.60")
    fewer = await viewer.set(stream_id, coat["id"], 2)
    assert quantities(fewer.json()) == {coat["id"]: 2, scarf["id"]: 1}
    gone = await viewer.set(stream_id, coat["id"], 0)
    assert gone.status_code == 200
    assert quantities(gone.json()) == {scarf["id"]: 1}
    missing = await viewer.set(stream_id, coat["id"], 1)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "this product is not in your cart"}

    removed = await viewer.remove(stream_id, scarf["id"])
    assert removed.status_code == 200, removed.text
    assert removed.json()["id"] == first["id"]
    assert (removed.json()["lines"], removed.json()["items"]) == ([], 0)
    assert removed.json()["total"] == "0.00" and removed.json()["checkout_url"] is None
    assert (await viewer.remove(stream_id, scarf["id"])).status_code == 404
    assert (await viewer.cart())["lines"] == []

    stranger = Viewer(client)  # no cart at all
    assert (await stranger.set(stream_id, coat["id"], 1)).status_code == 404
    assert (await stranger.remove(stream_id, coat["id"])).status_code == 404

    # Raising a quantity is adding (analytics counts it); lowering one is not.
    events = await events_of(js, env, stream_id, count=3, kind="cart.added")
    assert [(e["data"]["product_id"], e["data"]["quantity"]) for e in events] == [
        (coat["id"], 1),
        (scarf["id"], 1),
        (coat["id"], 2),
    ]
    assert events[2]["data"]["session_id"] == viewer.session_id


async def test_a_retried_change_with_the_same_idempotency_key_happens_once(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, [coat] = await live_showing(client, admin, {})
    viewer = Viewer(client)
    assert (
        await viewer.add(stream_id, coat["id"], **{"Idempotency-Key": "add-1"})
    ).status_code == 201
    first = await viewer.set(stream_id, coat["id"], 3, **{"Idempotency-Key": "set-1"})
    retry = await viewer.set(stream_id, coat["id"], 3, **{"Idempotency-Key": "set-1"})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    other = await viewer.set(stream_id, coat["id"], 5, **{"Idempotency-Key": "set-1"})
    assert other.status_code == 422
    # A key already used for an add is not one for a change, even with the same body.
    reused = await viewer.set(stream_id, coat["id"], 1, **{"Idempotency-Key": "add-1"})
    assert reused.status_code == 422
    assert quantities(await viewer.cart()) == {coat["id"]: 3}
    events = await events_of(js, env, stream_id, count=2, kind="cart.added")
    assert [e["data"]["quantity"] for e in events] == [1, 2]


# --- the stock ------------------------------------------------------------------------------------


async def test_sold_out_or_short_stock_is_refused_with_what_is_left_and_nothing_changes(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, (gone, scarce) = await live_showing(client, admin, {"stock": 0}, {"stock": 3})
    viewer = Viewer(client)

    sold_out = await viewer.add(stream_id, gone["id"])
    assert (sold_out.status_code, sold_out.json()) == (409, {"detail": "sold out"})
    too_many = await viewer.add(stream_id, scarce["id"], 4)
    assert (too_many.status_code, too_many.json()) == (409, {"detail": "only 3 left in stock"})
    assert (await viewer.add(stream_id, scarce["id"], 2)).status_code == 201
    again = await viewer.add(stream_id, scarce["id"], 2)
    assert again.status_code == 409
    assert again.json() == {"detail": "only 3 left in stock, 2 already in your cart"}
    raised = await viewer.set(stream_id, scarce["id"], 4)
    assert (raised.status_code, raised.json()) == (409, again.json())
    assert (await viewer.set(stream_id, scarce["id"], 3)).status_code == 200

    # The same product from another live counts against the same stock.
    other_live = str(uuid4())
    assert (await add_to_live(client, admin, other_live, scarce["id"])).status_code == 201
    elsewhere = await viewer.add(other_live, scarce["id"])
    assert elsewhere.json() == {"detail": "only 3 left in stock, 3 already in your cart"}

    # Back in stock, then sold out while in the cart: raising it is refused, lowering is not.
    await client.put(f"/api/catalog/products/{gone['id']}", json={"stock": 1}, headers=admin)
    assert (await viewer.add(stream_id, gone["id"])).status_code == 201
    await client.put(f"/api/catalog/products/{gone['id']}", json={"stock": 0}, headers=admin)
    assert (await viewer.set(stream_id, gone["id"], 2)).json() == {"detail": "sold out"}
    assert quantities(await viewer.cart()) == {scarce["id"]: 3, gone["id"]: 1}
    assert (await viewer.set(stream_id, gone["id"], 0)).status_code == 200

    events = await events_of(js, env, stream_id, count=3, kind="cart.added")
    assert [(e["data"]["product_id"], e["data"]["quantity"]) for e in events] == [
        (scarce["id"], 2),
        (scarce["id"], 1),
        (gone["id"], 1),
    ]


# --- bad input ------------------------------------------------------------------------------------


async def test_absurd_quantities_and_products_not_on_show_are_refused_and_change_nothing(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, (coat, hidden) = await live_showing(client, admin, {}, {"visible": False})
    other_live, [foreign] = await live_showing(client, admin, {})
    viewer = Viewer(client)
    assert (await viewer.add(stream_id, coat["id"])).status_code == 201
    before = await viewer.cart()
    pid = coat["id"]
    line = {
        "stream_id": stream_id,
        "product_id": pid,
        "quantity": 1,
        "session_id": viewer.session_id,
    }

    absurd: list[Any] = [-1, 100, 1.5, "2", True, 10**30, None, "", [1], {"n": 1}]
    for quantity in [0, *absurd]:
        answer = await viewer.add(stream_id, pid, quantity)
        assert answer.status_code == 422, (quantity, answer.text)
    for quantity in absurd:
        answer = await viewer.set(stream_id, pid, quantity)
        assert answer.status_code == 422, (quantity, answer.text)
    refused = [
        (await viewer.add(stream_id, str(uuid4())), 404),  # no such product
        (await viewer.add(stream_id, foreign["id"]), 404),  # another live's product
        (await viewer.add(other_live, pid), 404),  # this live's product, from another live
        (await viewer.add(stream_id, hidden["id"]), 404),  # hidden from viewers
        (await viewer.add(stream_id, "nope"), 422),
        (await viewer.add("nope", pid), 422),
        (await viewer.set(stream_id, foreign["id"], 1), 404),  # not in the cart
        (await viewer.set(stream_id, hidden["id"], 1), 404),
        (await viewer.set(stream_id, "nope", 1), 422),
        (await viewer.remove(stream_id, foreign["id"]), 404),
        (await viewer.remove(stream_id, "nope"), 422),
        (await client.delete(f"/api/live/cart/items/{stream_id}/{pid}"), 422),  # whose cart?
        (await client.delete(f"/api/live/cart/items/{stream_id}/{pid}?session_id=short"), 422),
        (await client.put("/api/live/cart/items", json={"stream_id": stream_id}), 422),
        (await client.put("/api/live/cart/items", json={**line, "unit_price": "0.01"}), 422),
        (await viewer.set(stream_id, pid, 2, **{"Idempotency-Key": "k" * 129}), 422),
    ]
    for number, (answer, expected) in enumerate(refused):
        assert answer.status_code == expected, (number, answer.text)
        assert "detail" in answer.json()
    assert await viewer.cart() == before
    assert len(await events_of(js, env, stream_id, count=1, kind="cart.added")) == 1

    # A line whose product was hidden since can be lowered or removed, not raised.
    await add_to_live(client, admin, stream_id, pid, visible=False)
    assert (await viewer.add(stream_id, pid)).status_code == 404
    assert (await viewer.set(stream_id, pid, 2)).status_code == 404
    assert (await viewer.remove(stream_id, pid)).status_code == 200


# --- claiming the session's cart on sign-in -----------------------------------------------------


async def test_a_user_without_a_cart_takes_the_session_cart_as_it_is(
    client: httpx.AsyncClient, admin: dict
) -> None:
    stream_id, (coat, scarf) = await live_showing(client, admin, {"special_price": "9.90"}, {})
    anonymous = Viewer(client)
    await anonymous.add(stream_id, coat["id"], 2)
    session_cart = (await anonymous.add(stream_id, scarf["id"])).json()
    user = Viewer(client, headers=signed_in_user())

    assert (await Viewer(client).claim(anonymous.session_id)).status_code == 401
    claimed = await user.claim(anonymous.session_id)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json() == session_cart  # the same cart (same id), now the user's
    assert await user.cart() == session_cart
    assert (await anonymous.cart())["lines"] == []

    again = await user.claim(anonymous.session_id)
    assert (again.status_code, again.json()) == (200, session_cart)
    nothing = await Viewer(client, headers=signed_in_user()).claim("sess-" + uuid4().hex)
    assert (nothing.status_code, nothing.json()["lines"], nothing.json()["id"]) == (200, [], None)
    assert (await user.claim("short")).status_code == 422


async def test_claiming_into_a_users_cart_adds_quantities_within_99_and_the_stock(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, (scarce, plenty, new) = await live_showing(
        client, admin, {"stock": 3}, {}, {"special_price": "5.00"}
    )
    await on_air(client, js, env, admin, stream_id)
    user = Viewer(client, headers=signed_in_user())
    await user.add(stream_id, scarce["id"], 2)
    mine = (await user.add(stream_id, plenty["id"], 98)).json()
    anonymous = Viewer(client)
    await anonymous.add(stream_id, scarce["id"], 2)
    await anonymous.add(stream_id, plenty["id"], 5)
    await anonymous.add(stream_id, new["id"], 1)

    both = await asyncio.gather(*(user.claim(anonymous.session_id) for _ in range(2)))
    assert [answer.status_code for answer in both] == [200, 200]
    assert both[0].json() == both[1].json()  # the second found nothing more to move
    cart = both[0].json()
    assert cart["id"] == mine["id"]
    assert quantities(cart) == {scarce["id"]: 3, plenty["id"]: 99, new["id"]: 1}
    assert [line["unit_price"] for line in cart["lines"]] == ["19.90", "19.90", "5.00"]
    assert (cart["items"], cart["total"]) == (103, "2034.80")
    assert (await anonymous.cart())["lines"] == []
    assert await user.cart() == cart


async def test_a_claim_across_currencies_is_refused_and_both_carts_stay(
    client: httpx.AsyncClient, admin: dict
) -> None:
    stream_id, (euros, dollars) = await live_showing(client, admin, {}, {"currency": "USD"})
    user = Viewer(client, headers=signed_in_user())
    await user.add(stream_id, euros["id"])
    anonymous = Viewer(client)
    await anonymous.add(stream_id, dollars["id"], 2)
    mine, theirs = await user.cart(), await anonymous.cart()

    refused = await user.claim(anonymous.session_id)
    assert refused.status_code == 409
    assert "EUR" in refused.json()["detail"] and "USD" in refused.json()["detail"]
    assert await user.cart() == mine
    assert await anonymous.cart() == theirs
