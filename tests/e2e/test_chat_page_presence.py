"""The chat page's list of who is online: a snapshot from /api/presence on connect, then the presence
notices; one entry per user, whatever the order or repetition of the notices."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from chat_app import ChatApp, is_presence, unique_user
from chat_page import HeldRequests, SocketWatch, fence, join, online_user, presence_line, wait_until
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

pytestmark = pytest.mark.e2e


@pytest.fixture
def windows(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser windows besides `page` (each its own context: own storage, own sockets)."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def new_window(browser: Browser, windows: list[BrowserContext]) -> Page:
    context = browser.new_context()
    windows.append(context)
    return context.new_page()


def test_two_windows_each_list_both_users(
    browser: Browser, page: Page, chat_app: ChatApp, windows: list[BrowserContext]
) -> None:
    first, second = unique_user("ann"), unique_user("bob")
    join(page, chat_app, first)
    other = new_window(browser, windows)
    join(other, chat_app, second)
    for window in (page, other):
        expect(online_user(window, first)).to_have_count(1)
        expect(online_user(window, second)).to_have_count(1)
    expect(online_user(page, first)).to_contain_text("(you)")


def test_a_second_tab_of_a_user_does_not_add_an_entry(
    browser: Browser, page: Page, chat_app: ChatApp, windows: list[BrowserContext]
) -> None:
    watch = SocketWatch(page)
    tabs_user = unique_user("tabs")
    join(page, chat_app, unique_user("watcher"))
    first_tab = new_window(browser, windows)
    join(first_tab, chat_app, tabs_user)
    expect(online_user(page, tabs_user)).to_have_count(1)
    join(first_tab.context.new_page(), chat_app, tabs_user)
    # The second tab's notice says "unchanged", or "online" again: a duplicate the page must absorb.
    watch.wait_for_count(lambda data: is_presence(data, "connected", tabs_user), 2, "both tabs' notices")
    fence(page)
    expect(online_user(page, tabs_user)).to_have_count(1)
    expect(presence_line(page, "connected", tabs_user)).to_have_count(1)


def test_closing_a_second_tab_keeps_the_user_listed(
    browser: Browser, page: Page, chat_app: ChatApp, windows: list[BrowserContext]
) -> None:
    watch = SocketWatch(page)
    tabs_user = unique_user("tabs")
    join(page, chat_app, unique_user("watcher"))
    first_tab = new_window(browser, windows)
    join(first_tab, chat_app, tabs_user)
    second_tab = first_tab.context.new_page()
    join(second_tab, chat_app, tabs_user)
    second_tab.close()
    watch.wait_for(lambda data: is_presence(data, "disconnected", tabs_user), "the second tab's leaving")
    fence(page)
    expect(online_user(page, tabs_user)).to_have_count(1)
    expect(presence_line(page, "disconnected", tabs_user)).to_have_count(0)


def test_closing_the_last_tab_of_a_user_removes_the_entry(
    browser: Browser, page: Page, chat_app: ChatApp, windows: list[BrowserContext]
) -> None:
    leaver = unique_user("leaver")
    join(page, chat_app, unique_user("watcher"))
    other = new_window(browser, windows)
    join(other, chat_app, leaver)
    expect(online_user(page, leaver)).to_have_count(1)
    other.get_by_test_id("disconnect-button").click()
    expect(online_user(page, leaver)).to_have_count(0)
    expect(presence_line(page, "disconnected", leaver)).to_have_count(1)


def test_changes_that_arrive_before_the_snapshot_are_not_lost(
    browser: Browser, page: Page, chat_app: ChatApp, windows: list[BrowserContext]
) -> None:
    staying, arriving, leaving = unique_user("staying"), unique_user("arriving"), unique_user("leaving")
    watch = SocketWatch(page)
    before = new_window(browser, windows)
    join(before, chat_app, leaving)
    # Fault injection: the snapshot is read at once but reaches the page only after the test lets it.
    snapshot = HeldRequests(page, "**/api/presence?*", answer_early=True)
    join(page, chat_app, staying)
    wait_until(page, lambda: snapshot.kept == 1, "the page to ask who is online")
    join(new_window(browser, windows), chat_app, arriving)
    before.get_by_test_id("disconnect-button").click()
    watch.wait_for(lambda data: is_presence(data, "connected", arriving), "the arrival")
    watch.wait_for(lambda data: is_presence(data, "disconnected", leaving), "the leaving")
    fence(page)
    snapshot.release()  # says `leaving` is online and knows nothing of `arriving`
    expect(online_user(page, staying)).to_have_count(1)
    expect(online_user(page, arriving)).to_have_count(1)
    expect(online_user(page, leaving)).to_have_count(0)


class ReorderingService:
    """Fault injection: passes the page's WebSocket through to the real service, except that the
    `connected` notice of `user_id` reaches the page only after that connection's `disconnected` one."""

    def __init__(self, page: Page, user_id: str) -> None:
        self.user_id = user_id
        self.swapped = 0
        page.route_web_socket("**/client/hubs/**", self._route)

    def _route(self, socket: WebSocketRoute) -> None:
        service = socket.connect_to_server()
        held: dict[str, str | bytes] = {}
        left: set[str] = set()

        def from_service(frame: str | bytes) -> None:
            data = json.loads(frame).get("data")
            if is_presence(data, "connected", self.user_id) and data["connectionId"] not in left:
                held[data["connectionId"]] = frame
                return
            socket.send(frame)
            if is_presence(data, "disconnected", self.user_id):
                left.add(data["connectionId"])
                if data["connectionId"] in held:
                    socket.send(held.pop(data["connectionId"]))
                    self.swapped += 1

        service.on_message(from_service)


def test_a_join_that_arrives_after_its_leaving_does_not_list_the_user(
    browser: Browser, page: Page, chat_app: ChatApp, windows: list[BrowserContext]
) -> None:
    late = unique_user("late")
    service = ReorderingService(page, late)
    join(page, chat_app, unique_user("watcher"))
    other = new_window(browser, windows)
    join(other, chat_app, late)
    other.get_by_test_id("disconnect-button").click()
    wait_until(page, lambda: service.swapped == 1, "the join to be delivered after the leaving")
    fence(page)
    expect(online_user(page, late)).to_have_count(0)
    expect(presence_line(page, "connected", late)).to_have_count(0)
