"""`python -m wps_emulator` as a developer starts it: a taken port ends with one clear line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def test_a_taken_port_ends_with_one_line_naming_it_its_holder_and_the_way_out() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "wps_emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode != 0
    assert done.stdout == ""  # no connection string for a server that is not listening
    [line] = done.stderr.splitlines()
    assert line.startswith(f"python -m wps_emulator: port {port} is already in use by pid {os.getpid()} (")
    assert "--port <number> (or WPS_EMULATOR_PORT)" in line
