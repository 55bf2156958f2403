"""Constants every test folder shares: the local access key and the connection strings built from it.

Tests import these instead of writing the key or a connection string again; the Azurite storage
connection string comes from devhost.processes (the code `make start` uses), re-exported here.
"""

from __future__ import annotations

from devhost.processes import storage_connection_string, table_connection_string

# The access key of the emulator (and of Microsoft's emulator): the local default, not a secret.
ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
HUB = "chat"


def web_pubsub_connection_string(endpoint: str, key: str = ACCESS_KEY) -> str:
    """`Endpoint=<endpoint>;AccessKey=<key>;Version=1.0;`, the shape the service SDKs read."""
    return f"Endpoint={endpoint};AccessKey={key};Version=1.0;"


__all__ = [
    "ACCESS_KEY",
    "HUB",
    "storage_connection_string",
    "table_connection_string",
    "web_pubsub_connection_string",
]
