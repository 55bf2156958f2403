"""Fixtures shared by every test folder: real servers started once per session, on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devhost.processes import (
    ManagedProcess,
    azurite_argv,
    free_port,
    port_in_use,
    table_connection_string,
)
from tests.integration.recorder import RestRecorder
from tests.keyless.local_issuer import LocalIssuer
from tests.keyless.tls import TlsFiles, make_tls_files

TESTS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Azurite:
    table_port: int
    connection_string: str
    process: ManagedProcess


@pytest.fixture(scope="session")
def session_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the logs of the servers this session starts."""
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def azurite(session_logs: Path) -> Iterator[Azurite]:
    """Real Table storage: Azurite in memory, on 10002 if free, else any free port."""
    table_port = free_port() if os.environ.get("CI") or port_in_use(10002) else 10002
    process = ManagedProcess(
        "azurite",
        azurite_argv(blob_port=free_port(), queue_port=free_port(), table_port=table_port),
        session_logs / "azurite.log",
    ).start()
    try:
        process.wait_for_port(table_port, timeout=60)
        yield Azurite(table_port, table_connection_string(table_port), process)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate authority made for this session and a server certificate for 127.0.0.1."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def local_issuer_server() -> Iterator[LocalIssuer]:
    """An Entra-shaped token issuer on 127.0.0.1 (tests/keyless/local_issuer.py)."""
    issuer = LocalIssuer().start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture
def issuer(local_issuer_server: LocalIssuer) -> LocalIssuer:
    """The local issuer with its first key, no faults and no requests counted."""
    local_issuer_server.reset()
    return local_issuer_server


@pytest.fixture(scope="session")
def rest_recorder() -> Iterator[RestRecorder]:
    """A local HTTP endpoint that records the REST calls of the app and answers as the service does."""
    recorder = RestRecorder().start()
    try:
        yield recorder
    finally:
        recorder.stop()
