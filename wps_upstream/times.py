"""Times as the app writes them: ISO-8601 UTC with milliseconds and Z."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and Z, e.g. 2026-11-29T06:07:08.123Z (naive means UTC)."""
    utc = as_utc(moment)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def event_time(ce_time: str | None) -> str:
    """A `ce-time` value in the app's format; the current time when absent or unreadable."""
    if ce_time:
        try:
            return iso_time(datetime.fromisoformat(ce_time))
        except ValueError:
            pass
    return iso_time(datetime.now(UTC))
