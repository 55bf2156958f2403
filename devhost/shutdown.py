"""What the dev host closes for the app when it stops: the aiohttp client sessions left open on its loop.

Why the dev host does it, and not the app: the Python v2 programming model has no shutdown hook, so an app
creates its SDK clients once per process (as it should) and never closes them; in Azure the worker process
is simply ended. Here the dev host owns the event loop, and a session still open when the loop and the
interpreter go away is reported by aiohttp as "Unclosed client session", once per client, at every Ctrl-C.
Closing the sessions that are still open on the loop, after the server has stopped and before the loop
closes, releases their connections for real instead of hiding the report, needs no dev-only code in the
app and stays generic (the azure SDKs' async clients hold an aiohttp session each; which clients the app
has is not the dev host's business). A session leaked while the app runs is still reported when Python
collects it: only the ones alive at shutdown are closed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from typing import Any

import aiohttp

log = logging.getLogger("devhost")


def _open_on(loop: asyncio.AbstractEventLoop, kind: type) -> list[Any]:
    # The loop attribute is private in aiohttp; an object without it is taken to be on this loop.
    return [
        found
        for found in gc.get_objects()
        if isinstance(found, kind)
        and not getattr(found, "closed", True)
        and getattr(found, "_loop", loop) is loop
    ]


async def close_client_sessions() -> int:
    """Close the aiohttp client sessions (and connectors not owned by one) still open on the running loop.

    Returns how many were closed."""
    loop = asyncio.get_running_loop()
    closed = 0
    for kind in (aiohttp.ClientSession, aiohttp.BaseConnector):  # sessions first: they close their connectors
        for resource in _open_on(loop, kind):
            with contextlib.suppress(Exception):  # a half-broken client must not stop the shutdown
                result = resource.close()
                if inspect.isawaitable(result):
                    await result
                closed += 1
    if closed:
        log.debug("closed %d aiohttp client session(s)/connector(s) left open by the app", closed)
    return closed
