"""The chat page in headless Chromium (Debian's browser, driven by Playwright) against the whole stack."""

from __future__ import annotations

import json

import pytest
from chat_app import ChatApp, unique_user
from chat_page import ACK_TIMEOUT_MS, join, message_items, send
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

pytestmark = pytest.mark.e2e

MARKUP = "<img src=x onerror=alert(1)>"


def test_page_echoes_a_sent_message_from_the_broadcast(page: Page, chat_app: ChatApp) -> None:
    name = unique_user("page")
    join(page, chat_app, name)
    send(page, "hello from the browser")
    sent = message_items(page, "hello from the browser")
    expect(sent).to_have_count(1)
    expect(sent).to_have_attribute("data-state", "sent")
    expect(sent).to_have_attribute("data-source", "live")
    [stored] = [message for message in chat_app.history(name) if message["userId"] == name]
    expect(sent).to_have_attribute("data-id", stored["id"])
    expect(sent.get_by_test_id("message-user")).to_have_text(name)


def test_page_shows_a_sent_message_in_history_after_reload(page: Page, chat_app: ChatApp) -> None:
    name = unique_user("page")
    text = f"kept by {name}"
    join(page, chat_app, name)
    send(page, text)
    expect(message_items(page, text)).to_have_attribute("data-state", "sent")
    page.reload()
    join(page, chat_app, name)
    kept = message_items(page, text)
    expect(kept).to_have_count(1)
    expect(kept).to_have_attribute("data-source", "history")


def test_page_shows_markup_as_literal_text(page: Page, chat_app: ChatApp, dialogs: list[str]) -> None:
    name = unique_user("page")
    join(page, chat_app, name)
    send(page, MARKUP)
    live = message_items(page, MARKUP)
    expect(live).to_have_attribute("data-state", "sent")
    page.reload()
    join(page, chat_app, name)
    from_history = message_items(page, MARKUP).and_(page.locator("[data-source=history]"))
    expect(from_history.get_by_test_id("message-text")).to_have_text(MARKUP)
    assert from_history.get_by_test_id("message-text").text_content() == MARKUP
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_page_shows_others_join_talk_and_leave(browser: Browser, page: Page, chat_app: ChatApp) -> None:
    watcher, talker = unique_user("watcher"), unique_user("talker")
    join(page, chat_app, watcher)
    other_context = browser.new_context()
    try:
        other = other_context.new_page()
        join(other, chat_app, talker)
        expect(
            page.get_by_test_id("presence").and_(
                page.locator(f'[data-user="{talker}"][data-event="connected"]')
            )
        ).to_have_count(1)
        send(other, f"hi from {talker}")
        received = message_items(page, f"hi from {talker}")
        expect(received).to_have_count(1)
        expect(received.get_by_test_id("message-user")).to_have_text(talker)
        other.get_by_test_id("disconnect-button").click()
        expect(
            page.get_by_test_id("presence").and_(
                page.locator(f'[data-user="{talker}"][data-event="disconnected"]')
            )
        ).to_have_count(1)
    finally:
        other_context.close()


class RefusingService:
    """Fault injection: a WebSocket route that passes everything through to the real service, except
    that the first `refusals` message events are answered with an error ack instead of being forwarded."""

    def __init__(self, page: Page, refusals: int) -> None:
        self.refusals = refusals
        page.route_web_socket("**/client/hubs/**", self._route)

    def _route(self, socket: WebSocketRoute) -> None:
        service = socket.connect_to_server()

        def from_page(frame: str | bytes) -> None:
            message = json.loads(frame)
            if message.get("type") == "event" and self.refusals > 0:
                self.refusals -= 1
                error = {"name": "InternalServerError", "message": "injected failure"}
                socket.send(
                    json.dumps({"type": "ack", "ackId": message["ackId"], "success": False, "error": error})
                )
            else:
                service.send(frame)

        socket.on_message(from_page)


class SilentService:
    """Fault injection: `message` events vanish on the way (no ack ever comes); the test closes the socket."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WebSocketRoute] = []
        page.route_web_socket("**/client/hubs/**", self._route)

    def _route(self, socket: WebSocketRoute) -> None:
        self.sockets.append(socket)
        service = socket.connect_to_server()

        def from_page(frame: str | bytes) -> None:
            if json.loads(frame).get("type") != "event":
                service.send(frame)

        socket.on_message(from_page)


class RepeatingService:
    """Fault injection: every message broadcast from the service reaches the page twice, as an
    at-least-once delivery may do."""

    def __init__(self, page: Page) -> None:
        page.route_web_socket("**/client/hubs/**", self._route)

    def _route(self, socket: WebSocketRoute) -> None:
        service = socket.connect_to_server()

        def from_service(frame: str | bytes) -> None:
            socket.send(frame)
            message = json.loads(frame)
            if message.get("type") == "message" and message.get("data", {}).get("type") == "message":
                socket.send(frame)

        service.on_message(from_service)


def test_page_shows_a_message_delivered_twice_once(page: Page, chat_app: ChatApp) -> None:
    RepeatingService(page)
    join(page, chat_app, unique_user("page"))
    send(page, "delivered twice")
    expect(message_items(page, "delivered twice")).to_have_attribute("data-state", "sent")
    send(page, "a later one")  # its broadcast comes after both copies of the first
    expect(message_items(page, "a later one")).to_have_attribute("data-state", "sent")
    expect(message_items(page, "delivered twice")).to_have_count(1)


def test_page_marks_a_refused_send_as_failed(page: Page, chat_app: ChatApp) -> None:
    RefusingService(page, refusals=1)
    join(page, chat_app, unique_user("page"))
    send(page, "this one is refused")
    refused = message_items(page, "this one is refused")
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused.get_by_test_id("message-state")).to_contain_text("injected failure")
    expect(refused.get_by_test_id("retry-button")).to_be_visible()


def test_page_retries_a_refused_send(page: Page, chat_app: ChatApp) -> None:
    RefusingService(page, refusals=1)
    join(page, chat_app, unique_user("page"))
    send(page, "second time lucky")
    message_items(page, "second time lucky").get_by_test_id("retry-button").click()
    retried = message_items(page, "second time lucky")
    expect(retried).to_have_count(1)
    expect(retried).to_have_attribute("data-state", "sent")
    expect(retried).to_have_attribute("data-source", "live")


def test_page_keeps_a_refused_send_failed_when_the_same_text_is_sent_again(
    page: Page, chat_app: ChatApp
) -> None:
    RefusingService(page, refusals=1)
    join(page, chat_app, unique_user("page"))
    send(page, "same words")
    expect(message_items(page, "same words")).to_have_attribute("data-state", "failed")
    send(page, "same words")
    expect(message_items(page, "same words").and_(page.locator("[data-state=sent]"))).to_have_count(1)
    expect(message_items(page, "same words").and_(page.locator("[data-state=failed]"))).to_have_count(1)


def test_page_marks_an_unconfirmed_send_as_failed_when_the_connection_closes(
    page: Page, chat_app: ChatApp
) -> None:
    service = SilentService(page)
    join(page, chat_app, unique_user("page"))
    send(page, "never confirmed")
    unconfirmed = message_items(page, "never confirmed")
    expect(unconfirmed).to_have_attribute("data-state", "pending")
    service.sockets[-1].close(code=1011, reason="injected close")
    expect(unconfirmed).to_have_attribute("data-state", "failed")
    expect(unconfirmed.get_by_test_id("message-state")).to_contain_text("connection closed")


def test_page_marks_a_send_as_failed_when_no_ack_comes_in_time(page: Page, chat_app: ChatApp) -> None:
    SilentService(page)
    page.clock.install()  # the page's ack timer runs on a clock the test moves
    join(page, chat_app, unique_user("page"))
    send(page, "no ack for this one")
    unacknowledged = message_items(page, "no ack for this one")
    expect(unacknowledged).to_have_attribute("data-state", "pending")
    page.clock.run_for(ACK_TIMEOUT_MS + 1000)
    expect(unacknowledged).to_have_attribute("data-state", "failed")
    expect(unacknowledged.get_by_test_id("message-state")).to_contain_text("no answer")


def test_page_policy_blocks_injected_inline_script(page: Page, chat_app: ChatApp) -> None:
    response = page.goto(chat_app.page_url)
    assert response is not None
    assert "script-src 'sha256-" in response.headers["content-security-policy"]
    ran = page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injectedScriptRan = true";
            document.body.append(script);
            return window.injectedScriptRan === true;
        }"""
    )
    assert ran is False
