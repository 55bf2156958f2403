import time

STARTED = time.perf_counter()  # before any other import: the child times its own imports

# One cold start, in a fresh process, for bench/cold_start.py (mode in argv[1]; it prints milliseconds):
#   import-functions   import azure.functions
#   import-sdks        import azure.functions, both Azure SDKs (aio) and aiohttp
#   connect            import function_app, then answer one connect event (event JSON in argv[2])
#   message            import function_app, then answer one message event (stores and broadcasts)
# The app's settings come from the environment. Nothing but what the mode needs is imported first.
import sys  # noqa: E402


def main() -> None:
    mode = sys.argv[1]
    if mode == "import-functions":
        import azure.functions
    elif mode == "import-sdks":
        import aiohttp  # noqa: F401
        import azure.data.tables.aio
        import azure.functions
        import azure.messaging.webpubsubservice.aio  # noqa: F401
    else:
        answer_first_event(sys.argv[2])
    elapsed = ANSWERED.get("at", time.perf_counter()) - STARTED
    sdks = [
        name
        for name in ("azure.data.tables", "azure.messaging.webpubsubservice", "aiohttp")
        if name in sys.modules
    ]
    print(f"{elapsed * 1e3:.3f} {','.join(sdks) or '-'}", flush=True)


def answer_first_event(event: str) -> None:
    import asyncio
    import json

    import azure.functions as func

    import function_app  # noqa: F401  (what the Functions host imports first)
    from wps_upstream.functions.eventhandler import eventhandler
    from wps_upstream.services import reset_services

    request = json.loads(event)

    async def answer() -> func.HttpResponse:
        response = await eventhandler(
            func.HttpRequest(
                "POST", request["url"], headers=request["headers"], body=request["body"].encode()
            )
        )
        ANSWERED["at"] = time.perf_counter()
        await reset_services()  # close the clients (after the clock stopped)
        return response

    response = asyncio.run(answer())
    if response.status_code != 200:
        raise SystemExit(f"the app answered {response.status_code}: {response.get_body()!r}")


ANSWERED: dict[str, float] = {}


if __name__ == "__main__":
    main()
