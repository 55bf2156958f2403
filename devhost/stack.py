"""The whole system on one machine: Azurite, the Web PubSub emulator and the function host.

`python -m devhost.stack` is what `make start` runs; `LocalStack` is what the end-to-end tests start.
Both run the three servers the same way, as child processes stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import FrameType

from devhost.command_line import program_name
from devhost.processes import (
    PROJECT_ROOT,
    ManagedProcess,
    StartupError,
    azurite_argv,
    free_port,
    next_free_port,
    port_in_use,
    port_owner,
    python_module_argv,
    storage_connection_string,
)

EMULATOR_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"  # the emulator's well-known default
SYSTEM_EVENTS = "connect,connected,disconnected"


class PortTakenError(StartupError):
    """A port the stack needs is already in use; the message names the port, its role and its owner."""

    def __init__(self, message: str, *, flag: str, alternative: int) -> None:
        super().__init__(message)
        self.flag = flag  # the flag of `python -m devhost.stack` that moves this server
        self.alternative = alternative  # a port that is free now


# (StackPorts field, what listens there, flag of `python -m devhost.stack`)
PORT_ROLES = (
    ("function_host", "function host", "--function-port"),
    ("emulator", "Web PubSub emulator", "--emulator-port"),
    ("blob", "Azurite blob service", "--blob-port"),
    ("queue", "Azurite queue service", "--queue-port"),
    ("table", "Azurite table service", "--table-port"),
)


@dataclass(frozen=True)
class StackPorts:
    """The ports of the local system; the defaults are the ones Core Tools and the emulators use."""

    function_host: int = 7071
    emulator: int = 8080
    blob: int = 10000
    queue: int = 10001
    table: int = 10002

    @classmethod
    def free(cls) -> StackPorts:
        """Five distinct ports nothing listens on right now (for tests)."""
        chosen: list[int] = []
        while len(chosen) < len(fields(cls)):
            port = free_port()
            if port not in chosen:
                chosen.append(port)
        return cls(*chosen)

    def roles(self) -> list[tuple[str, int]]:
        """(what listens there, port) for every port."""
        return [(role, getattr(self, name)) for name, role, _ in PORT_ROLES]

    def flags(self) -> list[tuple[str, str, int]]:
        """(what listens there, the command-line flag that sets it, port) for every port."""
        return [(role, flag, getattr(self, name)) for name, role, flag in PORT_ROLES]


class LocalStack:
    """Azurite, the emulator (hub events -> the function host) and the function host, wired together."""

    def __init__(
        self,
        ports: StackPorts | None = None,
        log_dir: Path | None = None,
        data_dir: Path | None = None,
        hub: str = "chat",
        host: str = "127.0.0.1",
        *,
        app_dir: Path = PROJECT_ROOT,
        use_core_tools: bool | None = None,
        app_settings: dict[str, str] | None = None,
    ) -> None:
        """`data_dir=None` keeps Azurite in memory; `use_core_tools=None` uses `func` if it is on PATH;
        `app_settings` adds to (or overrides) the settings the function app gets."""
        self.ports = ports or StackPorts()
        self.log_dir = log_dir or PROJECT_ROOT / ".azurite" / "logs"
        self.data_dir = data_dir
        self.hub = hub
        self.host = host
        self.app_dir = app_dir
        self.core_tools = shutil.which("func") if use_core_tools is not False else None
        if use_core_tools and not self.core_tools:
            raise StartupError("Core Tools (`func`) is not on PATH")
        self.app_settings = dict(app_settings or {})
        self.azurite: ManagedProcess | None = None
        self.emulator: ManagedProcess | None = None
        self.function_host: ManagedProcess | None = None

    # --- what clients and the function app get ----------------------------------------------------------

    @property
    def function_url(self) -> str:
        return f"http://{self.host}:{self.ports.function_host}"

    @property
    def emulator_endpoint(self) -> str:
        # localhost, as in local.settings.json.example: the service host the app accepts events from
        return f"http://localhost:{self.ports.emulator}"

    @property
    def emulator_connection_string(self) -> str:
        return f"Endpoint={self.emulator_endpoint};AccessKey={EMULATOR_ACCESS_KEY};Version=1.0;"

    @property
    def storage_connection_string(self) -> str:
        return storage_connection_string(
            blob_port=self.ports.blob,
            queue_port=self.ports.queue,
            table_port=self.ports.table,
            host=self.host,
        )

    @property
    def upstream_url(self) -> str:
        return f"{self.function_url}/api/eventhandler"

    @property
    def function_host_kind(self) -> str:
        return "Core Tools (func start)" if self.core_tools else "dev host (python -m devhost)"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # --- processes -------------------------------------------------------------------------------------

    def check_ports(self) -> None:
        """Raise PortTakenError naming the first port in use (and its process, when visible)."""
        taken = [port for _, port in self.ports.roles()]
        for role, flag, port in self.ports.flags():
            if port_in_use(port, self.host):
                owner = port_owner(port)
                by = f" by {owner}" if owner else ""
                alternative = next_free_port(port, self.host, avoid=taken)
                raise PortTakenError(
                    f"port {port} (for the {role}) is already in use{by}", flag=flag, alternative=alternative
                )

    def _function_host_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FUNCTIONS_WORKER_RUNTIME": "python",
                "WebPubSubConnectionString": self.emulator_connection_string,
                "WebPubSubHub": self.hub,
                "AzureWebJobsStorage": self.storage_connection_string,
                "NegotiateAllowQueryUserId": "true",
                "PYTHONUNBUFFERED": "1",
                # Core Tools starts the Python worker with this interpreter (the project's venv)
                "languageWorkers__python__defaultExecutablePath": sys.executable,
            }
        )
        env.update(self.app_settings)
        return env

    def _function_host_process(self) -> ManagedProcess:
        port = str(self.ports.function_host)
        if self.core_tools:
            argv = [self.core_tools, "start", "--port", port]
        else:
            argv = python_module_argv(
                "devhost", "--host", self.host, "--port", port, "--app-dir", str(self.app_dir)
            )
        return ManagedProcess(
            "function host",
            argv,
            self.log_path("function-host"),
            env=self._function_host_env(),
            cwd=self.app_dir,
        )

    def _emulator_process(self) -> ManagedProcess:
        argv = python_module_argv(
            "wps_emulator",
            "--host", self.host,
            "--port", str(self.ports.emulator),
            "--access-key", EMULATOR_ACCESS_KEY,
            "--public-endpoint", self.emulator_endpoint,
            "--hub", self.hub,
            "--upstream", self.upstream_url,
            "--user-events", "*",
            "--system-events", SYSTEM_EVENTS,
        )  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return ManagedProcess("Web PubSub emulator", argv, self.log_path("emulator"), env=env)

    def _azurite_process(self) -> ManagedProcess:
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = azurite_argv(
            blob_port=self.ports.blob,
            queue_port=self.ports.queue,
            table_port=self.ports.table,
            location=self.data_dir,
        )
        return ManagedProcess("Azurite", argv, self.log_path("azurite"))

    def start(self) -> None:
        """Start the three servers, wait until each answers; on failure stop them, raise StartupError."""
        self.check_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("azurite", "emulator", "function-host"):
            self.log_path(name).write_text("")  # each run starts with fresh logs
        try:
            # Started together (they do not need each other to boot), then awaited one by one.
            self.azurite = self._azurite_process().start()
            self.emulator = self._emulator_process().start()
            self.function_host = self._function_host_process().start()
            for port in (self.ports.blob, self.ports.queue, self.ports.table):
                self.azurite.wait_for_port(port, timeout=60)
            self.emulator.wait_for_http(f"{self.emulator_endpoint}/api/health", timeout=30, method="HEAD")
            self._wait_for_function_host()
        except BaseException:
            self.stop()
            raise

    def _wait_for_function_host(self) -> None:
        assert self.function_host is not None
        timeout = 90 if self.core_tools else 30  # Core Tools starts the .NET host and then the worker
        self.function_host.wait_for_http(f"{self.function_url}/api/index", timeout=timeout)

    def restart_function_host(self) -> None:
        """Stop only the function host and start it again; waits until it answers."""
        if self.function_host is not None:
            self.function_host.stop()
        self.function_host = self._function_host_process().start()
        try:
            self._wait_for_function_host()
        except BaseException:
            self.function_host.stop()
            raise

    def stop_emulator(self, *, kill: bool = False) -> None:
        """Stop only the emulator. `kill=True` ends it with SIGKILL, as a crash would: its clients' sockets
        drop without a close frame and the app gets no `disconnected` event for them."""
        if self.emulator is None or self.emulator.process is None:
            return
        if kill and self.emulator.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.emulator.process.pid, signal.SIGKILL)
        self.emulator.stop()

    def start_emulator(self) -> None:
        """Start the emulator again (after stop_emulator); waits until it answers. It knows no connection."""
        self.emulator = self._emulator_process().start()
        try:
            self.emulator.wait_for_http(f"{self.emulator_endpoint}/api/health", timeout=30, method="HEAD")
        except BaseException:
            self.emulator.stop()
            raise

    def started_any(self) -> bool:
        """Whether start() got as far as starting a server (which stop() then stops)."""
        return any(p is not None for p in (self.azurite, self.emulator, self.function_host))

    def exited(self) -> list[ManagedProcess]:
        """The started processes that are no longer running."""
        return [p for p in (self.azurite, self.emulator, self.function_host) if p and not p.running()]

    def stop(self) -> None:
        """Stop everything this stack started, by PID (function host first, storage last)."""
        for process in (self.function_host, self.emulator, self.azurite):
            if process is not None:
                process.stop()


# --- `python -m devhost.stack` (make start) ----------------------------------------------------------------


class StopRequested(BaseException):
    """SIGINT or SIGTERM arrived: stop the stack."""


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def _parser() -> argparse.ArgumentParser:
    defaults = StackPorts()
    parser = argparse.ArgumentParser(
        prog=program_name("devhost.stack"),
        description="Run Azurite, the Web PubSub emulator and the function app together (make start; "
        'pass these flags to it as make start STACK_ARGS="...").',
    )
    for role, flag, default in defaults.flags():
        parser.add_argument(flag, type=int, default=default, help=f"port of the {role} (default {default})")
    parser.add_argument("--hub", default="chat", help="the hub the emulator sends to the app (default chat)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=PROJECT_ROOT / ".azurite",
        help="Azurite's data folder (default .azurite)",
    )
    parser.add_argument("--in-memory", action="store_true", help="keep Azurite's data in memory instead")
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=PROJECT_ROOT / ".azurite" / "logs",
        help="log folder (default .azurite/logs)",
    )
    parser.add_argument(
        "--devhost", action="store_true", help="use the dev host even if Core Tools (func) is installed"
    )
    return parser


def _relative(path: Path, resolve: bool = True) -> str:
    # resolve=False keeps a venv's bin/python (a symlink) as it is, not the interpreter it points to
    try:
        return str((path.resolve() if resolve else path.absolute()).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _banner(stack: LocalStack) -> str:
    ports = stack.ports
    data = f"data in {_relative(stack.data_dir)}/" if stack.data_dir else "data in memory"
    logs = _relative(stack.log_dir)
    return "\n".join(
        [
            "",
            f"Chat page: http://localhost:{ports.function_host}/api/index",
            "",
            f"  function app   {stack.function_url}/api/  ({stack.function_host_kind})",
            f"  Web PubSub     {stack.emulator_endpoint}  (hub {stack.hub!r} -> {stack.upstream_url})",
            f"  Azurite        blob {ports.blob}, queue {ports.queue}, table {ports.table}  ({data})",
            f"  logs           {logs}/function-host.log, {logs}/emulator.log, {logs}/azurite.log",
            "",
            "Ctrl-C stops all three.",
        ]
    )


def _stack_command() -> str:
    """This program as the user can type it: the venv's interpreter relative to here, when it is below."""
    return f"{_relative(Path(sys.executable), resolve=False)} -m devhost.stack"


def port_taken_advice(exc: PortTakenError) -> str:
    """How to get past a taken port, for `make start` and for the command line."""
    move = f"{exc.flag} {exc.alternative}"
    command = _stack_command()
    return (
        f"Stop that process, or move the server to another port:\n"
        f'  make start STACK_ARGS="{move}"\n'
        f"  (or {command} {move}; every flag: {command} --help)"
    )


def _run(stack: LocalStack) -> int:
    """Start the stack and wait until a server exits on its own (1) or a signal stops it (0)."""
    try:
        stack.check_ports()
        print(f"Starting Azurite, the Web PubSub emulator and the {stack.function_host_kind} ...", flush=True)
        stack.start()
        print(_banner(stack), flush=True)
        while not (dead := stack.exited()):
            time.sleep(0.5)
        for process in dead:
            print(
                f"\n{process.name} exited unexpectedly; the end of its log:\n{process.log_tail()}",
                file=sys.stderr,
            )
        return 1
    except PortTakenError as exc:
        print(f"Cannot start: {exc}.\n{port_taken_advice(exc)}", file=sys.stderr)
        return 1
    except StartupError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 1
    except StopRequested:
        print("\nStopping ...", flush=True)
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Start the stack, report where everything is, and run until Ctrl-C (or a server exits)."""
    args = _parser().parse_args(argv)
    ports = StackPorts(
        args.function_port, args.emulator_port, args.blob_port, args.queue_port, args.table_port
    )
    stack = LocalStack(
        ports,
        log_dir=args.log_dir,
        data_dir=None if args.in_memory else args.data_dir,
        hub=args.hub,
        use_core_tools=False if args.devhost else None,
    )
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    try:
        return _run(stack)
    finally:
        # A second Ctrl-C must not interrupt the clean-up half way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack.started_any():
            stack.stop()
            print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
