"""Run the blocks of the docs as a user would, in copies of the project, on free ports.

- Each page runs in its own copy of the project (the files a clone has, plus uncommitted work), with
  `.venv` and `node_modules` linked to the checkout's, so `cp local.settings.json.example ...` and
  `.azurite/` never touch the checkout. Blocks of a page run in page order, each in a new shell, as
  if typed into a new terminal in the project folder.
- That terminal does not have the venv active: the checkout's `.venv/bin` is taken off `PATH` and
  `VIRTUAL_ENV` is unset, so a block must `source .venv/bin/activate` or call `.venv/bin/python`,
  as the docs tell the user. Settings the app or the emulator read from the environment are unset too.
- Ports: every server listens on 127.0.0.1 on a free port. The documented ports (7071 function app,
  8080 emulator, 10000-10002 Azurite) are replaced by free ones in each block's text, in expected
  output, in `file` blocks and in the copy's `local.settings.json.example`; `UseDevelopmentStorage=true`,
  which means Azurite on 10000-10002, is replaced by the explicit connection string for the free
  ports; and `WPS_EMULATOR_PORT` carries the free emulator port, so `python -m wps_emulator` without
  `--port` does not take 8080. Each page has its own ports; the `make start` stack has its own.
- `make start` is run as the Makefile's `start` recipe (`$(PY) -m devhost.stack`, read from the
  Makefile; the set-up it depends on is already done) with port flags for the free ports, started once
  per session in its own copy of the project and stopped by PID at the end. `stack` blocks run in that
  copy, against it. `make setup`, `make test`, `make lint` and `make bench` are never run by the doc
  tests: the pages mark them skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field
from pathlib import Path

from devhost.processes import PROJECT_ROOT, ManagedProcess, StartupError
from devhost.stack import StackPorts
from tests.constants import storage_connection_string
from tests.docs.doc_blocks import RUNNABLE_KINDS, Block, Marker, output_matches

DOCUMENTED_PORTS = StackPorts()  # 7071, 8080, 10000, 10001, 10002
_PORT_NUMBER = re.compile(r"(?<![\w.])(" + "|".join(str(p) for p in astuple(DOCUMENTED_PORTS)) + r")(?!\w)")
BLOCK_TIMEOUT_S = 60.0
SERVER_READY_TIMEOUT_S = 60.0
STACK_READY_TIMEOUT_S = 90.0
STACK_READY_LINE = "Ctrl-C stops all three."
# Settings a user's fresh terminal does not have; a developer's own values must not leak into the docs' runs.
_CLEARED_ENVIRONMENT = re.compile(
    r"^(VIRTUAL_ENV|PYTHONHOME|PYTHONPATH|WPS_EMULATOR_.*|DEVHOST_.*|WebPubSub.*|AzureWebJobs.*|"
    r"Negotiate.*|Presence.*|Messages.*|Dependency.*|FUNCTIONS_.*)$"
)


class DocBlockFailed(AssertionError):
    """A block did not do what its page says; the message shows the block and what happened."""


@dataclass(frozen=True)
class PortMap:
    """Documented port -> the free port used instead."""

    ports: StackPorts

    def port(self, documented: int) -> int:
        """The free port for a documented one (other numbers stay as they are)."""
        mapping = dict(zip(astuple(DOCUMENTED_PORTS), astuple(self.ports), strict=True))
        return mapping.get(documented, documented)

    def rewrite(self, text: str) -> str:
        text = _PORT_NUMBER.sub(lambda match: str(self.port(int(match.group()))), text)
        return text.replace("UseDevelopmentStorage=true", self.storage_connection_string)

    @property
    def storage_connection_string(self) -> str:
        return storage_connection_string(
            blob_port=self.ports.blob, queue_port=self.ports.queue, table_port=self.ports.table
        )


def project_copy(destination: Path, ports: PortMap) -> Path:
    """The files a clone of this checkout has (plus uncommitted work), `.venv` and `node_modules` linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for shared in (".venv", "node_modules"):
        (destination / shared).symlink_to(PROJECT_ROOT / shared, target_is_directory=True)
    example = destination / "local.settings.json.example"
    example.write_text(ports.rewrite(example.read_text()))
    return destination


def terminal_environment(ports: PortMap) -> dict[str, str]:
    """A new terminal's environment: no venv on PATH, no app or emulator settings, the emulator's port."""
    venv_bins = {str(Path(sys.prefix) / "bin"), str(PROJECT_ROOT / ".venv" / "bin")}
    env = {name: value for name, value in os.environ.items() if not _CLEARED_ENVIRONMENT.match(name)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p not in venv_bins)
    env["WPS_EMULATOR_PORT"] = str(ports.ports.emulator)
    return env


def shell_argv(script: str) -> list[str]:
    """bash stopping at the first failing command (also inside a pipe)."""
    return ["bash", "-e", "-o", "pipefail", "-c", script]


def run_command(argv: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> tuple[int, str]:
    """Run to completion (its whole process group is killed after BLOCK_TIMEOUT_S); (status, output)."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(stdin, timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            return -1, f"{output}\n[stopped after {BLOCK_TIMEOUT_S:.0f} s]"
        return process.returncode, output


def wait_until(condition: Callable[[], bool], timeout: float, alive: Callable[[], bool]) -> bool:
    """Poll until the condition holds (True), the timeout passes or `alive` turns false (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not alive():
            return condition()
        time.sleep(0.1)
    return False


def describe(block: Block, text: str, output: str, problem: str) -> str:
    return f"{block.id}: {problem}\n--- the block as run ---\n{text}--- its output ---\n{output}"


_MAKE_VARIABLE = re.compile(r"\$\((\w+)\)")


def make_start_argv(makefile: str, project: Path) -> list[str]:
    """The command of the Makefile's `start` target, e.g. `.venv/bin/python -m devhost.stack`.

    `$(PY)` is the project's venv Python and `$(STACK_ARGS)` (extra flags a user may pass) is empty;
    any other variable, or a second command, means this reading of the Makefile is out of date.
    """
    lines = makefile.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^start\s*:", line)), None)
    if start is None:
        raise DocBlockFailed("the Makefile has no `start` target")
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    values = {"PY": str(project / ".venv" / "bin" / "python"), "STACK_ARGS": ""}
    unknown = [name for line in recipe for name in _MAKE_VARIABLE.findall(line) if name not in values]
    if len(recipe) != 1 or unknown:
        raise DocBlockFailed(
            f"the doc tests run `make start` as its one-line recipe with $(PY) and $(STACK_ARGS); "
            f"the Makefile now says {recipe}: update make_start_argv in tests/docs/doc_runner.py"
        )
    return _MAKE_VARIABLE.sub(lambda match: values[match.group(1)], recipe[0]).split()


@dataclass
class MakeStartStack:
    """`make start`, i.e. `.venv/bin/python -m devhost.stack`, on free ports in its own project copy."""

    workspace: Path
    ports: PortMap
    process: ManagedProcess | None = None

    def start(self) -> None:
        p = self.ports.ports
        argv = [
            *make_start_argv((self.workspace / "Makefile").read_text(), self.workspace),
            "--function-port", str(p.function_host), "--emulator-port", str(p.emulator),
            "--blob-port", str(p.blob), "--queue-port", str(p.queue), "--table-port", str(p.table),
        ]  # fmt: skip
        self.process = ManagedProcess(
            "make start (python -m devhost.stack)",
            argv,
            self.workspace / ".doc-test" / "make-start.log",
            env=terminal_environment(self.ports),
            cwd=self.workspace,
        ).start()
        if not wait_until(
            lambda: STACK_READY_LINE in self.output(), STACK_READY_TIMEOUT_S, self.process.running
        ):
            self.stop()
            raise StartupError(f"make start did not report ready:\n{self.output()}")

    def output(self) -> str:
        return self.process.log_path.read_text(errors="replace") if self.process else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class PageRun:
    """The blocks of one page, run in order in the page's own copy of the project."""

    blocks: list[Block]
    workspace_factory: Callable[[PortMap], Path]
    stack_factory: Callable[[], MakeStartStack]
    ports: PortMap = field(default_factory=lambda: PortMap(StackPorts.free()))
    done: dict[str, str | None] = field(default_factory=dict)  # block id -> failure message or None
    servers: list[tuple[Marker, ManagedProcess]] = field(default_factory=list)
    _workspace: Path | None = None

    @property
    def workspace(self) -> Path:
        if self._workspace is None:
            self._workspace = self.workspace_factory(self.ports)
        return self._workspace

    def run_through(self, target: Block) -> None:
        """Run the page's earlier blocks not run yet (raising if one fails), then `target`."""
        for block in self.blocks:
            if block == target:
                break
            marker = block.marker()
            if marker and marker.kind in (*RUNNABLE_KINDS, "file") and block.id not in self.done:
                self.execute(block)
                if (failure := self.done[block.id]) is not None:
                    raise DocBlockFailed(f"{target.id} comes after a block that failed:\n{failure}")
        self.execute(target)
        if (failure := self.done[target.id]) is not None:
            raise DocBlockFailed(failure)

    def execute(self, block: Block) -> None:
        try:
            self._execute(block)
        except DocBlockFailed as exc:
            self.done[block.id] = str(exc)
        else:
            self.done[block.id] = None

    def _execute(self, block: Block) -> None:
        marker = block.marker()
        assert marker is not None
        if marker.kind == "file":
            target = self.workspace / marker.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.ports.rewrite(block.text))
        elif marker.kind == "server":
            self._start_server(block, marker)
        elif marker.kind == "stack":
            stack = self.stack_factory()
            self._run_to_end(block, stack.workspace, stack.ports)
        elif marker.kind == "run":
            self._run_to_end(block, self.workspace, self.ports)
        elif marker.kind == "stack-output":
            stack = self.stack_factory()
            self._check_output(block, "make start", stack.output(), stack.ports)

    def _run_to_end(self, block: Block, cwd: Path, ports: PortMap) -> None:
        text = ports.rewrite(block.text)
        env = terminal_environment(ports)
        if block.runtime == "python":
            status, output = run_command([str(cwd / ".venv" / "bin" / "python"), "-"], cwd, env, stdin=text)
        else:
            status, output = run_command(shell_argv(text), cwd, env)
        if status != 0:
            raise DocBlockFailed(describe(block, text, output, f"exited with status {status}"))
        for expected in self._expected_outputs(block):
            self._check_output(expected, text, output, ports)

    def _start_server(self, block: Block, marker: Marker) -> None:
        text = self.ports.rewrite(block.text)
        # A later example of the same server replaces the earlier one, as Ctrl-C and a new command would.
        for earlier_marker, earlier in list(self.servers):
            if set(earlier_marker.ports) & set(marker.ports):
                earlier.stop()
                self.servers.remove((earlier_marker, earlier))
        process = ManagedProcess(
            block.id,
            shell_argv(text),
            self.workspace / ".doc-test" / f"{Path(block.page).stem}-{block.line}.log",
            env=terminal_environment(self.ports),
            cwd=self.workspace,
        ).start()
        self.servers.append((marker, process))
        try:
            for port in marker.ports:
                process.wait_for_port(self.ports.port(port), timeout=SERVER_READY_TIMEOUT_S)
        except StartupError:
            problem = "the server exited, or did not listen on every port it names in time"
            raise DocBlockFailed(describe(block, text, process.log_tail(60), problem)) from None
        for expected in self._expected_outputs(block):
            wanted = self.ports.rewrite(expected.text)
            # A server may print after its port opens: give it a moment to show what the page says.
            wait_until(lambda: output_matches(wanted, process.log_tail(200)), 10, process.running)  # noqa: B023
            self._check_output(expected, text, process.log_tail(200), self.ports)

    def _expected_outputs(self, block: Block) -> Iterable[Block]:
        """The `output` blocks that follow `block` before the next block that runs."""
        after = self.blocks[self.blocks.index(block) + 1 :]
        for candidate in after:
            marker = candidate.marker()
            kind = marker.kind if marker else None
            if kind == "output":
                yield candidate
            elif kind in RUNNABLE_KINDS or kind == "skip":
                return

    @staticmethod
    def _check_output(expected: Block, text: str, output: str, ports: PortMap) -> None:
        wanted = ports.rewrite(expected.text)
        if not output_matches(wanted, output):
            raise DocBlockFailed(
                describe(
                    expected, text, output, f"the output does not show the lines of {expected.id}:\n{wanted}"
                )
            )

    def close(self) -> None:
        for _, process in self.servers:
            process.stop()
        self.servers.clear()
