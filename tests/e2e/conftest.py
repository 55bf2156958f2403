"""The whole local stack, started once per session for the end-to-end tests.

Azurite keeps its data in a folder (not in memory), so a restarted function host reads what was
stored before; the emulator and the function host run as they do under `make start`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat_app import ChatApp

from devhost.stack import LocalStack, StackPorts


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("e2e-stack")
    local = LocalStack(ports=StackPorts.free(), log_dir=root / "logs", data_dir=root / "azurite")
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def chat_app(stack: LocalStack) -> ChatApp:
    return ChatApp(stack.function_url)
