"""Options the app gives Microsoft's SDK clients besides timeouts and retries: what makes each call cheaper.

Read once, when the clients are built (never per request).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

# azure-core logs every request and response at INFO; a host that forwards INFO would pay for (and
# store) two log records per storage or REST call.
SDK_REQUEST_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def transport_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for the SDK clients' aiohttp transport.

    With `use_env_settings` (the SDK default), aiohttp looks for proxy variables and reads ~/.netrc on a
    worker thread for every request. Without any `*_proxy` variable there is nothing to find, so the
    lookup is turned off; with one, it stays on and proxies work as before.
    """
    env = os.environ if environ is None else environ
    if any(name.lower().endswith("_proxy") and value for name, value in env.items()):
        return {}
    return {"use_env_settings": False}


def quiet_request_logs() -> None:
    """Keep the SDK's per-request INFO records out of the log (warnings and errors still pass)."""
    logger = logging.getLogger(SDK_REQUEST_LOGGER)
    if logger.level == logging.NOTSET:  # leave a level someone chose alone
        logger.setLevel(logging.WARNING)
