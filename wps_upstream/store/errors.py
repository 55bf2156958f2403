"""What the stores raise on purpose. Each is an app error, so its HTTP status is decided in one place."""

from __future__ import annotations

from wps_upstream.errors import AppError, BadRequest, Conflict, DependencyFailed


class StoreUnavailable(DependencyFailed):
    """Table storage failed or timed out (503: the caller may retry); the cause is chained and logged."""

    def __init__(self, action: str) -> None:
        super().__init__(f"Table storage is unavailable ({action}); nothing was changed, try again.")
        self.action = action


def unavailable(action: str, error: BaseException) -> StoreUnavailable:
    """StoreUnavailable for `action`, caused by `error` (chain it with `raise ... from error`)."""
    failure = StoreUnavailable(action)
    failure.__cause__ = error
    return failure


class InvalidCursor(BadRequest):
    """A paging cursor that this store did not issue (400)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"The cursor {problem}; use the `next` value of a page, or start without it.")


class CorruptRow(AppError):
    """A stored row cannot be read back (500: our data, not the caller's mistake); logged with its key."""

    def __init__(self, row_key: str, problem: str) -> None:
        super().__init__("A stored message could not be read; the details are in the function log.")
        self.row_key = row_key
        self.problem = problem


class RedeliveryMismatch(Conflict):
    """An event id that was already stored with other content (409): not a redelivery, a possible replay."""

    def __init__(self) -> None:
        super().__init__(
            "This connection already sent an event with this ce-id and other content; "
            "a redelivery must be the same event. Nothing was stored or sent."
        )


class UnknownMessage(BadRequest):
    """A message id (`after=`) that names no stored message of the hub (400)."""

    def __init__(self, message_id: str, problem: str) -> None:
        shown = message_id if len(message_id) <= 40 else message_id[:40] + "..."
        super().__init__(
            f"after={shown!r} {problem}; pass the id of a message you received (from a broadcast or a page)."
        )
