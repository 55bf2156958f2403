"""The whole local stack, started once per session for the end-to-end tests, and the browser.

Azurite keeps its data in a folder (not in memory), so a restarted function host reads what was
stored before; the emulator and the function host run as they do under `make start`, except that the
presence reconciliation timer runs only when a test asks for it (through the host's admin route).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.messaging.webpubsubservice import WebPubSubServiceClient
from chat_app import ChatApp
from chat_page import launch_chromium
from playwright.sync_api import Browser, Dialog, Page

from devhost.stack import LocalStack, StackPorts
from tests.constants import HUB

NEVER_ON_ITS_OWN = "0 0 0 1 1 *"  # once a year, on 1 January at midnight


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("e2e-stack")
    local = LocalStack(
        ports=StackPorts.free(),
        log_dir=root / "logs",
        data_dir=root / "azurite",
        app_settings={"PresenceReconcileSchedule": NEVER_ON_ITS_OWN},
    )
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def chat_app(stack: LocalStack) -> ChatApp:
    return ChatApp(stack.function_url)


@pytest.fixture(scope="session")
def service(stack: LocalStack) -> Iterator[WebPubSubServiceClient]:
    """Microsoft's service SDK on the emulator's REST API: what an app uses to close connections."""
    with WebPubSubServiceClient.from_connection_string(stack.emulator_connection_string, hub=HUB) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """Messages of every alert/confirm/prompt the page opens (each dismissed)."""
    opened: list[str] = []

    def record(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened
