"""The emulator is killed (SIGKILL, as in a crash) and started again while chat pages are open.

Every socket drops without a close frame and the app never hears `disconnected` for those connections.
The pages show that they are reconnecting and keep trying while the service is down; once it is back,
one page is held off (its negotiation waits) while another talks, then reconnects and fills in what
it missed. The presence rows of the killed connections stay until the reconciliation timer, run
through the host's admin route, asks the restarted emulator about them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from chat_app import ChatApp, unique_user
from chat_page import (
    HeldRequests,
    expect_connected,
    join,
    message_items,
    message_texts,
    online_user,
    presence_line,
    send,
    wait_until,
)
from playwright.sync_api import Browser, expect

from devhost.stack import LocalStack

pytestmark = pytest.mark.e2e

SECOND_ATTEMPT_OR_LATER = re.compile(r"^([2-9]|\d\d+)$")


@dataclass
class Outage:
    reader: str
    talker: str
    ghost: str  # a user whose only connection died with the emulator and who never came back
    status_while_down: str
    attempts_while_down: int
    listed_before_reconciling: dict[str, int]
    reader_listed_ghost_before_reconciling: int
    listed_after_reconciling: dict[str, int]
    reader_listed_ghost_after_reconciling: int
    reader_saw_ghost_leave: int
    texts: list[
        str
    ]  # what the talker sent: one before the outage, three while the reader was away, one after
    reader_texts: list[str]  # the reader's messages from the talker, top to bottom
    reader_sources: list[str | None]


def poll(holds: Callable[[], bool], what: str, within: float = 15.0) -> None:
    """Poll `holds` (an HTTP read of the app) until it is true."""
    deadline = time.monotonic() + within
    while not holds():
        assert time.monotonic() < deadline, f"waited {within} s for {what}"
        time.sleep(0.1)


def outage(browser: Browser, app: ChatApp, stack: LocalStack) -> Outage:
    reader_name, talker_name, ghost_name = unique_user("reader"), unique_user("talker"), unique_user("ghost")
    texts = [f"{talker_name} #{n}" for n in range(5)]
    contexts = [browser.new_context() for _ in range(3)]
    reader, talker, ghost = (context.new_page() for context in contexts)
    try:
        for page, name in ((reader, reader_name), (talker, talker_name), (ghost, ghost_name)):
            join(page, app, name)
        send(talker, texts[0])
        expect(message_items(reader, texts[0])).to_have_count(1)

        stack.stop_emulator(kill=True)
        status = reader.get_by_test_id("status")
        expect(status).to_have_attribute("data-state", "reconnecting")
        expect(status).to_have_attribute("data-attempt", SECOND_ATTEMPT_OR_LATER)  # one try failed already
        status_while_down, attempts = status.inner_text(), int(status.get_attribute("data-attempt") or 0)
        contexts[2].close()  # the ghost's socket is already dead: no `disconnected` will ever come
        held = HeldRequests(reader, "**/api/negotiate?*")
        stack.start_emulator()

        expect_connected(talker)
        for text in texts[1:4]:
            send(talker, text)
            expect(message_items(talker, text)).to_have_attribute("data-state", "sent")
        listed_before = app.online(reader_name)
        wait_until(reader, lambda: held.kept >= 1, "the reader to try again")
        held.release()
        expect_connected(reader)
        expect(message_items(reader, texts[3])).to_have_count(1)
        # Only the snapshot from /api/presence can list the ghost: no notice about it came since.
        expect(online_user(reader, ghost_name)).to_have_count(1)
        ghost_before = online_user(reader, ghost_name).count()

        app.run_timer("reconcile_presence")
        expect(online_user(reader, ghost_name)).to_have_count(0)
        poll(lambda: app.online(reader_name).get(reader_name) == 1, "the reader's killed connection to go")
        listed_after = app.online(reader_name)

        send(talker, texts[4])
        expect(message_items(reader, texts[4])).to_have_count(1)
        from_talker = reader.get_by_test_id("message").filter(has_text=f"{talker_name} #")
        return Outage(
            reader=reader_name,
            talker=talker_name,
            ghost=ghost_name,
            status_while_down=status_while_down,
            attempts_while_down=attempts,
            listed_before_reconciling=listed_before,
            reader_listed_ghost_before_reconciling=ghost_before,
            listed_after_reconciling=listed_after,
            reader_listed_ghost_after_reconciling=online_user(reader, ghost_name).count(),
            reader_saw_ghost_leave=presence_line(reader, "disconnected", ghost_name).count(),
            texts=texts,
            reader_texts=[text for text in message_texts(reader) if text.startswith(f"{talker_name} #")],
            reader_sources=[item.get_attribute("data-source") for item in from_talker.all()],
        )
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="module")
def story(browser: Browser, chat_app: ChatApp, stack: LocalStack) -> Outage:
    return outage(browser, chat_app, stack)


def test_page_shows_it_is_reconnecting_while_the_service_is_down(story: Outage) -> None:
    assert story.status_while_down.startswith("Connection lost")
    assert "Reconnecting in" in story.status_while_down
    assert story.attempts_while_down >= 2


def test_page_fills_in_what_it_missed_once_in_order(story: Outage) -> None:
    assert story.reader_texts == story.texts
    assert story.reader_sources == ["live", "catch-up", "catch-up", "catch-up", "live"]


def test_connections_killed_with_the_service_stay_listed_until_reconciled(story: Outage) -> None:
    assert story.listed_before_reconciling.get(story.ghost) == 1
    assert story.listed_before_reconciling.get(story.reader) == 1  # the killed one; the new one waits
    assert story.reader_listed_ghost_before_reconciling == 1


def test_reconciliation_removes_the_connections_the_restarted_service_does_not_know(story: Outage) -> None:
    assert story.ghost not in story.listed_after_reconciling
    assert story.listed_after_reconciling.get(story.reader) == 1
    assert story.listed_after_reconciling.get(story.talker) == 1


def test_page_drops_a_reconciled_user_from_its_list(story: Outage) -> None:
    assert story.reader_listed_ghost_after_reconciling == 0
    assert story.reader_saw_ghost_leave == 1
