"""Strict JSON text checked without recursion: what passes, what is refused, and exact member text."""

from __future__ import annotations

import pytest

from wps_emulator import jsontext


@pytest.mark.parametrize(
    "text",
    [
        "1", "-0", "0.5e+3", "1e400", '"\\ud800"', '"\\u00e9\\n"', "true", "null", "[]", "{}",
        ' { "a" : 1 , "b":[true,false,null] } ',
        "[" * 5000 + "]" * 5000,
        '{"a":' * 3000 + "1" + "}" * 3000,
    ],
)  # fmt: skip
def test_valid_json_passes_at_any_depth(text: str) -> None:
    jsontext.check(text)


@pytest.mark.parametrize(
    "text",
    [
        "", "01", "1.", ".5", "-", "NaN", "Infinity", "-Infinity", "[1,]", '{"a":1,}', "{a:1}",
        '"\t"', '"\\x"', "[1 2]", '{"a" 1}', "truex", "[", '{"a":[1}', "1 2", '"abc', "\ufeff1",
        "[" * 5000, "[" * 3000 + "NaN" + "]" * 3000,
    ],
)  # fmt: skip
def test_invalid_json_is_refused_at_any_depth(text: str) -> None:
    with pytest.raises(jsontext.JsonTextError):
        jsontext.check(text)


def test_members_keep_each_value_as_written_and_a_later_name_wins() -> None:
    members = jsontext.members('{"type":"x", "data" : {"n":1e400} ,"ackId":3,"type":"y"}')
    assert members == {"type": '"y"', "data": '{"n":1e400}', "ackId": "3"}


def test_scalar_decodes_only_scalars() -> None:
    assert jsontext.scalar('"a"') == "a"
    assert jsontext.scalar("3") == 3
    assert jsontext.scalar("[1]") is jsontext.NESTED


def test_the_error_says_where() -> None:
    with pytest.raises(jsontext.JsonTextError, match="expected a JSON value at position 3"):
        jsontext.check("[1,]")
