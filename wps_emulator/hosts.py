"""Which host names are this machine: the loopback names every local client may use to reach the emulator."""

from __future__ import annotations

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for `localhost`, `127.0.0.1` and `::1` (also written `[::1]`), in any letter case."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS
