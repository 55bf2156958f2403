"""The naming rules of the service: which hub and group names are valid, and what to say when one is not.

Each caller turns an `InvalidName` into its own refusal (a settings error, a 400 before a WebSocket
upgrade, a REST 400 naming the parameter, a BadRequest ack), always with this message.
"""

from __future__ import annotations

import re

_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}")
MAX_GROUP_NAME = 1024


class InvalidName(ValueError):
    """A hub or group name breaks the service's rule; the message states the rule."""


def check_hub_name(name: str) -> None:
    """Hub names: a letter, then up to 127 letters, digits or _`,.[] (they compare case-insensitively)."""
    if not _HUB_NAME.fullmatch(name):
        raise InvalidName(
            f"hub name {name!r} is invalid: it must start with a letter and have at most 128 letters, "
            "digits or _`,.[]"
        )


def check_group_name(name: str) -> None:
    """Group names: 1 to 1024 characters, not only whitespace (they compare case-sensitively)."""
    if not 0 < len(name) <= MAX_GROUP_NAME or name.isspace():
        raise InvalidName(
            f"group name {name[:64]!r} is invalid: it must be 1 to {MAX_GROUP_NAME} characters and not "
            "only whitespace"
        )
