"""One message event under an invocation, with telemetry on; prints the spans and log records as JSON.

Run by tests/keyless/test_telemetry.py in a child process (OpenTelemetry's providers are global to a
process). The environment carries the app settings, APPLICATIONINSIGHTS_CONNECTION_STRING among them. The
app's own `configure_telemetry` configures the Azure Monitor distro, with in-memory processors added; then
each event runs as the Functions Python worker runs an invocation: the host's request span is the parent,
its context arrives as a `traceparent` that the worker extracts and attaches before calling the function.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from wps_upstream.telemetry import configure_telemetry

spans = InMemorySpanExporter()
logs = InMemoryLogExporter()
owner = configure_telemetry(
    span_processors=[SimpleSpanProcessor(spans)],
    log_record_processors=[SimpleLogRecordProcessor(logs)],
    sampling_ratio=1.0,  # keep every trace: this run shows the shape, not the sampling
    disable_offline_storage=True,
)
logging.getLogger("wps_upstream").setLevel(logging.INFO)

import azure.functions as func  # noqa: E402 - after telemetry, as in function_app.py

import function_app  # noqa: E402, F401 - the app as the worker loads it (configures nothing twice)
from tests.events.vectors import load  # noqa: E402
from wps_upstream.functions.eventhandler import eventhandler  # noqa: E402
from wps_upstream.services import reset_services  # noqa: E402

HOST = trace.get_tracer("functions-host")
PROPAGATOR = TraceContextTextMapPropagator()


@contextmanager
def invocation(name: str) -> Iterator[None]:
    """The host's request span, its context handed to the function through a traceparent."""
    with HOST.start_as_current_span(name, kind=trace.SpanKind.SERVER):
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier)
    token = context.attach(PROPAGATOR.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)


async def send(name: str, connection_id: str, **headers: str | None) -> int:
    vector = load(name).for_connection(connection_id).with_headers(**headers)
    request = func.HttpRequest(vector.method, vector.url, headers=vector.headers, params={}, body=vector.body)
    with invocation(f"invocation {name} {connection_id}"):
        response = await eventhandler(request)
    return response.status_code


def span_json(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace": f"{span.context.trace_id:032x}",
        "id": f"{span.context.span_id:016x}",
        "parent": f"{span.parent.span_id:016x}" if span.parent else None,
    }


def log_json(data: Any) -> dict[str, Any]:
    record = data.log_record
    return {"body": str(record.body), "trace": f"{record.trace_id:032x}", "span": f"{record.span_id:016x}"}


async def main() -> None:
    statuses = [
        await send("message-text", "telemetry-conn"),
        await send("message-text", "forged-conn", ce_signature="sha256=00", ce_id="forged"),
    ]
    await reset_services()
    print(
        json.dumps(
            {
                "owner": owner,
                "statuses": statuses,
                "spans": [span_json(span) for span in spans.get_finished_spans()],
                "logs": [log_json(data) for data in logs.get_finished_logs()],
            }
        )
    )
    sys.stdout.flush()


asyncio.run(main())
