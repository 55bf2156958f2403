"""Timer schedules: NCRONTAB with seconds and TimeSpan intervals, read as the Functions host reads them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devhost.schedules import (
    CronSchedule,
    IntervalSchedule,
    ScheduleError,
    parse_schedule,
    resolve_settings,
)

NEW_YEAR = datetime(2026, 1, 1, 0, 0, 0)  # a Thursday


def occurrences(expression: str, start: datetime = NEW_YEAR, count: int = 3) -> list[datetime]:
    schedule = parse_schedule(expression)
    found: list[datetime] = []
    for _ in range(count):
        start = schedule.next_after(start)
        found.append(start)
    return found


def refusal(expression: str) -> str:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule(expression)
    return str(refused.value)


def test_first_field_is_seconds() -> None:
    assert occurrences("*/20 * * * * *") == [NEW_YEAR + timedelta(seconds=s) for s in (20, 40, 60)]


def test_every_five_minutes_on_the_minute() -> None:
    assert occurrences("0 */5 * * * *", count=2) == [datetime(2026, 1, 1, 0, 5), datetime(2026, 1, 1, 0, 10)]


def test_next_occurrence_is_strictly_after_the_given_time() -> None:
    assert occurrences("0 0 0 * * *", count=1) == [datetime(2026, 1, 2)]


def test_lists_and_ranges_with_steps() -> None:
    assert occurrences("5,8 0 10-14/2 * * *") == [
        datetime(2026, 1, 1, 10, 0, 5),
        datetime(2026, 1, 1, 10, 0, 8),
        datetime(2026, 1, 1, 12, 0, 5),
    ]


def test_value_with_a_step_runs_to_the_end_of_the_range() -> None:
    assert occurrences("50/5 * * * * *") == [NEW_YEAR + timedelta(seconds=s) for s in (50, 55, 110)]


def test_month_and_day_names_in_any_case_and_any_length() -> None:
    assert occurrences("0 30 9 * jan MON", count=2) == occurrences("0 30 9 * January Monday", count=2)
    assert occurrences("0 30 9 * 1 1", count=2) == [datetime(2026, 1, 5, 9, 30), datetime(2026, 1, 12, 9, 30)]


def test_day_and_day_of_week_must_both_match() -> None:
    # NCrontab's rule: the 13th AND a Friday (cron would run on every 13th and every Friday)
    assert occurrences("0 0 0 13 * Fri", count=2) == [datetime(2026, 2, 13), datetime(2026, 3, 13)]


def test_sunday_is_zero() -> None:
    assert occurrences("0 0 0 * * 0", count=1) == [datetime(2026, 1, 4)]


def test_five_field_cron_is_refused_saying_the_seconds_field_is_missing() -> None:
    assert "has 5 fields; an NCRONTAB schedule has 6: {second} {minute}" in refusal("*/5 * * * *")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 0 * * 7", "day of week 7 is out of range (0-6)"),
        ("60 * * * * *", "second 60 is out of range (0-59)"),
        ("0 0 0 L * *", "day 'L' is not a number 1-31"),
        ("0 0 0 ? * *", "day '?' is not a number 1-31"),
        ("0 0 0 * * 5#2", "day of week '5#2' is not a number 0-6 or a name"),
        ("0 0 0 * Foo *", "month 'Foo' is not a number 1-12 or a name (Jan, Feb"),
        ("0 0 0 10-5 * *", "day range '10-5' runs backwards"),
        ("*/0 * * * * *", "second '*/0' has a step of 0"),
        ("0 0 0 30 2 *", "never occurs"),
    ],
)
def test_what_ncrontab_refuses_is_refused_naming_the_field(expression: str, message: str) -> None:
    assert message in refusal(expression)


def test_empty_schedule_is_refused() -> None:
    assert "the schedule is empty" in refusal("  ")


def test_timespan_is_an_interval_from_one_run_to_the_next() -> None:
    schedule = parse_schedule("00:05:00")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_after(NEW_YEAR) == NEW_YEAR + timedelta(minutes=5)


def test_timespan_with_days() -> None:
    assert parse_schedule("1.02:00:00").next_after(NEW_YEAR) == NEW_YEAR + timedelta(days=1, hours=2)


def test_timespan_with_24_hours_or_more_is_refused_pointing_at_days() -> None:
    assert "d.hh:mm:ss" in refusal("24:00:00")


def test_zero_timespan_is_refused() -> None:
    assert "is zero" in refusal("00:00:00")


def test_cron_schedule_keeps_the_text_it_was_given() -> None:
    schedule = parse_schedule("0 30 9 * Jan Mon")
    assert isinstance(schedule, CronSchedule)
    assert schedule.text == "0 30 9 * Jan Mon"


def test_settings_are_resolved_wherever_they_appear() -> None:
    assert resolve_settings("0 %Minute% * * * %Days%", {"Minute": "15", "Days": "1-5"}) == (
        "0 15 * * * 1-5",
        ["Minute", "Days"],
    )


def test_unset_setting_is_refused_naming_it_and_where_to_set_it() -> None:
    with pytest.raises(
        ScheduleError, match=r"app setting 'Missing' \(used as %Missing%\) is not set.*Values"
    ):
        resolve_settings("%Missing%", {})
