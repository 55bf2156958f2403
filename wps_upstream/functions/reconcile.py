"""The timer that reconciles presence with the service (schedule: the PresenceReconcileSchedule setting).

The schedule is read when the app is indexed, so the host validates it: an NCRONTAB expression with
seconds, every five minutes by default. Run it now locally: POST /admin/functions/reconcile_presence
with {"input": ""} (Core Tools and the dev host answer 202).
"""

from __future__ import annotations

import os

import azure.functions as func

from wps_upstream.reconcile import reconcile
from wps_upstream.services import get_services
from wps_upstream.settings import presence_reconcile_schedule

blueprint = func.Blueprint()


@blueprint.function_name("reconcile_presence")
@blueprint.timer_trigger(
    schedule=presence_reconcile_schedule(os.environ), arg_name="timer", run_on_startup=False, use_monitor=True
)
async def reconcile_presence(timer: func.TimerRequest) -> None:
    """Remove presence rows of connections the service no longer knows, and announce them."""
    await reconcile(await get_services())
