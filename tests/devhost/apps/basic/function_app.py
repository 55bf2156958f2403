"""Fixture function app for the dev host tests: one function per behaviour under test."""

import json
import os
import threading

import azure.functions as func
from extra_functions import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)


def _describe(req: func.HttpRequest, kind: str) -> func.HttpResponse:
    body = req.get_body()
    return func.HttpResponse(
        json.dumps(
            {
                "kind": kind,
                "method": req.method,
                "url": req.url,
                "params": dict(req.params),
                "route_params": dict(req.route_params),
                "headers": dict(req.headers),
                "body": body.decode("latin-1"),
                "thread": threading.current_thread().name,
            }
        ),
        mimetype="application/json",
    )


@app.route(route="echo/{id:int}", methods=["GET", "POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "sync")


@app.route(route="async/echo", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def echo_async(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "async")


@app.route(route="files/{*path}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "files")


@app.route(route="greet/{name?}", methods=["GET"])
def greet(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "greet")


@app.route(route="items/{id}", methods=["GET"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "item")


@app.route(route="items/new", methods=["GET"])
def new_item(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "new_item")


@app.route(route="respond", methods=["POST"])
def respond(req: func.HttpRequest) -> func.HttpResponse:
    """Answers with what the JSON body asks for: body, status, mimetype, charset, headers."""
    spec = req.get_json()
    response = func.HttpResponse(
        spec.get("body"),
        status_code=spec.get("status"),
        mimetype=spec.get("mimetype"),
        charset=spec.get("charset"),
        headers=spec.get("headers"),
    )
    for name, value in spec.get("add_headers", []):
        response.headers.add(name, value)
    return response


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("sync failure detail 7f3a")


@app.route(route="boom_async", methods=["GET"])
async def boom_async(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("async failure detail 9c1e")


@app.route(route="settings", methods=["GET"])
def settings(req: func.HttpRequest) -> func.HttpResponse:
    names = ("DEVHOST_FIXTURE_FROM_FILE", "DEVHOST_FIXTURE_PRESET", "DEVHOST_FIXTURE_NUMBER")
    return func.HttpResponse(json.dumps({name: os.environ.get(name) for name in names}))


@app.route(route="context", methods=["GET"])
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    seen = {"function_name": context.function_name, "id": context.invocation_id}
    return func.HttpResponse(json.dumps(seen))


@app.route(route="plain", methods=["GET"])
def plain(req: func.HttpRequest) -> str:
    return "just a string"


@app.route(route="nothing", methods=["GET"])
def nothing(req: func.HttpRequest) -> None:
    return None


@app.route(route="out", methods=["GET"], binding_arg_name="result")
def out_binding(req: func.HttpRequest, result: func.Out[func.HttpResponse]) -> None:
    result.set(func.HttpResponse("set on the output binding", status_code=202))


@app.function_name(name="renamed")
@app.route(route="anything", auth_level=func.AuthLevel.ADMIN)
def any_method(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "anything")


@app.queue_trigger(arg_name="message", queue_name="work", connection="AzureWebJobsStorage")
def from_queue(message: func.QueueMessage) -> None:
    pass
