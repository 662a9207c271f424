"""The chat on the viewer page: a round trip between two browsers, moderation, reconnection."""

import re

from playwright.async_api import Page, expect

from tests.conftest import auth
from tests.e2e.test_chat_flow import chat_ready_live, new_user, post


async def say(page: Page, text: str) -> None:
    await page.get_by_label("Your message").fill(text)
    await page.get_by_role("button", name="Send").click()


def messages(page: Page):
    return page.locator("#messages li.message")


async def test_a_message_typed_in_one_browser_appears_once_in_the_other(new_page, gateway, tokens):
    live_id = await chat_ready_live(gateway, tokens, "Browser chat")
    ana = await new_page(token=new_user("Ana"))
    ben = await new_page(token=new_user("Ben"), locale="fr-FR")
    anonymous = await new_page()
    for page in (ana, ben, anonymous):
        await page.goto(f"/live/{live_id}")
        await expect(page.locator("#messages")).to_be_visible()

    await say(ana, "Bonjour <b>tout le monde</b>")
    for page in (ana, ben, anonymous):
        await expect(messages(page).filter(has_text="Bonjour <b>tout le monde</b>")).to_have_count(
            1
        )
    await ben.get_by_label("Votre message").fill("Salut Ana !")
    await ben.get_by_role("button", name="Envoyer").click()
    for page in (ana, ben, anonymous):
        await expect(messages(page).locator(".text")).to_have_text(
            ["Bonjour <b>tout le monde</b>", "Salut Ana !"]
        )
        await expect(messages(page).locator(".author")).to_have_text(["Ana", "Ben"])
    # Readable by everyone; the input is for signed-in viewers only.
    await expect(anonymous.get_by_label("Your message")).to_be_hidden()
    await expect(anonymous.get_by_text("Sign in to join the chat.")).to_be_visible()


async def test_slow_mode_refusals_are_shown_politely_with_the_wait(new_page, gateway, tokens):
    live_id = await chat_ready_live(gateway, tokens, "Slow browser chat")
    await gateway.put(
        f"/api/live/streams/{live_id}/chat", json={"slow_mode_s": 30}, headers=auth(tokens["admin"])
    )
    eve = await new_page(token=new_user("Eve"))
    await eve.goto(f"/live/{live_id}")
    await say(eve, "first")
    await expect(messages(eve)).to_have_count(1)
    await say(eve, "second")
    await expect(eve.locator("#chat-feedback")).to_have_text(
        re.compile(r"Slow mode: try again in \d+ s\.")
    )


async def test_moderation_pins_and_removes_messages_on_the_viewers_screen(
    new_page, gateway, tokens, screenshot
):
    live_id = await chat_ready_live(gateway, tokens, "Moderated browser chat")
    troll, fan = new_user("Troll"), new_user("Fan")
    spam = (await post(gateway, live_id, "BUY CHEAP STUFF", troll)).json()
    await post(gateway, live_id, "Love this coat", fan)
    viewer = await new_page()
    await viewer.goto(f"/live/{live_id}")
    await expect(messages(viewer)).to_have_count(2)

    admin = await new_page(token=tokens["admin"])
    await admin.goto(f"/admin#/live/{live_id}")
    spam_row = admin.locator(f'#mod-messages li[data-message-id="{spam["id"]}"]')
    fan_row = admin.locator("#mod-messages li", has_text="Love this coat")
    await fan_row.get_by_role("button", name="Pin").click()
    await expect(viewer.locator("#pinned")).to_contain_text("Love this coat")
    await spam_row.get_by_role("button", name="Delete").click()
    await expect(viewer.get_by_text("BUY CHEAP STUFF")).to_have_count(0)
    await expect(messages(viewer)).to_have_count(1)
    await expect(spam_row).to_have_count(0)
    await screenshot(viewer, "viewer-desktop-moderated")


async def test_after_a_dropped_socket_the_page_resumes_with_since_and_shows_nothing_twice(
    new_page, gateway, tokens
):
    live_id = await chat_ready_live(gateway, tokens, "Reconnect")
    zoe = new_user("Zoé")
    for n in range(3):
        await post(gateway, live_id, f"before {n}", zoe)
    viewer = await new_page()
    sockets: list[str] = []
    viewer.on("websocket", lambda ws: sockets.append(ws.url))
    await viewer.goto(f"/live/{live_id}")
    await expect(messages(viewer)).to_have_count(3)
    assert "since=" not in sockets[0]

    # The network drops: the socket closes under the page; messages keep coming meanwhile.
    # Closed and read in one turn: a closing socket dispatches no further frame.
    last_seq = await viewer.evaluate(
        "(() => { const s = window.vitrine.socket; s.socket.close(); return s.lastSeq; })()"
    )
    await expect(viewer.locator("#connection")).to_have_text("Reconnecting…")
    await post(gateway, live_id, "during the drop", zoe)
    await expect(messages(viewer)).to_have_count(4)
    await expect(viewer.locator("#connection")).to_have_text("")
    assert f"since={last_seq}" in sockets[1]

    # A replay that overlaps what is already on screen (an older since=) adds nothing twice.
    await viewer.evaluate(
        "window.vitrine.socket.lastSeq -= 3; window.vitrine.socket.socket.close()"
    )
    await post(gateway, live_id, "after", zoe)
    await expect(messages(viewer).locator(".text")).to_have_text(
        ["before 0", "before 1", "before 2", "during the drop", "after"]
    )
    assert len(sockets) == 3
