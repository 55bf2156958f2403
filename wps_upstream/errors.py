"""The app's exceptions. Each carries its HTTP status; wps_upstream.http turns them into responses.

Raise these with a message a caller can act on: what was wrong and, where useful, how to fix it.
The message is sent as the plain-text response body, so it never contains secrets or stack traces;
details for the operator go in the chained cause, which is logged.
"""

from __future__ import annotations


class AppError(Exception):
    """Base class: an error with a status code and a message safe to send to the caller."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(AppError):
    """The request is malformed or names something this app does not serve."""

    status = 400


class Unauthorized(AppError):
    """No acceptable identity: no user, or a missing/invalid Web PubSub signature."""

    status = 401


class Forbidden(AppError):
    """The caller is known but not allowed, e.g. a webhook origin that is not on the allowed list."""

    status = 403


class Conflict(AppError):
    """The request contradicts what is stored, e.g. an event id already used for other content."""

    status = 409


class PayloadTooLarge(AppError):
    """The message is larger than this app stores intact (nothing is truncated)."""

    status = 413


class MessageTooLarge(PayloadTooLarge):
    """A message larger than the app stores intact; `size` and `limit` in bytes."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The message is {size} bytes; the largest message this chat stores is {limit} bytes."
        )
        self.size = size
        self.limit = limit


class UnsupportedMediaType(AppError):
    """A content type or charset this app does not accept."""

    status = 415


class TooManyRequests(AppError):
    """The caller is over a rate limit; it may try again later."""

    status = 429


class ConfigurationError(AppError):
    """A setting is missing or malformed; the message names the setting (never its value)."""

    status = 500


class DependencyFailed(AppError):
    """Storage (or another dependency) failed or timed out; the caller may retry."""

    status = 503
