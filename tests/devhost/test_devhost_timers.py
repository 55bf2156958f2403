"""Timer functions in the dev host as a real process: on their schedules, on demand, one run at a time."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.devhost.conftest import wait_until

if TYPE_CHECKING:
    from tests.devhost.conftest import TimerApp


def run_and_wait(timers_app: TimerApp, name: str, as_named: str | None = None) -> dict[str, object]:
    """Run a function on demand (asked for `as_named`, if given) and return what its new run recorded."""
    before = len(timers_app.records(name))
    assert timers_app.run(as_named or name).status == 202
    wait_until(lambda: len(timers_app.records(name)) > before, f"a run of {name}")
    return timers_app.records(name)[before]


def test_timer_functions_are_listed_with_their_schedule_and_next_run(timers_app: TimerApp) -> None:
    listing = (
        r"\n\tslow_ticker: timerTrigger \('\* \* \* \* \* \*'; next run at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)\n"
    )
    assert re.search(listing, timers_app.host.log())


def test_listing_names_the_setting_a_schedule_comes_from(timers_app: TimerApp) -> None:
    assert "\tticker: timerTrigger ('* * * * * *' from %DEVHOST_FIXTURE_TICKER_SCHEDULE%; next run at" in (
        timers_app.host.log()
    )


def test_schedule_from_an_app_setting_runs_every_second(timers_app: TimerApp) -> None:
    wait_until(lambda: len(timers_app.records("ticker")) >= 3, "three runs of ticker")
    seconds = [int(record["at"]) for record in timers_app.records("ticker")]
    assert seconds == sorted(set(seconds))  # one run per second, each in a later second


def test_run_on_startup_function_runs_once_at_start(timers_app: TimerApp) -> None:
    wait_until(lambda: len(timers_app.records("at_startup")) == 1, "the run on startup")
    assert re.search(
        r"Executed 'Functions\.at_startup' \(Succeeded, .*\) run on startup\n", timers_app.host.log()
    )


def test_run_on_demand_is_accepted_with_202_and_no_body(timers_app: TimerApp) -> None:
    answer = timers_app.run("on_demand")
    assert (answer.status, answer.body) == (202, b"")


def test_run_on_demand_runs_the_function(timers_app: TimerApp) -> None:
    assert run_and_wait(timers_app, "on_demand")["function_name"] == "on_demand"


def test_timer_function_gets_a_timer_request_that_is_not_past_due(timers_app: TimerApp) -> None:
    seen = run_and_wait(timers_app, "on_demand")
    assert (seen["is_timer_request"], seen["past_due"], seen["schedule_status"]) == (True, False, {})


def test_sync_timer_function_runs_in_the_thread_pool(timers_app: TimerApp) -> None:
    assert str(run_and_wait(timers_app, "on_demand")["thread"]).startswith("function")


def test_async_timer_function_runs_on_the_event_loop_thread(timers_app: TimerApp) -> None:
    assert run_and_wait(timers_app, "on_demand_async")["thread"] == "MainThread"


def test_run_on_demand_finds_the_function_whatever_the_case(timers_app: TimerApp) -> None:
    assert run_and_wait(timers_app, "on_demand_async", as_named="On_Demand_Async")["past_due"] is False


def test_each_run_is_logged_with_name_reason_outcome_and_duration(timers_app: TimerApp) -> None:
    run_and_wait(timers_app, "on_demand")
    line = (
        r"INFO devhost: Executed 'Functions\.on_demand' \(Succeeded, Id=[0-9a-f-]{36}, Duration=\d+ms\) "
        r"run on demand \(POST /admin/functions/on_demand\)\n"
    )
    wait_until(lambda: re.search(line, timers_app.host.log()) is not None, "the run's log line")


def test_scheduled_runs_are_logged_with_the_time_they_were_due(timers_app: TimerApp) -> None:
    line = r"Executed 'Functions\.ticker' \(Succeeded, .*\) scheduled for \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\n"
    wait_until(lambda: re.search(line, timers_app.host.log()) is not None, "a scheduled run's log line")


def test_run_of_an_unknown_function_is_404_naming_the_timer_functions(timers_app: TimerApp) -> None:
    answer = timers_app.run("no_such_function")
    assert answer.status == 404
    assert b"no timer function named 'no_such_function'" in answer.body
    assert b"on_demand" in answer.body


def test_run_of_an_http_function_is_400_saying_to_call_its_url(timers_app: TimerApp) -> None:
    answer = timers_app.run("ping")
    assert answer.status == 400
    assert b"ping is an HTTP function: call its URL instead" in answer.body


def test_run_with_a_body_that_is_not_json_is_400_showing_the_expected_body(timers_app: TimerApp) -> None:
    answer = timers_app.run("on_demand", body=b"input=")
    assert answer.status == 400
    assert b'{"input": ""}' in answer.body


def test_run_with_a_json_body_that_is_not_an_object_is_400(timers_app: TimerApp) -> None:
    assert timers_app.run("on_demand", body=b'[""]').status == 400


def test_run_with_an_input_that_is_not_text_is_400(timers_app: TimerApp) -> None:
    assert timers_app.run("on_demand", body=b'{"input": 5}').status == 400


def test_run_without_a_json_content_type_is_415_like_the_host(timers_app: TimerApp) -> None:
    answer = timers_app.run("on_demand", content_type="application/x-www-form-urlencoded")
    assert answer.status == 415
    assert b"Content-Type: application/json" in answer.body


def test_get_on_the_run_endpoint_is_405_allowing_post(timers_app: TimerApp) -> None:
    answer = timers_app.host.call("GET", "/admin/functions/on_demand")
    assert (answer.status, answer.header("Allow")) == (405, "POST")


def test_failing_run_is_logged_with_its_traceback(timers_app: TimerApp) -> None:
    run_and_wait(timers_app, "failing")
    log = timers_app.host.log
    wait_until(lambda: "ValueError: timer failure detail 4b1d" in log(), "the failure in the log")
    assert re.search(r"ERROR devhost: Executed 'Functions\.failing' \(Failed, Id=.*\n(?s:.*)Traceback", log())


def test_failing_run_leaves_the_host_serving_and_running_timers(timers_app: TimerApp) -> None:
    run_and_wait(timers_app, "failing")
    assert timers_app.host.call("GET", "/api/ping").body == b"pong"
    assert run_and_wait(timers_app, "on_demand")["function"] == "on_demand"


def test_runs_on_demand_of_one_function_do_not_overlap(timers_app: TimerApp) -> None:
    before = len(timers_app.records("slow", "end"))
    assert [timers_app.run("slow").status for _ in range(2)] == [202, 202]
    wait_until(lambda: len(timers_app.records("slow", "end")) == before + 2, "both runs of slow to end")
    starts = timers_app.records("slow")[before:]
    ends = timers_app.records("slow", "end")[before:]
    assert [start["running"] for start in starts] == [1, 1]
    assert starts[1]["at"] >= ends[0]["at"]


def test_scheduled_runs_longer_than_the_interval_do_not_overlap(timers_app: TimerApp) -> None:
    wait_until(lambda: len(timers_app.records("slow_ticker", "end")) >= 2, "two runs of slow_ticker", 30)
    assert {start["running"] for start in timers_app.records("slow_ticker")} == {1}
