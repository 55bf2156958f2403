"""The chat page after its socket drops: a visible reconnecting state, retries with backoff, and on
reconnect exactly the messages it missed (/api/messages?after=), once each and in order.

The service ends the page's connection through its REST API (`close_user_connections`, as an app or
an operator can), so nothing on the page can keep it; the page's new connection is a new one.
"""

from __future__ import annotations

import math
import re

import pytest
from azure.messaging.webpubsubservice import WebPubSubServiceClient
from chat_app import ChatApp, unique_user
from chat_page import (
    RETRY_CAP_MS,
    HeldRequests,
    SocketWatch,
    expect_connected,
    join,
    message_items,
    message_texts,
    send,
    wait_until,
)
from playwright.sync_api import Browser, Page, Request, Route, expect

pytestmark = pytest.mark.e2e

NEGOTIATE = "**/api/negotiate?*"


def is_catch_up(url: str) -> bool:
    return "/api/messages?" in url and "after=" in url


def drop(service: WebPubSubServiceClient, user_id: str, page: Page) -> None:
    """End every connection of `user_id` from the service side; wait until the page noticed."""
    service.close_user_connections(user_id, reason="closed by the test")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "reconnecting")


def ours(page: Page, prefix: str) -> list[str]:
    """The page's message texts that start with `prefix`, top to bottom."""
    return [text for text in message_texts(page) if text.startswith(prefix)]


class SmallPages:
    """Fault injection: catch-up requests ask for 2 messages a page, so the page must follow `next`."""

    def __init__(self, page: Page) -> None:
        self.requests = 0
        page.route(is_catch_up, self._route)

    def _route(self, route: Route, request: Request) -> None:
        self.requests += 1
        route.continue_(url=re.sub(r"limit=\d+", "limit=2", request.url))


def test_page_shows_reconnecting_and_reconnects_by_itself(
    page: Page, chat_app: ChatApp, service: WebPubSubServiceClient
) -> None:
    name = unique_user("dropped")
    join(page, chat_app, name)
    negotiate = HeldRequests(page, NEGOTIATE)
    drop(service, name, page)
    status = page.get_by_test_id("status")
    expect(status).to_be_visible()
    expect(status).to_contain_text("Reconnecting")
    wait_until(page, lambda: negotiate.kept == 1, "the page to negotiate again")
    negotiate.release()
    expect_connected(page)
    send(page, f"back again, {name}")
    expect(message_items(page, f"back again, {name}")).to_have_attribute("data-state", "sent")


def test_page_fills_in_the_messages_it_missed_once_in_order(
    browser: Browser, page: Page, chat_app: ChatApp, service: WebPubSubServiceClient
) -> None:
    reader, talker = unique_user("reader"), unique_user("talker")
    prefix = f"{talker} #"
    other = browser.new_context().new_page()
    try:
        join(page, chat_app, reader)
        join(other, chat_app, talker)
        send(other, f"{prefix}0")
        expect(message_items(page, f"{prefix}0")).to_have_count(1)
        pages = SmallPages(page)
        negotiate = HeldRequests(page, NEGOTIATE)
        drop(service, reader, page)
        for n in range(1, 6):
            send(other, f"{prefix}{n}")
            expect(message_items(other, f"{prefix}{n}")).to_have_attribute("data-state", "sent")
        negotiate.release()
        expect_connected(page)
        expect(message_items(page, f"{prefix}5")).to_have_count(1)
        send(other, f"{prefix}6")  # after the reconnection: live
        expect(message_items(page, f"{prefix}6")).to_have_count(1)
        assert ours(page, prefix) == [f"{prefix}{n}" for n in range(7)]
        for n in range(1, 6):
            expect(message_items(page, f"{prefix}{n}")).to_have_attribute("data-source", "catch-up")
        expect(message_items(page, f"{prefix}6")).to_have_attribute("data-source", "live")
        assert pages.requests >= 3, "five missed messages, two a page: the page followed next"
    finally:
        other.context.close()


@pytest.mark.parametrize(
    "catch_up_read",
    ["before the live message is stored", "after the live message is stored"],
)
def test_page_shows_live_messages_that_arrive_while_catching_up_once_after_the_missed_ones(
    browser: Browser, page: Page, chat_app: ChatApp, service: WebPubSubServiceClient, catch_up_read: str
) -> None:
    reader, talker = unique_user("reader"), unique_user("talker")
    prefix = f"{talker} #"
    watch = SocketWatch(page)
    other = browser.new_context().new_page()
    try:
        join(page, chat_app, reader)
        join(other, chat_app, talker)
        send(other, f"{prefix}0")
        expect(message_items(page, f"{prefix}0")).to_have_count(1)
        negotiate = HeldRequests(page, NEGOTIATE)
        # Fault injection: the catch-up answer waits; read at once (it misses the live message) or late.
        catch_up = HeldRequests(page, is_catch_up, answer_early=catch_up_read.startswith("before"))
        drop(service, reader, page)
        for n in (1, 2):
            send(other, f"{prefix}{n}")
            expect(message_items(other, f"{prefix}{n}")).to_have_attribute("data-state", "sent")
        negotiate.release()
        expect_connected(page)
        wait_until(page, lambda: catch_up.kept == 1, "the page to ask for what it missed")
        send(other, f"{prefix}3")
        watch.wait_for(
            lambda data: isinstance(data, dict) and data.get("data") == f"{prefix}3", "the live one"
        )
        expect(message_items(page, f"{prefix}3")).to_have_count(0)  # held back until the gap is filled
        catch_up.release()
        expect(message_items(page, f"{prefix}3")).to_have_count(1)
        expect(message_items(page, f"{prefix}2")).to_have_count(1)
        assert ours(page, prefix) == [f"{prefix}{n}" for n in range(4)]
    finally:
        other.context.close()


def test_page_marks_a_send_while_reconnecting_as_not_sent_and_retry_sends_it(
    page: Page, chat_app: ChatApp, service: WebPubSubServiceClient
) -> None:
    name = unique_user("impatient")
    join(page, chat_app, name)
    negotiate = HeldRequests(page, NEGOTIATE)
    drop(service, name, page)
    send(page, "typed while away")
    unsent = message_items(page, "typed while away")
    expect(unsent).to_have_attribute("data-state", "failed")
    expect(unsent.get_by_test_id("message-state")).to_contain_text("not connected")
    negotiate.release()
    expect_connected(page)
    unsent.get_by_test_id("retry-button").click()
    expect(message_items(page, "typed while away")).to_have_attribute("data-state", "sent")
    expect(message_items(page, "typed while away")).to_have_count(1)


class UnavailableNegotiate:
    """Fault injection: every negotiation is answered 503, as a function app that is down would."""

    def __init__(self, page: Page) -> None:
        self.requests = 0
        page.route(NEGOTIATE, self._route)

    def _route(self, route: Route) -> None:
        self.requests += 1
        route.fulfill(status=503, body="injected: the function app is unavailable")


def test_page_waits_twice_as_long_after_each_failed_reconnect_up_to_30_s(
    page: Page, chat_app: ChatApp, service: WebPubSubServiceClient
) -> None:
    page.clock.install()  # the page's retry timers run on a clock the test moves
    name = unique_user("patient")
    join(page, chat_app, name)
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)
    negotiate = UnavailableNegotiate(page)
    drop(service, name, page)
    status = page.get_by_test_id("status")
    for attempt in range(1, 9):
        expect(status).to_have_attribute("data-attempt", str(attempt))
        delay = int(status.get_attribute("data-retry-ms") or "")
        ceiling = min(RETRY_CAP_MS, 1000 * 2 ** (attempt - 1))
        assert math.ceil(ceiling / 2) <= delay <= ceiling, f"attempt {attempt}: {delay} ms"
        page.clock.run_for(delay - 1)
        expect(status).to_contain_text("Reconnecting in")  # not tried yet
        page.clock.run_for(1)
        wait_until(page, lambda: negotiate.requests == attempt, f"attempt {attempt}")  # noqa: B023
    expect(status).to_have_attribute("data-state", "reconnecting")
