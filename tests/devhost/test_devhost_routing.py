"""Route templates: what the dev host matches, as the Functions host's routing would."""

import pytest

from devhost.routing import RouteTemplate, RouteTemplateError, split_path


def match(template: str, path: str) -> dict[str, str] | None:
    return RouteTemplate.parse(template).match(split_path(path))


def test_literal_route_matches_case_insensitively() -> None:
    assert match("api/EventHandler", "/API/eventhandler") == {}


def test_literal_route_ignores_one_trailing_slash() -> None:
    assert match("api/index", "/api/index/") == {}


def test_parameter_captures_one_segment_percent_decoded() -> None:
    assert match("api/items/{id}", "/api/items/a%20b") == {"id": "a b"}


def test_parameter_does_not_span_segments() -> None:
    assert match("api/items/{id}", "/api/items/a/b") is None


def test_int_constraint_rejects_non_digits() -> None:
    assert match("api/items/{id:int}", "/api/items/abc") is None
    assert match("api/items/{id:int}", "/api/items/17") == {"id": "17"}


def test_unknown_constraint_is_tolerated_and_not_checked() -> None:
    assert match("api/items/{id:regex(^x$)}", "/api/items/anything") == {"id": "anything"}


def test_optional_parameter_may_be_absent() -> None:
    assert match("api/greet/{name?}", "/api/greet") == {}
    assert match("api/greet/{name?}", "/api/greet/ada") == {"name": "ada"}


def test_catch_all_takes_the_rest_of_the_path() -> None:
    assert match("api/files/{*path}", "/api/files/a/b%2Fc/d.txt") == {"path": "a/b/c/d.txt"}


def test_catch_all_matches_an_empty_rest() -> None:
    assert match("api/files/{*path}", "/api/files") == {"path": ""}


def test_literal_route_takes_precedence_over_parameter() -> None:
    literal = RouteTemplate.parse("api/items/new")
    parameter = RouteTemplate.parse("api/items/{id}")
    catch_all = RouteTemplate.parse("api/{*rest}")
    ordered = sorted([catch_all, parameter, literal], key=lambda template: template.precedence)
    assert ordered == [literal, parameter, catch_all]


def test_catch_all_before_the_last_segment_is_rejected() -> None:
    with pytest.raises(RouteTemplateError, match="last segment"):
        RouteTemplate.parse("api/{*rest}/tail")


def test_parameter_mixed_with_text_in_one_segment_is_rejected_clearly() -> None:
    with pytest.raises(RouteTemplateError, match="not supported"):
        RouteTemplate.parse("api/file-{name}.txt")
