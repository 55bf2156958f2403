"""Timer schedules as the Functions host reads them: NCRONTAB with seconds, or a TimeSpan interval.

The host takes a schedule in two steps: `%Name%` binding expressions are replaced by app settings, then
the text is tried as a six-field NCRONTAB expression (`{second} {minute} {hour} {day} {month}
{day-of-week}`), then as a TimeSpan (`hh:mm:ss`). The grammar is checked here, field by field, as NCrontab
checks it (so a schedule that Azure refuses is refused here too); croniter finds the occurrences.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from croniter import CroniterError, croniter

_SETTING = re.compile(r"%([^%]+)%")
_ITEM = re.compile(r"^(?P<range>\*|[^-/*]+(?:-[^-/*]+)?)(?:/(?P<step>\d+))?$")
_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})(?::(?P<seconds>\d{1,2}))?$"
)


class ScheduleError(ValueError):
    """A schedule the host would refuse; the message says which part is wrong and what is accepted."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # full English names, value `low` first; any prefix is accepted

    def value(self, text: str) -> int:
        """One value of this field: a number in range, or (month, day of week) a prefix of a name."""
        if text.isdigit():
            number = int(text)
            if not self.low <= number <= self.high:
                raise ScheduleError(f"{self.name} {text} is out of range ({self.low}-{self.high})")
            return number
        for offset, name in enumerate(self.names):
            if name.lower().startswith(text.lower()):
                return self.low + offset
        accepted = f"a number {self.low}-{self.high}"
        if self.names:
            accepted += f" or a name ({', '.join(name[:3] for name in self.names)})"
        raise ScheduleError(f"{self.name} {text!r} is not {accepted}")

    def normalized(self, text: str) -> str:
        """The field with names replaced by numbers; ScheduleError if NCrontab would refuse it."""
        return ",".join(self._item(item) for item in text.split(","))

    def _item(self, item: str) -> str:
        found = _ITEM.match(item)
        if found is None:
            raise ScheduleError(
                f"{self.name} {item!r} is not a value, range (a-b), list (a,b) or step (*/n, a-b/n, a/n)"
            )
        step = found["step"]
        if step is not None and int(step) == 0:
            raise ScheduleError(f"{self.name} {item!r} has a step of 0")
        suffix = f"/{int(step)}" if step is not None else ""
        if found["range"] == "*":
            return "*" + suffix
        first_text, _, last_text = found["range"].partition("-")
        first = self.value(first_text)
        if not last_text:
            return f"{first}{suffix}"
        last = self.value(last_text)
        if last < first:
            raise ScheduleError(f"{self.name} range {item!r} runs backwards")
        return f"{first}-{last}{suffix}"


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, tuple(calendar.month_name[1:])),
    _Field("day of week", 0, 6, ("Sunday", *calendar.day_name[:6])),
)


class Schedule(Protocol):
    """When a timer function runs: `next_after` gives the first occurrence after a local time."""

    @property
    def text(self) -> str: ...

    def next_after(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class CronSchedule:
    """A six-field NCRONTAB schedule. Day and day of week must both match (NCrontab's rule, not cron's
    either-or); times are local, as in Core Tools (Azure runs in UTC unless WEBSITE_TIME_ZONE is set)."""

    text: str
    normalized: str

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        fields = text.split()
        if len(fields) != len(_FIELDS):
            raise ScheduleError(
                f"{text!r} has {len(fields)} fields; an NCRONTAB schedule has 6: "
                "{second} {minute} {hour} {day} {month} {day-of-week}, e.g. '0 */5 * * * *'"
            )
        normalized = " ".join(field.normalized(value) for field, value in zip(_FIELDS, fields, strict=True))
        schedule = cls(text, normalized)
        try:
            schedule.next_after(datetime.now())
        except CroniterError as exc:  # e.g. '0 0 0 30 2 *': February 30th never comes
            raise ScheduleError(f"{text!r} never occurs ({exc})") from exc
        return schedule

    def next_after(self, moment: datetime) -> datetime:
        found: datetime = croniter(
            self.normalized, moment, day_or=False, second_at_beginning=True, max_years_between_matches=50
        ).get_next(datetime)
        return found


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: a constant interval from the start of one run to the next."""

    text: str
    interval: timedelta

    @classmethod
    def parse(cls, text: str) -> IntervalSchedule | None:
        """The interval, or None if the text is not in TimeSpan form ([d.]hh:mm[:ss])."""
        found = _TIMESPAN.match(text)
        if found is None:
            return None
        days, hours, minutes, seconds = (
            int(found[part] or 0) for part in ("days", "hours", "minutes", "seconds")
        )
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ScheduleError(
                f"TimeSpan {text!r} is out of range: hh 0-23, mm and ss 0-59 (a day or more: d.hh:mm:ss)"
            )
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if not interval:
            raise ScheduleError(f"TimeSpan {text!r} is zero; give an interval of at least one second")
        return cls(text, interval)

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(text: str) -> Schedule:
    """A TimeSpan if the text has that form, else an NCRONTAB schedule; ScheduleError says what is wrong."""
    stripped = text.strip()
    if not stripped:
        raise ScheduleError("the schedule is empty; give an NCRONTAB expression such as '0 */5 * * * *'")
    interval = IntervalSchedule.parse(stripped)
    return interval if interval is not None else CronSchedule.parse(stripped)


def resolve_settings(expression: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace each `%Name%` by the app setting Name; return the text and the names used.

    A name that is not set raises ScheduleError naming it (the host refuses to start the function too)."""
    used: list[str] = []

    def setting(match: re.Match[str]) -> str:
        name = match[1]
        if name not in environ:
            raise ScheduleError(
                f'app setting {name!r} (used as %{name}%) is not set: add it to "Values" in '
                "local.settings.json or to the environment"
            )
        used.append(name)
        return environ[name]

    return _SETTING.sub(setting, expression), used
