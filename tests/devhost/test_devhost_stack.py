"""The local stack (`make start`): Azurite, the emulator and the function host started, wired and stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.processes import PROJECT_ROOT, StartupError, port_in_use
from devhost.stack import LocalStack, StackPorts

pytestmark = pytest.mark.skipif(
    not (PROJECT_ROOT / "wps_emulator" / "__main__.py").exists()
    or not (PROJECT_ROOT / "function_app.py").exists(),
    reason="the emulator or the function app is not written yet",
)


def http(method: str, url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - local test URL
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, response.read()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(ports=StackPorts.free(), log_dir=tmp_path_factory.mktemp("stack-logs"))
    running.start()
    yield running
    running.stop()


def test_function_host_serves_the_chat_page(stack: LocalStack) -> None:
    assert http("GET", f"{stack.function_url}/api/index")[0] == 200


def test_emulator_answers_its_health_check(stack: LocalStack) -> None:
    assert http("HEAD", f"{stack.emulator_endpoint}/api/health")[0] == 200


def test_azurite_listens_on_all_three_ports(stack: LocalStack) -> None:
    assert all(port_in_use(port) for port in (stack.ports.blob, stack.ports.queue, stack.ports.table))


def test_function_app_negotiates_with_the_stacks_emulator(stack: LocalStack) -> None:
    status, body = http("GET", f"{stack.function_url}/api/negotiate?userId=alice")
    assert status == 200
    assert json.loads(body)["url"].startswith(f"ws://localhost:{stack.ports.emulator}/client/hubs/chat?")


def test_connection_strings_point_at_the_stacks_ports(stack: LocalStack) -> None:
    assert f"Endpoint={stack.emulator_endpoint};" in stack.emulator_connection_string
    assert f"TableEndpoint=http://127.0.0.1:{stack.ports.table}/devstoreaccount1;" in (
        stack.storage_connection_string
    )


def test_restarted_function_host_is_a_new_process_that_answers(stack: LocalStack) -> None:
    assert stack.function_host is not None
    before = stack.function_host.pid
    stack.restart_function_host()
    assert stack.function_host.pid != before
    assert http("GET", f"{stack.function_url}/api/index")[0] == 200


def test_stop_leaves_no_process_running(tmp_path: Path) -> None:
    own = LocalStack(ports=StackPorts.free(), log_dir=tmp_path)
    own.start()
    processes = [own.azurite, own.emulator, own.function_host]
    own.stop()
    assert [p.name for p in processes if p is None or p.running()] == []
    assert [port for _, port in own.ports.roles() if port_in_use(port)] == []


def stack_cli(ports: StackPorts, log_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "devhost.stack", "--in-memory", "--log-dir", str(log_dir),
        "--function-port", str(ports.function_host), "--emulator-port", str(ports.emulator),
        "--blob-port", str(ports.blob), "--queue-port", str(ports.queue), "--table-port", str(ports.table),
    ]  # fmt: skip


def start_cli(ports: StackPorts, log_dir: Path, output: Path) -> subprocess.Popen[bytes]:
    """`python -m devhost.stack` in the background, once it has printed that everything is up."""
    with output.open("wb") as sink:
        cli = subprocess.Popen(stack_cli(ports, log_dir), stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "Ctrl-C stops all three." not in output.read_text():
        if cli.poll() is not None or time.monotonic() > deadline:
            cli.kill()
            pytest.fail(f"the stack did not come up:\n{output.read_text()}")
        time.sleep(0.1)
    return cli


def run_with_taken_port(tmp_path: Path, ports: StackPorts, taken: int) -> subprocess.CompletedProcess[str]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken))
        listener.listen()
        return subprocess.run(
            stack_cli(ports, tmp_path), capture_output=True, text=True, timeout=60, check=False
        )


def test_cli_refuses_a_taken_port_naming_it_and_its_process(tmp_path: Path) -> None:
    ports = StackPorts.free()
    result = run_with_taken_port(tmp_path, ports, ports.emulator)
    assert result.returncode == 1
    assert f"port {ports.emulator} (for the Web PubSub emulator) is already in use" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr


def test_cli_refusal_shows_how_to_move_that_server_with_make_start_and_by_hand(tmp_path: Path) -> None:
    ports = StackPorts.free()
    stderr = run_with_taken_port(tmp_path, ports, ports.emulator).stderr
    moved = re.search(r'make start STACK_ARGS="--emulator-port (\d+)"', stderr)
    assert moved is not None, stderr
    python = Path(sys.executable)  # shown relative to the project folder when the venv is in it
    shown = python.relative_to(PROJECT_ROOT) if python.is_relative_to(PROJECT_ROOT) else python
    command = f"{shown} -m devhost.stack"
    assert f"(or {command} --emulator-port {moved[1]};" in stderr
    assert f"every flag: {command} --help)" in stderr
    assert not port_in_use(int(moved[1]))


def test_cli_that_started_nothing_does_not_say_stopped(tmp_path: Path) -> None:
    ports = StackPorts.free()
    assert "Stopped." not in run_with_taken_port(tmp_path, ports, ports.table).stdout


def test_make_start_passes_stack_args_to_the_stack() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "start", 'STACK_ARGS=--function-port 7072 --in-memory'],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "-m devhost.stack --function-port 7072 --in-memory" in dry_run.stdout


def test_cli_refusing_a_taken_port_starts_nothing(tmp_path: Path) -> None:
    ports = StackPorts.free()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", ports.table))
        listener.listen()
        subprocess.run(stack_cli(ports, tmp_path), capture_output=True, timeout=60, check=False)
        others = [port for _, port in ports.roles() if port != ports.table]
        assert [port for port in others if port_in_use(port)] == []


def test_cli_stops_everything_on_sigint(tmp_path: Path) -> None:
    ports = StackPorts.free()
    output = tmp_path / "stdout.txt"
    cli = start_cli(ports, tmp_path / "logs", output)
    try:
        assert f"Chat page: http://localhost:{ports.function_host}/api/index" in output.read_text()
        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=30) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
    assert [port for _, port in ports.roles() if port_in_use(port)] == []
    assert output.read_text().endswith("Stopped.\n")


def test_cli_stop_reports_no_sdk_client_the_app_left_open(tmp_path: Path) -> None:
    ports = StackPorts.free()
    output = tmp_path / "stdout.txt"
    cli = start_cli(ports, tmp_path / "logs", output)
    try:
        base = f"http://127.0.0.1:{ports.function_host}/api"
        # Both of the app's async SDK clients (Table storage, Web PubSub) in use, so both hold a session.
        assert http("GET", f"{base}/negotiate?userId=alice")[0] == 200
        assert http("GET", f"{base}/messages?userId=alice")[0] == 200
        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=30) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
    assert "Unclosed" not in (tmp_path / "logs" / "function-host.log").read_text()


def test_failed_start_names_the_server_shows_its_log_and_stops_the_others(tmp_path: Path) -> None:
    broken = LocalStack(ports=StackPorts.free(), log_dir=tmp_path, hub="not a hub name!")
    with pytest.raises(StartupError, match=r"(?s)Web PubSub emulator exited before.*hub name"):
        broken.start()
    started = (broken.azurite, broken.emulator, broken.function_host)
    assert [p.name for p in started if p and p.running()] == []
