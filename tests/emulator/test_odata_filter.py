"""The OData filter subset: what each supported expression selects, and how unsupported ones are refused."""

from __future__ import annotations

import pytest

from wps_emulator.hub import Connection
from wps_emulator.odata import FilterError, compile_filter


class NoChannel:
    """Filters never deliver; a channel is only needed to build a Connection."""

    async def deliver(self, message: object) -> None:
        raise AssertionError("a filter must not deliver")

    async def close(self, reason: str | None) -> None:
        raise AssertionError("a filter must not close")


def conn(connection_id: str, user_id: str | None = None, *groups: str) -> Connection:
    return Connection(
        connection_id=connection_id, hub="chat", user_id=user_id, channel=NoChannel(), groups=set(groups)
    )


ALICE = conn("c1", "alice", "room1", "room2")
BOB = conn("c2", "bob", "room2")
ANON = conn("c3", None)
EVERYONE = [ALICE, BOB, ANON]


def selected(text: str) -> list[str]:
    predicate = compile_filter(text)
    return [c.connection_id for c in EVERYONE if predicate(c)]


def test_user_id_eq_selects_that_user() -> None:
    assert selected("userId eq 'alice'") == ["c1"]


def test_user_id_ne_selects_everyone_else_including_anonymous() -> None:
    assert selected("userId ne 'alice'") == ["c2", "c3"]


def test_connection_id_eq_and_ne() -> None:
    assert selected("connectionId eq 'c2'") == ["c2"]
    assert selected("connectionId ne 'c2'") == ["c1", "c3"]


def test_literal_may_stand_on_the_left() -> None:
    assert selected("'bob' eq userId") == ["c2"]


def test_null_literal_matches_anonymous_connections() -> None:
    assert selected("userId eq null") == ["c3"]
    assert selected("userId ne null") == ["c1", "c2"]


def test_group_membership() -> None:
    assert selected("'room2' in groups") == ["c1", "c2"]
    assert selected("'room1' in groups") == ["c1"]


def test_group_names_are_case_sensitive() -> None:
    assert selected("'ROOM1' in groups") == []


def test_in_a_list_of_user_ids() -> None:
    assert selected("userId in ('bob', 'nobody', 'alice')") == ["c1", "c2"]


def test_identifier_names_are_case_insensitive() -> None:
    assert selected("userid eq 'alice' or CONNECTIONID eq 'c3'") == ["c1", "c3"]


def test_and_or_not() -> None:
    assert selected("'room2' in groups and userId ne 'alice'") == ["c2"]
    assert selected("userId eq 'alice' or userId eq 'bob'") == ["c1", "c2"]
    assert selected("not ('room2' in groups)") == ["c3"]


def test_and_binds_tighter_than_or() -> None:
    # Read as c1 or (c2 and bob), c1 is selected; read left to right, (c1 or c2) and bob, it would not be.
    assert selected("connectionId eq 'c1' or connectionId eq 'c2' and userId eq 'bob'") == ["c1", "c2"]
    assert selected("(connectionId eq 'c1' or connectionId eq 'c2') and userId eq 'bob'") == ["c2"]


def test_not_binds_tighter_than_and_and_or() -> None:
    assert selected("not userId eq 'alice' and 'room2' in groups") == ["c2"]
    assert selected("not 'room2' in groups or userId eq 'alice'") == ["c1", "c3"]


def test_not_not_cancels() -> None:
    assert selected("not not userId eq 'bob'") == ["c2"]


def test_boolean_literals() -> None:
    assert selected("true") == ["c1", "c2", "c3"]
    assert selected("false or userId eq 'bob'") == ["c2"]


def test_doubled_quote_escapes_a_quote() -> None:
    predicate = compile_filter("userId eq 'o''brien'")
    assert predicate(conn("c9", "o'brien"))
    assert not predicate(conn("c9", "o''brien"))


def test_string_literal_keeps_spaces_and_unicode() -> None:
    assert compile_filter("'room 1/ä' in groups")(conn("c9", None, "room 1/ä"))


def test_whitespace_between_tokens_is_free() -> None:
    assert selected("  ( userId   eq'alice')or(userId eq 'bob')  ") == ["c1", "c2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("userId gt 'a'", "operator 'gt' is not supported"),
        ("userId le 'a'", "operator 'le' is not supported"),
        ("length(userId) gt 3", "function length() is not supported"),
        ("endswith(userId, 'x')", "function endswith() is not supported"),
        ("userId eq 5", "number literal 5 is not supported"),
        ("protocol eq 'json'", "unknown identifier 'protocol'"),
        ("userId EQ 'a'", "write 'eq', not 'EQ'"),
        ("userId eq 'a' AND true", "write 'and', not 'AND'"),
        ("NOT userId eq 'a'", "write 'not', not 'NOT'"),
        ("groups eq 'room1'", "groups is a collection"),
        ("userId in groups", "left side of 'in groups' must be a 'group name' literal"),
        ("groups in ('a')", "left side of 'in (...)' must be userId or connectionId"),
        ("'a' in userId", "right side of 'in' must be groups"),
        ("userId eq connectionId", "compare userId or connectionId with a 'string' literal"),
    ],
)
def test_unsupported_expressions_are_named(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_filter(text)


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "the filter is empty", None),
        ("userId eq 'alice", "unterminated string literal", 10),
        ("(userId eq 'a'", "expected ')', found the end of the filter", 14),
        ("userId eq 'a' userId", "expected 'and', 'or' or the end, found 'userId'", 14),
        ("userId 'a'", "expected 'eq', 'ne' or 'in', found string 'a'", 7),
        ("userId eq", "expected an identifier or a 'string', found the end of the filter", 9),
        ("userId eq 'a' and", "found the end of the filter", 17),
        ("userId in ('a' 'b')", "expected ',' or ')' in the list", 15),
        ("userId eq 'a' & true", "unexpected character '&'", 14),
    ],
)
def test_malformed_filters_say_what_and_where(text: str, message: str, position: int | None) -> None:
    with pytest.raises(FilterError) as raised:
        compile_filter(text)
    assert message in str(raised.value)
    assert raised.value.position == position


def test_deep_nesting_is_refused_with_a_clear_error_not_a_recursion_error() -> None:
    with pytest.raises(FilterError, match="nests deeper than 64 levels"):
        compile_filter("(" * 2000 + "true" + ")" * 2000)
    with pytest.raises(FilterError, match="nests deeper than 64 levels"):
        compile_filter("not " * 2000 + "true")


def test_a_long_chain_of_or_is_evaluated_without_recursing() -> None:
    text = " or ".join(f"userId eq 'u{n}'" for n in range(5000)) + " or userId eq 'bob'"
    predicate = compile_filter(text)
    assert predicate(BOB) and not predicate(ALICE)


def test_the_unsupported_message_lists_in_lists() -> None:
    with pytest.raises(FilterError, match=r"userId/connectionId in \('a', 'b'\)"):
        compile_filter("userId gt 'a'")
