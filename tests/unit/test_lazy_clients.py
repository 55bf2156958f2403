"""The clients (Table storage, the REST API) are built when first used, so a connect imports no Azure SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.events.vectors import CONNECTION_STRING, ORIGIN, load
from wps_upstream.services import Services
from wps_upstream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SDKS = ("azure.data.tables", "azure.messaging.webpubsubservice", "aiohttp")


def test_answering_a_connect_imports_neither_azure_sdk_nor_aiohttp() -> None:
    vector = load("connect")
    script = textwrap.dedent(
        f"""
        import asyncio, json, os, sys
        os.environ.update({{
            "WebPubSubConnectionString": {CONNECTION_STRING!r},
            "WebPubSubAllowedOrigins": {ORIGIN!r},
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }})
        import function_app
        import azure.functions as func
        from wps_upstream.functions.eventhandler import eventhandler
        request = func.HttpRequest("POST", {vector.url!r}, headers={vector.headers!r}, body={vector.body!r})
        response = asyncio.run(eventhandler(request))
        print(json.dumps([response.status_code, [name for name in {SDKS!r} if name in sys.modules]]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == [200, []]


def test_services_are_built_without_a_client() -> None:
    settings = Settings.from_environ(
        {"WebPubSubConnectionString": CONNECTION_STRING, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    )
    services = Services.build(settings)
    assert not {"messages", "presence", "notifier", "service"} & set(vars(services))


async def test_a_client_is_built_on_first_use_and_then_reused() -> None:
    settings = Settings.from_environ(
        {"WebPubSubConnectionString": CONNECTION_STRING, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    )
    services = Services.build(settings)
    try:
        assert services.messages is services.messages
        assert services.notifier.client is services.service
    finally:
        await services.close()
