"""Benchmark: the first answered event of a fresh process, against importing what it cannot do without.

Each figure comes from a new Python process (bench/_cold_child.py) that reads the clock before its first
import and prints the milliseconds until it is done; interpreter start-up itself is left out on both
sides. Pairs run in turn, and the ratio is taken pair by pair (median printed):

- first connect: `import function_app`, then answer one signed connect event through `eventhandler`,
  against `import azure.functions` alone. A connect needs no storage or REST call, so the app imports
  neither Azure SDK nor aiohttp for it (the child reports what it imported);
- first message: `import function_app`, then answer one `message` event (store it in Azurite, broadcast
  it to the REST stand-in, answer), against importing azure.functions, both SDKs and aiohttp.

Bytecode caches are used as a Python process normally uses them (written on the first run, which is not
counted). Azurite and the REST stand-in run in their own processes and are started first.

Run: .venv/bin/python bench/cold_start.py [--runs 11]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from _stack import (
    EVENTHANDLER_URL,
    ROOT,
    SERVICE_HOST,
    connect_event,
    median,
    message_headers,
    running_stack,
)

TARGET = 1.3
CHILD = str(ROOT / "bench" / "_cold_child.py")


@dataclass
class Sample:
    milliseconds: float  # measured inside the child, from before its first import
    process_ms: float  # measured outside: from starting the process to its exit
    imported: str  # which of the Azure SDKs / aiohttp the child had imported


def run_child(mode: str, env: dict[str, str], event: dict[str, object] | None = None) -> Sample:
    argv = [sys.executable, CHILD, mode] + ([json.dumps(event)] if event is not None else [])
    began = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    process_ms = (time.perf_counter() - began) * 1e3
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed: {result.stdout}{result.stderr}")
    milliseconds, imported = result.stdout.split()
    return Sample(float(milliseconds), process_ms, imported)


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return env | extra | {"PYTHONPATH": str(ROOT)}  # the app's folder, as the Functions host has it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="pairs per comparison")
    args = parser.parse_args()
    headers, body = connect_event()
    connect = {"url": EVENTHANDLER_URL, "headers": headers, "body": body.decode()}
    with running_stack() as stack:
        suffix = uuid.uuid4().hex[:12]
        env = child_environment(
            stack.environment(MessagesTableName=f"cold{suffix}", PresenceTableName=f"coldp{suffix}")
            | {"WebPubSubAllowedOrigins": SERVICE_HOST}
        )
        sequence = iter(range(1, 10**6))

        def message() -> dict[str, object]:
            headers = message_headers(f"cold-{suffix}", str(next(sequence)), "ann")
            return {"url": EVENTHANDLER_URL, "headers": headers, "body": "hello"}

        # Warm-up (not counted): bytecode caches written, the tables created.
        run_child("import-sdks", env)
        run_child("connect", env, connect)
        run_child("message", env, message())
        pairs: dict[str, list[tuple[Sample, Sample]]] = {"connect": [], "message": []}
        for _ in range(args.runs):
            pairs["connect"].append((run_child("connect", env, connect), run_child("import-functions", env)))
            pairs["message"].append((run_child("message", env, message()), run_child("import-sdks", env)))
    report(pairs)


def report(pairs: dict[str, list[tuple[Sample, Sample]]]) -> None:
    rows = (
        ("connect", "first answered connect", "import azure.functions"),
        ("message", "first answered message", "import azure.functions + both SDKs + aiohttp"),
    )
    print(f"cold start, fresh processes, {len(pairs['connect'])} pairs each (medians; ms)")
    print(f"{'':56}{'in process':>11}{'whole process':>15}")
    for mode, first, yardstick in rows:
        samples = pairs[mode]
        app = [pair[0] for pair in samples]
        imports = [pair[1] for pair in samples]
        for label, figures in ((first, app), (yardstick, imports)):
            inside = median([sample.milliseconds for sample in figures])
            outside = median([sample.process_ms for sample in figures])
            print(f"  {label:54}{inside:>11.1f}{outside:>15.1f}")
        imported = sorted({sample.imported for sample in app})
        ratio = median([mine.milliseconds / theirs.milliseconds for mine, theirs in samples])
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"  {first} / {yardstick}: {ratio:.2f}   target <= {TARGET}: {verdict}")
        print(f"    SDKs the app had imported when it answered: {', '.join(imported)}")


if __name__ == "__main__":
    main()
