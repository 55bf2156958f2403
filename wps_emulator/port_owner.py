"""Which process listens on a TCP port (Linux `/proc`), so that "port in use" can say who holds it.

Best effort: on other systems, or for another user's process, the answer is None.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

_PROC = Path("/proc")
_LISTEN = "0A"  # TCP state in /proc/net/tcp


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (_PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _holds(pid_dir: Path, sockets: set[str]) -> bool:
    with contextlib.suppress(OSError):
        for fd in (pid_dir / "fd").iterdir():
            with contextlib.suppress(OSError):
                if fd.readlink().name in sockets:
                    return True
    return False


def port_owner(port: int) -> str | None:
    """`pid 4242 (python -m wps_emulator)` for the process listening on `port`, when it can be seen."""
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not sockets:
        return None
    for pid_dir in _PROC.iterdir():
        if pid_dir.name.isdigit() and _holds(pid_dir, sockets):
            try:
                command = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                command = ""
            return f"pid {pid_dir.name} ({command.strip()[:80] or '?'})"
    return None
