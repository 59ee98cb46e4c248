"""SCIM filter expressions (RFC 7644 section 3.4.2.2), as Okta's `filter` / `search` and
PingOne's activities `filter` take them: `attrPath op value`, `attrPath pr`, `and`, `or`,
`not (…)`, parentheses; operators eq ne co sw ew gt ge lt le; keywords in any case (PingOne
writes `AND`). Values are JSON strings, numbers, true, false or null. A comparison of two
timestamps compares the instants (`2018-08-20T00:00:00Z` against `…T00:00:00.000Z`).

Okta: https://developer.okta.com/docs/reference/core-okta-api/#filter (every operator of
RFC 7644 except `[ ]`); PingOne:
https://developer.pingidentity.com/pingone-api/platform/audit-activities/get-user-activities.html.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson

Predicate = Callable[[Any], bool]
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TOKEN = re.compile(
    r'\s*(?:(?P<open>\()|(?P<close>\))|(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<word>[A-Za-z_$][\w.$:-]*)|(?P<number>-?\d+(?:\.\d+)?))"
)


class FilterError(ValueError):
    """An expression the grammar does not read; the message says where."""


def parse(text: str) -> Predicate:
    """A predicate on a record (a dict) for a SCIM filter; `FilterError` if unreadable."""
    tokens = list(_tokens(text))
    predicate, rest = _or(tokens, 0)
    if rest != len(tokens):
        raise FilterError(f"unexpected {tokens[rest][1]!r} at token {rest + 1}")
    return predicate


def attributes(text: str) -> set[str]:
    """The attribute paths an expression compares (to refuse what an API does not filter on)."""
    return {value for kind, value in _tokens(text) if kind == "word" and _is_attribute(value)}


def _is_attribute(word: str) -> bool:
    return word.lower() not in OPERATORS | {"and", "or", "not", "pr", "true", "false", "null"}


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"cannot read the filter at character {position + 1}")
        kind = match.lastgroup or ""
        yield kind, match.group(kind)
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1


def _or(tokens: list[tuple[str, str]], at: int) -> tuple[Predicate, int]:
    left, at = _and(tokens, at)
    while at < len(tokens) and _kw(tokens[at], "or"):
        right, at = _and(tokens, at + 1)
        left = _either(left, right)
    return left, at


def _and(tokens: list[tuple[str, str]], at: int) -> tuple[Predicate, int]:
    left, at = _factor(tokens, at)
    while at < len(tokens) and _kw(tokens[at], "and"):
        right, at = _factor(tokens, at + 1)
        left = _both(left, right)
    return left, at


def _factor(tokens: list[tuple[str, str]], at: int) -> tuple[Predicate, int]:
    if at >= len(tokens):
        raise FilterError("the filter ends too early")
    kind, value = tokens[at]
    if kind == "word" and _kw(tokens[at], "not"):
        inner, at = _factor(tokens, at + 1)
        return (lambda record: not inner(record)), at
    if kind == "open":
        inner, at = _or(tokens, at + 1)
        if at >= len(tokens) or tokens[at][0] != "close":
            raise FilterError("a parenthesis is not closed")
        return inner, at + 1
    if kind != "word" or not _is_attribute(value):
        raise FilterError(f"expected an attribute, found {value!r}")
    if at + 1 >= len(tokens):
        raise FilterError(f"no operator after {value!r}")
    operator = tokens[at + 1][1].lower()
    if operator == "pr":
        return _present(value), at + 2
    if operator not in OPERATORS or at + 2 >= len(tokens):
        raise FilterError(f"unknown operator {tokens[at + 1][1]!r}")
    return _compare(value, operator, _literal(tokens[at + 2])), at + 3


def _kw(token: tuple[str, str], word: str) -> bool:
    return token[0] == "word" and token[1].lower() == word


def _literal(token: tuple[str, str]) -> Any:
    kind, value = token
    if kind in ("string", "number"):
        return orjson.loads(value)
    if kind == "word" and value.lower() in ("true", "false", "null"):
        return orjson.loads(value.lower())
    raise FilterError(f"expected a value, found {value!r}")


def values(record: Any, path: str) -> list[Any]:
    """Every value at a dotted path; lists on the way fan out (`target.id`)."""
    found = [record]
    for part in path.split("."):
        step = []
        for item in found:
            items = item if isinstance(item, list) else [item]
            for one in items:
                if isinstance(one, dict) and part in one:
                    step.append(one[part])
        found = step
    return [v for value in found for v in (value if isinstance(value, list) else [value])]


def _present(path: str) -> Predicate:
    return lambda record: any(value not in (None, "", []) for value in values(record, path))


def _compare(path: str, operator: str, expected: Any) -> Predicate:
    wanted = _instant(expected)

    def test(value: Any) -> bool:
        if operator in ("co", "sw", "ew"):
            if not isinstance(value, str) or not isinstance(expected, str):
                return False
            got, want = value.lower(), expected.lower()
            return (
                want in got
                if operator == "co"
                else (got.startswith(want) if operator == "sw" else got.endswith(want))
            )
        left, right = value, expected
        if wanted is not None and (instant := _instant(value)) is not None:
            left, right = instant, wanted
        elif isinstance(value, str) and isinstance(expected, str) and operator in ("eq", "ne"):
            left, right = value.lower(), expected.lower()  # SCIM string equality: caseExact false
        try:
            return {
                "eq": left == right,
                "ne": left != right,
                "gt": left > right,
                "ge": left >= right,
                "lt": left < right,
                "le": left <= right,
            }[operator]
        except TypeError:
            return False

    if operator == "ne":
        return lambda record: all(test(value) for value in values(record, path))
    return lambda record: any(test(value) for value in values(record, path))


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 19 or value[4:5] != "-":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _either(left: Predicate, right: Predicate) -> Predicate:
    return lambda record: left(record) or right(record)


def _both(left: Predicate, right: Predicate) -> Predicate:
    return lambda record: left(record) and right(record)
