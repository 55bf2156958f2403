"""Logs and dependency calls in Application Insights, under the invocation that caused them (OpenTelemetry).

In Azure the Python worker does this, as Microsoft documents for Python function apps: with the app
setting `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true` and `azure-monitor-opentelemetry` installed,
the worker configures the Azure Monitor distro once and attaches each invocation's trace context (the
host's `traceparent`) before the function runs. The spans the Azure SDK clients then make (Table storage,
the Web PubSub REST API) and the app's log records are children of the invocation; `host.json`'s
`"telemetryMode": "OpenTelemetry"` has the host send its own telemetry the same way. The exporter
authenticates with the app's managed identity when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` is
`Authorization=AAD`.

Where no worker does it (the dev host, or that app setting left out), `configure_telemetry` calls the
distro itself when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set. Without it nothing is imported, so cold
start does not pay for telemetry that is not configured.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

logger = logging.getLogger(__name__)

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
WORKER_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"

_configured_by_app = False


def telemetry_owner(env: Mapping[str, str]) -> Literal["off", "worker", "app"]:
    """Who sends telemetry: nobody (no connection string), the Functions Python worker, or the app."""
    if not env.get(CONNECTION_SETTING, "").strip():
        return "off"
    if env.get(WORKER_SETTING, "").strip().lower() in ("true", "1"):
        return "worker"
    return "app"


def configure_telemetry(
    env: Mapping[str, str] | None = None, **options: Any
) -> Literal["off", "worker", "app"]:
    """Configure the Azure Monitor distro when this process must do it itself; once per process.

    `options` go to `configure_azure_monitor` (tests add in-memory span and log processors). Returns
    `telemetry_owner`: with "worker" the app configures nothing, so nothing is exported twice.
    """
    global _configured_by_app
    owner = telemetry_owner(os.environ if env is None else env)
    if owner != "app" or _configured_by_app:
        return owner
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(**options)
    _configured_by_app = True
    logger.info("Telemetry goes to Application Insights (configured by the app)")
    return owner
