"""The Azure Functions entry point: the blueprints that serve each function (logic is in wps_upstream)."""

import azure.functions as func

from wps_upstream.functions import eventhandler, history, negotiate, presence, reconcile, web
from wps_upstream.telemetry import configure_telemetry

configure_telemetry()  # only with APPLICATIONINSIGHTS_CONNECTION_STRING, and only where the worker does not

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(eventhandler.blueprint)  # OPTIONS, POST /api/eventhandler (anonymous; own auth)
app.register_functions(negotiate.blueprint)  # GET /api/negotiate (anonymous; own user check)
app.register_functions(history.blueprint)  # GET /api/messages (anonymous; own user check)
app.register_functions(presence.blueprint)  # GET /api/presence (anonymous; own user check)
app.register_functions(web.blueprint)  # GET /api/index (anonymous; the chat page)
app.register_functions(reconcile.blueprint)  # timer reconcile_presence (PresenceReconcileSchedule)
