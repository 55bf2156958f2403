"""Start and stop the local servers (Azurite, the emulator, the function host) as child processes.

Shared by `make start` and the test fixtures so that both run the system the same way.
Every process is started by us, listens on 127.0.0.1, and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class StartupError(RuntimeError):
    """A server did not come up; the message says which and shows the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def next_free_port(after: int, host: str = "127.0.0.1", avoid: Sequence[int] = ()) -> int:
    """The first port above `after` that nothing listens on (to suggest in a message); a random free one
    if the next hundred are all taken."""
    for port in range(after + 1, min(after + 101, 65536)):
        if port not in avoid and not port_in_use(port, host):
            return port
    return free_port()


@dataclass
class ManagedProcess:
    """A child process with its output in a log file, stopped by PID."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path = PROJECT_ROOT
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - argv built by this project
            list(self.argv),
            cwd=self.cwd,
            env=dict(self.env) if self.env is not None else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for_port(self, port: int, timeout: float = 30.0) -> None:
        self._wait(lambda: port_in_use(port), f"port {port}", timeout)

    def wait_for_http(self, url: str, timeout: float = 30.0, method: str = "GET") -> None:
        def answers() -> bool:
            request = urllib.request.Request(url, method=method)  # noqa: S310 - local URL
            try:
                with urllib.request.urlopen(request, timeout=2):  # noqa: S310
                    return True
            except urllib.error.HTTPError:
                return True  # any HTTP answer means the server is up
            except OSError:
                return False

        self._wait(answers, url, timeout)

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise StartupError(f"{self.name} exited before {what} answered:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.1)
        raise StartupError(f"{self.name} did not answer on {what} within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process (and its process group, which it leads), then SIGKILL if needed."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def azurite_binary() -> str:
    local = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise StartupError("Azurite is not installed: run `npm ci` in the project folder (or `make setup`).")
    return found


def azurite_argv(
    *, blob_port: int, queue_port: int, table_port: int, location: Path | None = None
) -> list[str]:
    """Azurite with all three services on 127.0.0.1; in memory unless a data folder is given."""
    argv = [
        azurite_binary(),
        "--blobHost", "127.0.0.1", "--blobPort", str(blob_port),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue_port),
        "--tableHost", "127.0.0.1", "--tablePort", str(table_port),
        "--disableTelemetry", "--skipApiVersionCheck", "--silent",
    ]  # fmt: skip
    if location is None:
        argv.append("--inMemoryPersistence")
    else:
        argv += ["--location", str(location)]
    return argv


def table_connection_string(table_port: int) -> str:
    """The Azurite storage connection string for a table service on 127.0.0.1:<port>."""
    return storage_connection_string(table_port=table_port)


def python_module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def storage_connection_string(
    *, table_port: int, blob_port: int | None = None, queue_port: int | None = None, host: str = "127.0.0.1"
) -> str:
    """Azurite's connection string for the services given (all three is what `func start` needs)."""
    account = "devstoreaccount1"
    ports = {"Blob": blob_port, "Queue": queue_port, "Table": table_port}
    prefix = f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={AZURITE_ACCOUNT_KEY};"
    endpoints = (f"{name}Endpoint=http://{host}:{port}/{account};" for name, port in ports.items() if port)
    return prefix + "".join(endpoints)


def _listening_socket_inodes(port: int) -> set[str]:
    """Inodes of sockets listening on a TCP port, from /proc/net/tcp{,6} (Linux only; empty elsewhere)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def port_owner(port: int) -> str | None:
    """`pid N (command line)` of the process listening on a port, if this user may see it; else None."""
    inodes = _listening_socket_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {proc.name} ({' '.join(command.split())[:120]})"
        except OSError:
            continue
    return None
