"""The chat page with PresenceBroadcast=group:<name>: presence goes only to that group, which the page
joins (negotiate names it), so the list of who is online still follows people coming and going."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_app import ChatApp, unique_user
from chat_page import join, online_user
from playwright.sync_api import Browser, expect

from devhost.stack import LocalStack, StackPorts

pytestmark = pytest.mark.e2e

GROUP = "lobby"


@pytest.fixture(scope="module")
def group_chat_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatApp]:
    """A stack of its own, with presence sent to a group."""
    root: Path = tmp_path_factory.mktemp("e2e-presence-group")
    local = LocalStack(
        ports=StackPorts.free(),
        log_dir=root / "logs",
        data_dir=root / "azurite",
        app_settings={"PresenceBroadcast": f"group:{GROUP}", "PresenceReconcileSchedule": "0 0 0 1 1 *"},
    )
    try:
        local.start()
        yield ChatApp(local.function_url)
    finally:
        local.stop()


def test_a_page_sees_others_come_and_go_through_the_presence_group(
    browser: Browser, group_chat_app: ChatApp
) -> None:
    watcher_context, other_context = browser.new_context(), browser.new_context()
    try:
        watcher, other = watcher_context.new_page(), other_context.new_page()
        join(watcher, group_chat_app, unique_user("watcher"))
        newcomer = unique_user("newcomer")
        join(other, group_chat_app, newcomer)
        expect(online_user(watcher, newcomer)).to_have_count(1)  # a notice after the snapshot
        other_context.close()
        expect(online_user(watcher, newcomer)).to_have_count(0)
    finally:
        watcher_context.close()
