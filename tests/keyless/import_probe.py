"""Handle one signed connect the way the worker would, then print which optional packages got imported.

Run by tests/keyless/test_lazy_imports.py in a child process with the app settings in its environment.
Prints one JSON object: the answer's status and the watched modules found in sys.modules.
"""

from __future__ import annotations

import asyncio
import json
import sys

import azure.functions as func

import function_app  # noqa: F401 - the app as the worker loads it
from tests.events.vectors import load
from wps_upstream.functions.eventhandler import eventhandler
from wps_upstream.services import reset_services

# Loaded only when their mode is configured: identity, Entra token checks, telemetry.
WATCHED = ("azure.identity", "msal", "wps_upstream.entra_tokens", "opentelemetry", "azure.monitor")


async def main() -> None:
    vector = load("connect")
    request = func.HttpRequest(vector.method, vector.url, headers=vector.headers, params={}, body=vector.body)
    response = await eventhandler(request)
    await reset_services()
    loaded = sorted(name for name in WATCHED if name in sys.modules)
    print(json.dumps({"status": response.status_code, "loaded": loaded}))


asyncio.run(main())
