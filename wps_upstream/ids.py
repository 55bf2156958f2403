"""The rules for the names people see: user ids, display names, and the service's connection ids.

User ids and display names are NFC-normalised and must be readable as what they are: no control or
format characters (right-to-left overrides, zero-width spaces), no line or paragraph separators, no lone
surrogates, no leading or trailing spaces. One exception keeps emoji usable: a zero-width joiner between
two symbols, as in 👩‍💻.
"""

from __future__ import annotations

import unicodedata

from wps_upstream.errors import BadRequest

MAX_USER_ID_LENGTH = 128
MAX_CONNECTION_ID_LENGTH = 128
_REFUSED_CATEGORIES = {
    "Cc": "control characters",
    "Cf": "invisible format characters (such as direction overrides or zero-width spaces)",
    "Cs": "lone surrogates",
    "Zl": "line separators",
    "Zp": "paragraph separators",
}
_ZERO_WIDTH_JOINER = "\u200d"
_EMOJI_PRESENTATION = "\ufe0f"


def user_id(raw: str, what: str = "user id") -> str:
    """`raw` as a user id (NFC-normalised), or BadRequest saying what is wrong with it."""
    # Printable ASCII is its own NFC form and holds none of the refused characters.
    plain = raw.isascii() and raw.isprintable()
    value = raw if plain else unicodedata.normalize("NFC", raw)
    if not value.strip():
        raise BadRequest(f"The {what} is empty.")
    if value != value.strip():
        raise BadRequest(f"The {what} starts or ends with a space.")
    if len(value) > MAX_USER_ID_LENGTH:
        raise BadRequest(f"The {what} is longer than {MAX_USER_ID_LENGTH} characters.")
    problem = None if plain else _refused_character(value)
    if problem:
        raise BadRequest(f"The {what} contains {problem}.")
    return value


def display_name(raw: str) -> str | None:
    """`raw` as a display name (the user id rules), or None when it is not one: a name is only shown."""
    try:
        return user_id(raw, "display name")
    except BadRequest:
        return None


def event_user_id(value: str) -> str:
    """The user id of an event (`ce-userId`): it must be a user id as negotiate issues them (NFC already)."""
    what = "user id in ce-userId"
    if user_id(value, what) != value:
        raise BadRequest(
            f"The {what} is not in Unicode normal form C; get the client URL from /api/negotiate."
        )
    return value


def connection_id(value: str) -> str:
    """The service's connection id (`ce-connectionId`): up to 128 characters, no control characters."""
    if len(value) > MAX_CONNECTION_ID_LENGTH:
        raise BadRequest(f"The ce-connectionId is longer than {MAX_CONNECTION_ID_LENGTH} characters.")
    if value.isascii() and value.isprintable():  # the usual case, decided without a look per character
        return value
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise BadRequest("The ce-connectionId contains control characters.")
    return value


def _refused_character(value: str) -> str | None:
    for index, char in enumerate(value):
        category = unicodedata.category(char)
        if category not in _REFUSED_CATEGORIES:
            continue
        if char == _ZERO_WIDTH_JOINER and _joins_symbols(value, index):
            continue
        return _REFUSED_CATEGORIES[category]
    return None


def _joins_symbols(value: str, index: int) -> bool:
    """Whether the joiner at `index` joins two symbols (a variation selector may follow the first)."""
    before = value[:index].rstrip(_EMOJI_PRESENTATION)
    after = value[index + 1 : index + 2]
    return bool(before and after) and {unicodedata.category(before[-1]), unicodedata.category(after)} == {
        "So"
    }
