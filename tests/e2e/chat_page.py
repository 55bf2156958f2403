"""Driving the chat page in headless Chromium (Debian's browser, through Playwright) and reading it back.

The data-testid hooks used here are listed in docs/e2e.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from chat_app import ChatApp, unique_user
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ACK_TIMEOUT_MS = 10_000  # chat.js
RETRY_CAP_MS = 30_000  # chat.js

expect.set_options(timeout=15_000)


def launch_chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def join(page: Page, chat_app: ChatApp, name: str) -> None:
    """Open the page, enter `name`, connect, and wait until the page can send."""
    page.goto(chat_app.page_url)
    page.get_by_test_id("name-input").fill(name)
    page.get_by_test_id("connect-button").click()
    expect_connected(page)
    # The latest messages are shown: what is sent from now on arrives live, not in that first page.
    expect(page.get_by_test_id("log")).to_have_attribute("aria-busy", "false")


def expect_connected(page: Page) -> None:
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "connected")
    expect(page.get_by_test_id("message-input")).to_be_enabled()


def send(page: Page, text: str) -> None:
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("send-button").click()


def message_items(page: Page, text: str) -> Locator:
    """The log items of chat messages whose text is exactly `text`."""
    return page.get_by_test_id("message").filter(
        has=page.get_by_test_id("message-text").get_by_text(text, exact=True)
    )


def message_texts(page: Page) -> list[str]:
    """The texts of the chat messages in the log, top to bottom."""
    return page.get_by_test_id("message-text").all_text_contents()


def online_user(page: Page, user_id: str) -> Locator:
    """The entries of `user_id` in the page's list of who is online."""
    return page.get_by_test_id("online-user").and_(page.locator(f'[data-user="{user_id}"]'))


def presence_line(page: Page, event: str, user_id: str) -> Locator:
    """The log's "joined" (connected) or "left" (disconnected) lines of `user_id`."""
    lines = page.get_by_test_id("presence")
    return lines.and_(page.locator(f'[data-user="{user_id}"][data-event="{event}"]'))


def fence(page: Page) -> None:
    """Wait until the page has handled every frame it received before this call: a message it sends now
    comes back on the same socket after them, and frames are handled in order."""
    text = f"fence {unique_user('f')}"
    send(page, text)
    expect(message_items(page, text)).to_have_attribute("data-state", "sent")


class HeldRequests:
    """Fault injection: requests to a route of the app wait until the test lets them through.

    While holding, each matching request is kept; `release()` lets the kept ones and every later one go
    on to the real function app. With `answer_early`, a kept request is answered by the app at once and
    only the delivery of that answer to the page waits (a stale answer, as a slow network gives).
    """

    def __init__(
        self, page: Page, pattern: str | Callable[[str], bool], *, answer_early: bool = False
    ) -> None:
        self.holding = True
        self.answer_early = answer_early
        self.seen = 0
        self._kept: list[Callable[[], None]] = []
        page.route(pattern, self._route)

    def _route(self, route: Route) -> None:
        self.seen += 1
        if not self.holding:
            route.continue_()
        elif self.answer_early:
            response = route.fetch()
            self._kept.append(lambda: route.fulfill(response=response))
        else:
            self._kept.append(route.continue_)

    @property
    def kept(self) -> int:
        return len(self._kept)

    def release(self) -> None:
        self.holding = False
        kept, self._kept = self._kept, []
        for let_go in kept:
            let_go()


def wait_until(page: Page, holds: Callable[[], bool], what: str, within_ms: int = 15_000) -> None:
    """Wait until `holds()` is true; meanwhile Playwright runs the route and socket callbacks it has
    queued (they only run while the test waits on the page)."""
    deadline = time.monotonic() + within_ms / 1000
    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_ms} ms for {what}")
        page.wait_for_timeout(20)


class SocketWatch:
    """What the page's WebSockets receive from the service: the data of each server message, in order.

    Only watches (nothing is changed); the page handles each frame right after it is recorded here.
    """

    def __init__(self, page: Page) -> None:
        self.page = page
        self.received: list[Any] = []
        page.on("websocket", lambda socket: socket.on("framereceived", self._record))

    def _record(self, payload: str | bytes) -> None:
        frame = json.loads(payload)
        if frame.get("type") == "message" and frame.get("from") == "server":
            self.received.append(frame.get("data"))

    def wait_for(self, matches: Callable[[Any], bool], what: str) -> None:
        self.wait_for_count(matches, 1, what)

    def wait_for_count(self, matches: Callable[[Any], bool], count: int, what: str) -> None:
        """Wait until at least `count` of the received server messages match."""
        wait_until(
            self.page,
            lambda: sum(1 for data in self.received if matches(data)) >= count,
            f"{what} (received so far: {self.received})",
        )
