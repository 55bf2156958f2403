"""Fixtures of the emulator's Entra and TLS tests: a local token issuer and a test certificate authority."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.keyless.local_issuer import LocalIssuer
from tests.keyless.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="session")
def emulator_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate authority made for this session and a server certificate for 127.0.0.1."""
    return make_tls_files(tmp_path_factory.mktemp("emulator-tls"))


@pytest.fixture(scope="session")
def entra_issuer_server() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer().start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture
def entra_issuer(entra_issuer_server: LocalIssuer) -> LocalIssuer:
    """The local Entra-shaped issuer with its first key, no faults and no requests counted."""
    entra_issuer_server.reset()
    return entra_issuer_server
