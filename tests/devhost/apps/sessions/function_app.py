"""Fixture function app that keeps an aiohttp client session open, as the azure SDKs' async clients do:
created once per process, used by requests, never closed by the app."""

import aiohttp
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
_session: aiohttp.ClientSession | None = None


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")


@app.route(route="call_myself", methods=["GET"])
async def call_myself(req: func.HttpRequest) -> func.HttpResponse:
    """Opens the session on first use and calls /api/ping through it (the connection stays pooled)."""
    global _session
    if _session is None:
        _session = aiohttp.ClientSession()
    async with _session.get(req.url.replace("/api/call_myself", "/api/ping")) as answer:
        return func.HttpResponse(await answer.text())
