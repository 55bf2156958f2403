"""Presence reconciliation: remove the rows of connections the service no longer knows.

A `disconnected` event can be lost (the app was down past the service's retries), leaving a row that
says a user is online. A timer runs `reconcile` (docs/app.md): it asks the service about the recorded
connections it checked least recently (`connection_exists`, a REST call each), marks the unknown ones
gone and announces them as `disconnected` with reason "reconciled", and purges old tombstones. Each run
is bounded in REST calls and in time, so a large hub is covered over several runs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from wps_upstream.chat import PresenceNotice
from wps_upstream.services import Services
from wps_upstream.times import iso_time

if TYPE_CHECKING:  # the store (and the Azure SDK under it) is imported when the timer first runs
    from wps_upstream.store.presence import Connection

logger = logging.getLogger(__name__)

MAX_CHECKS = 200  # connection_exists calls per run
RUN_SECONDS = 60.0  # a run stops checking after this long (and reports it)
CONCURRENT_CHECKS = 8
TOMBSTONE_AGE = timedelta(minutes=10)  # far past any retry of a connection's `connected` event
REASON = "reconciled"


@dataclass
class Report:
    """What one run did."""

    connections: int = 0
    checked: int = 0
    removed: list[str] = field(default_factory=list)
    purged: int = 0
    stopped_early: bool = False


async def reconcile(services: Services) -> Report:
    """One reconciliation run of the hub's presence; logs what it removed."""
    hub = services.settings.hub
    connections = await services.presence.connections(hub=hub)
    report = Report(connections=len(connections))
    # Never checked first, then the least recently checked: every row is reached over enough runs.
    due = sorted(connections, key=lambda c: (c.checked_at or "", c.connected_at))[:MAX_CHECKS]
    try:
        async with asyncio.timeout(RUN_SECONDS):
            for start in range(0, len(due), CONCURRENT_CHECKS):
                batch = due[start : start + CONCURRENT_CHECKS]
                await asyncio.gather(*(_check(services, connection, report) for connection in batch))
    except TimeoutError:
        report.stopped_early = True
    report.purged = await services.presence.purge_gone(hub=hub, older_than=TOMBSTONE_AGE)
    logger.info(
        "Presence of hub %s reconciled: %d of %d connections checked, %d removed%s, "
        "%d old tombstones purged%s",
        hub,
        report.checked,
        report.connections,
        len(report.removed),
        f" ({', '.join(report.removed)})" if report.removed else "",
        report.purged,
        "; stopped at the time limit" if report.stopped_early else "",
    )
    return report


async def _check(services: Services, connection: Connection, report: Report) -> None:
    hub = services.settings.hub
    now = iso_time(datetime.now(UTC))
    exists = await services.service.connection_exists(connection.connection_id)
    report.checked += 1
    if exists:
        await services.presence.checked(hub=hub, connection=connection, time=now)
        return
    user = await services.presence.reconciled(hub=hub, connection=connection, time=now)
    report.removed.append(connection.connection_id)
    notice = PresenceNotice(
        "disconnected", connection.user_id, connection.connection_id, now, user, REASON, connection.user_name
    )
    await services.notifier.broadcast_presence(notice, event_id=f"reconcile:{connection.connection_id}")
