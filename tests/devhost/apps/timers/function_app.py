"""Fixture function app for the dev host's timer tests: each run is recorded as JSON lines in the file
named by DEVHOST_TIMER_RECORD ({"function", "event": "start" | "end", "at", ...})."""

import asyncio
import json
import os
import threading
import time

import azure.functions as func

app = func.FunctionApp()

NEVER_ON_ITS_OWN = "0 0 0 1 1 *"  # once a year: these functions run on demand in the tests
_lock = threading.Lock()
_active: dict[str, int] = {}


def record(function: str, event: str, **details: object) -> None:
    line = json.dumps({"function": function, "event": event, "at": time.time(), **details})
    with _lock, open(os.environ["DEVHOST_TIMER_RECORD"], "a", encoding="utf-8") as sink:
        sink.write(line + "\n")


def enter(function: str) -> None:
    """Record a start with how many runs of the function are in progress, this one included."""
    with _lock:
        _active[function] = _active.get(function, 0) + 1
        running = _active[function]
    record(function, "start", running=running)


def leave(function: str) -> None:
    with _lock:
        _active[function] -= 1
    record(function, "end")


@app.timer_trigger(schedule="%DEVHOST_FIXTURE_TICKER_SCHEDULE%", arg_name="timer")
def ticker(timer: func.TimerRequest) -> None:
    record("ticker", "start")


@app.timer_trigger(schedule=NEVER_ON_ITS_OWN, arg_name="timer")
def on_demand(timer: func.TimerRequest, context: func.Context) -> None:
    record(
        "on_demand",
        "start",
        past_due=timer.past_due,
        schedule_status=timer.schedule_status,
        is_timer_request=isinstance(timer, func.TimerRequest),
        function_name=context.function_name,
        thread=threading.current_thread().name,
    )


@app.timer_trigger(schedule=NEVER_ON_ITS_OWN, arg_name="timer")
async def on_demand_async(timer: func.TimerRequest) -> None:
    record("on_demand_async", "start", thread=threading.current_thread().name, past_due=timer.past_due)


@app.timer_trigger(schedule=NEVER_ON_ITS_OWN, arg_name="timer")
def failing(timer: func.TimerRequest) -> None:
    record("failing", "start")
    raise ValueError("timer failure detail 4b1d")


@app.timer_trigger(schedule=NEVER_ON_ITS_OWN, arg_name="timer")
async def slow(timer: func.TimerRequest) -> None:
    """Takes long enough for a second run asked for at once to find it in progress."""
    enter("slow")
    await asyncio.sleep(0.5)
    leave("slow")


@app.timer_trigger(schedule="* * * * * *", arg_name="timer")
def slow_ticker(timer: func.TimerRequest) -> None:
    """Every second, but each run takes 1.5 s: runs must follow each other, never overlap."""
    enter("slow_ticker")
    time.sleep(1.5)
    leave("slow_ticker")


@app.timer_trigger(schedule=NEVER_ON_ITS_OWN, arg_name="timer", run_on_startup=True)
def at_startup(timer: func.TimerRequest) -> None:
    record("at_startup", "start", past_due=timer.past_due)


@app.route(route="ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
