"""The OData `filter` subset the emulator understands, compiled to a predicate over `Connection`.

Web PubSub's REST sends (and `:addToGroups` / `:removeFromGroups`) take an OData boolean expression
that selects connections. Supported here:

- identifiers `userId`, `connectionId` (strings; `userId` is null for anonymous connections) and
  `groups` (the connection's groups); identifier names are case-insensitive, as in the service;
- `eq` / `ne` between a string identifier and a string literal (`'it''s'` escapes a quote) or `null`;
- `'<group>' in groups`, and `userId in ('a', 'b')` / `connectionId in (...)`;
- `and`, `or`, `not`, parentheses, `true`, `false`; at most 64 levels of parentheses and `not`.

Precedence, tightest first: comparisons, `not`, `and`, `or`. `not` applies to the comparison after
it, so `not userId eq 'a'` means `not (userId eq 'a')`. Anything else (`gt`, functions such as
`length(...)`, numbers, ...) raises `FilterError` with a message naming what is unsupported, which the
REST layer turns into a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from wps_emulator.hub import Connection

Predicate = Callable[[Connection], bool]

_KEYWORDS = ("and", "or", "not", "eq", "ne", "in", "true", "false", "null")
_UNSUPPORTED_OPERATORS = ("gt", "ge", "lt", "le", "has", "add", "sub", "mul", "div", "mod")
_STRING_FIELDS = {"userid": "userId", "connectionid": "connectionId"}
_SUPPORTED = (
    "supported: userId/connectionId eq|ne 'text'|null, userId/connectionId in ('a', 'b'), "
    "'group' in groups, and, or, not, ( )"
)
MAX_NESTING = 64  # parentheses and `not`s inside each other; deeper filters are refused, not recursed


class FilterError(ValueError):
    """The filter text is malformed or uses something this emulator does not support."""

    def __init__(self, message: str, position: int | None = None) -> None:
        where = f" (at position {position})" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.position = position


TokenKind = Literal["string", "word", "number", "lparen", "rparen", "comma", "end"]


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str  # a string literal's unescaped value; otherwise the source text
    position: int


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"[-+]?[0-9][0-9.eE+-]*")
_PUNCTUATION: dict[str, TokenKind] = {"(": "lparen", ")": "rparen", ",": "comma"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char in _PUNCTUATION:
            token, i = _Token(_PUNCTUATION[char], char, i), i + 1
        elif char == "'":
            token, i = _string_literal(text, i)
        elif match := _WORD.match(text, i) or _NUMBER.match(text, i):
            token, i = _Token("word" if match.re is _WORD else "number", match.group(), i), match.end()
        else:
            raise FilterError(f"unexpected character {char!r}", i)
        tokens.append(token)
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _string_literal(text: str, start: int) -> tuple[_Token, int]:
    """The literal that opens at `start` (OData doubles a quote to escape it) and where it ends."""
    value: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] != "'":
            value.append(text[i])
            i += 1
        elif text[i + 1 : i + 2] == "'":
            value.append("'")
            i += 2
        else:
            return _Token("string", "".join(value), start), i + 1
    raise FilterError("unterminated string literal", start)


# Operands of a comparison: a connection field, a string literal, null, or a parenthesised list.
@dataclass(frozen=True)
class _Field:
    name: Literal["userId", "connectionId", "groups"]
    position: int


@dataclass(frozen=True)
class _Literal:
    value: str | None  # None is the `null` literal
    position: int


@dataclass(frozen=True)
class _List:
    values: tuple[str, ...]
    position: int


_Operand = _Field | _Literal | _List


class _Parser:
    """Recursive descent over the token list; each `_parse_*` returns a compiled predicate."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._index = 0
        self._nesting = 0

    @property
    def _current(self) -> _Token:
        return self._tokens[self._index]

    def _advance(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _at_keyword(self, keyword: str) -> bool:
        token = self._current
        return token.kind == "word" and token.text == keyword

    def parse(self) -> Predicate:
        if self._current.kind == "end":
            raise FilterError("the filter is empty")
        predicate = self._parse_or()
        token = self._current
        if token.kind != "end":
            raise FilterError(_misplaced(token, "'and', 'or' or the end"), token.position)
        return predicate

    def _parse_or(self) -> Predicate:
        terms = [self._parse_and()]
        while self._at_keyword("or"):
            self._advance()
            terms.append(self._parse_and())
        return _any_of(terms)

    def _parse_and(self) -> Predicate:
        terms = [self._parse_not()]
        while self._at_keyword("and"):
            self._advance()
            terms.append(self._parse_not())
        return _all_of(terms)

    def _parse_not(self) -> Predicate:
        if self._at_keyword("not"):
            self._enter(self._advance())
            inner = self._parse_not()
            self._nesting -= 1
            return lambda conn: not inner(conn)
        return self._parse_comparison()

    def _enter(self, token: _Token) -> None:
        self._nesting += 1
        if self._nesting > MAX_NESTING:
            raise FilterError(
                f"the filter nests deeper than {MAX_NESTING} levels of ( ) and not", token.position
            )

    def _parse_comparison(self) -> Predicate:
        token = self._current
        if token.kind == "lparen":
            self._enter(self._advance())
            inner = self._parse_or()
            self._expect("rparen", "')'")
            self._nesting -= 1
            return inner
        if token.kind == "word" and token.text in ("true", "false"):
            self._advance()
            value = token.text == "true"
            return lambda _conn: value
        left = self._parse_operand()
        operator = self._current
        if operator.kind != "word" or operator.text not in ("eq", "ne", "in"):
            raise FilterError(_misplaced(operator, "'eq', 'ne' or 'in'"), operator.position)
        self._advance()
        right = self._parse_operand(allow_list=operator.text == "in")
        if operator.text == "in":
            return _membership(left, right)
        return _equality(left, right, negate=operator.text == "ne")

    def _parse_operand(self, *, allow_list: bool = False) -> _Operand:
        token = self._advance()
        if token.kind == "string":
            return _Literal(token.text, token.position)
        if token.kind == "lparen" and allow_list:
            return self._parse_list(token.position)
        if token.kind == "number":
            raise FilterError(f"number literal {token.text} is not supported; {_SUPPORTED}", token.position)
        if token.kind != "word":
            raise FilterError(
                f"expected an identifier or a 'string', found {_describe(token)}", token.position
            )
        if token.text == "null":
            return _Literal(None, token.position)
        if self._current.kind == "lparen":
            raise FilterError(f"function {token.text}() is not supported; {_SUPPORTED}", token.position)
        name = token.text.casefold()
        if name in _STRING_FIELDS:
            return _Field(_STRING_FIELDS[name], token.position)  # type: ignore[arg-type]
        if name == "groups":
            return _Field("groups", token.position)
        raise FilterError(_unknown_word(token.text), token.position)

    def _parse_list(self, position: int) -> _List:
        values: list[str] = []
        while True:
            token = self._advance()
            if token.kind != "string":
                raise FilterError(
                    f"expected a 'string' in the list, found {_describe(token)}", token.position
                )
            values.append(token.text)
            separator = self._advance()
            if separator.kind == "rparen":
                return _List(tuple(values), position)
            if separator.kind != "comma":
                raise FilterError(
                    f"expected ',' or ')' in the list, found {_describe(separator)}", separator.position
                )

    def _expect(self, kind: TokenKind, what: str) -> None:
        token = self._advance()
        if token.kind != kind:
            raise FilterError(f"expected {what}, found {_describe(token)}", token.position)


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return f"string '{token.text}'"
    return repr(token.text)


def _misplaced(token: _Token, expected: str) -> str:
    """Explain an unexpected token, pointing out unsupported or miscased operators by name."""
    lowered = token.text.casefold()
    if (
        token.kind == "word"
        and token.text not in _KEYWORDS
        and lowered in (*_UNSUPPORTED_OPERATORS, *_KEYWORDS)
    ):
        return _unknown_word(token.text)
    return f"expected {expected}, found {_describe(token)}"


def _unknown_word(word: str) -> str:
    lowered = word.casefold()
    if lowered in _UNSUPPORTED_OPERATORS:
        return f"operator '{word}' is not supported; {_SUPPORTED}"
    if lowered in _KEYWORDS:
        return f"OData operators and literals are lowercase: write '{lowered}', not '{word}'"
    return f"unknown identifier '{word}'; the identifiers are userId, connectionId and groups"


# A chain of `or`s (or `and`s) is one flat predicate, so a long filter cannot nest closures deeply.
def _any_of(terms: list[Predicate]) -> Predicate:
    if len(terms) == 1:
        return terms[0]
    return lambda conn: any(term(conn) for term in terms)


def _all_of(terms: list[Predicate]) -> Predicate:
    if len(terms) == 1:
        return terms[0]
    return lambda conn: all(term(conn) for term in terms)


def _string_field(conn: Connection, name: str) -> str | None:
    return conn.user_id if name == "userId" else conn.connection_id


def _equality(left: _Operand, right: _Operand, *, negate: bool) -> Predicate:
    # Either side may be the field: `userId eq 'a'` and `'a' eq userId` mean the same.
    if isinstance(left, _Literal) and isinstance(right, _Field):
        left, right = right, left
    if isinstance(left, _Field) and left.name == "groups":
        raise FilterError("groups is a collection; test membership with 'group' in groups", left.position)
    if not isinstance(left, _Field):
        raise FilterError("a comparison needs userId or connectionId on one side", left.position)
    if not isinstance(right, _Literal):
        raise FilterError("compare userId or connectionId with a 'string' literal or null", right.position)
    name, value = left.name, right.value
    if negate:
        return lambda conn: _string_field(conn, name) != value
    return lambda conn: _string_field(conn, name) == value


def _membership(left: _Operand, right: _Operand) -> Predicate:
    if isinstance(right, _Field) and right.name == "groups":
        if not isinstance(left, _Literal) or left.value is None:
            raise FilterError("the left side of 'in groups' must be a 'group name' literal", left.position)
        group = left.value
        return lambda conn: group in conn.groups
    if isinstance(right, _List):
        if not isinstance(left, _Field) or left.name == "groups":
            raise FilterError("the left side of 'in (...)' must be userId or connectionId", left.position)
        name, values = left.name, frozenset(right.values)
        return lambda conn: _string_field(conn, name) in values
    raise FilterError("the right side of 'in' must be groups or a ('list', 'of', 'strings')", right.position)


def compile_filter(text: str) -> Predicate:
    """Parse an OData filter and return a predicate over connections; raises `FilterError`."""
    return _Parser(text).parse()
