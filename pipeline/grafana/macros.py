"""What a Grafana panel's SQL becomes before ClickHouse runs it, as pure functions.

Two stages, in this order (grafana/clickhouse-datasource v4.20.0, released 2026-07-20):

1. Frontend, in the browser (`src/data/CHDatasource.ts`, `applyTemplateVariables`): the plugin's
   `$__conditionalAll(cond, $var)`, then Grafana's template-variable interpolation with the
   plugin's own default format (`format()`: an array becomes `'a','b'`, unescaped; a single
   value is left raw). Grafana's side is `@grafana/scenes` (`sceneInterpolator.ts`,
   `formatRegistry.ts`, `constants.ts` VARIABLE_REGEX, `MultiValueVariable.ts` for "All").
   Alert rules skip this stage: they reach the backend raw.
2. Backend, in the plugin's Go code: `pkg/macros/macros.go` (`ClickHouseMacros`, layered on
   `macropro.DefaultMacros`), expanded by grafana/macropro v1.0.1 (`Interpolate`: comments
   stripped first, one forward pass, the longest identifier after `$__` is the name, arguments
   split on top-level commas outside quotes, nested macros expanded innermost first).

Not emulated: ad hoc filters and `$__adHocFilters(...)` (frontend), the statement macros
`$__columns(...)` and friends (added after 4.20), Grafana's moment.js date formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Self

__all__ = ["AllValue", "MacroError", "expand_macros", "interpolate_variables", "render_query"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
ALL = "$__all"  # Grafana's ALL_VARIABLE_VALUE (scenes variables/constants.ts)


class MacroError(ValueError):
    """The query would fail in Grafana: a bad or unknown macro call, or an unemulated format."""


class AllValue(tuple[str, ...]):
    """A variable whose current value is "All" (`$__all`). Grafana expands it to the values of
    all its options, or to `custom` (the variable's custom all value) unformatted.

    A plain `"$__all"` (or `["$__all"]`) is also "All", with no options known."""

    custom: str | None

    def __new__(cls, options: Iterable[str] = (), custom: str | None = None) -> Self:
        value = super().__new__(cls, options)
        value.custom = custom
        return value


Value = str | Sequence[str]


# -- backend: the plugin's Go macros ------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """What the plugin's macros see (macropro.QueryContext): Grafana sends epoch milliseconds
    and an interval in whole milliseconds."""

    start_ms: int
    end_ms: int
    interval_ms: int


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, got {moment!r}")
    return (moment - _EPOCH) // _MS  # floored, like Go's time.Unix(0, ms*1e6)


# macros.go: timeToDateTime = toDateTime(t.Unix()) — whole seconds, floored; the zone is moot.
def _datetime(ms: int) -> str:
    return f"toDateTime({ms // 1000})"


# macros.go: timeToDateTime64 = fromUnixTimestamp64Milli(t.UnixMilli()).
def _datetime64(ms: int) -> str:
    return f"fromUnixTimestamp64Milli({ms})"


# macros.go: timeToDate = toDate(t.Format("2006-01-02")). The SDK builds the time with
# time.Unix, i.e. in the Grafana server's local zone (UTC in the official image), not the
# dashboard's: this module assumes a server in UTC.
def _date(ms: int) -> str:
    return f"toDate('{(_EPOCH + ms * _MS).date().isoformat()}')"


def _seconds(q: _Query) -> int:  # math.Max(Interval.Seconds(), 1), then int(): truncated
    return int(max(q.interval_ms / 1000, 1))


def _needs(name: str, count: int, args: list[str]) -> None:
    if len(args) != count:
        plural = "" if count == 1 else "s"
        raise MacroError(f"{name} requires {count} argument{plural}, received {len(args)}")


def _filter(name: str, bound: Callable[[int], str]) -> Callable[[_Query, list[str]], str]:
    def expand(q: _Query, args: list[str]) -> str:
        _needs(name, 1, args)
        col = args[0]
        return f"{col} >= {bound(q.start_ms)} AND {col} <= {bound(q.end_ms)}"

    return expand


def _date_time_filter(q: _Query, args: list[str]) -> str:
    _needs("dateTimeFilter", 2, args)
    d, t = args
    dates = f"({d} >= {_date(q.start_ms)} AND {d} <= {_date(q.end_ms)})"
    times = f"({t} >= {_datetime(q.start_ms)} AND {t} <= {_datetime(q.end_ms)})"
    return f"{dates} AND {times}"


def _time_bound(name: str, op: str) -> Callable[[_Query, list[str]], str]:
    def expand(q: _Query, args: list[str]) -> str:
        _needs(name, 1, args)
        return f"{args[0]} {op} {_datetime(q.start_ms if op == '>=' else q.end_ms)}"

    return expand


_GO_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_GO_TERM = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")


def _go_duration(text: str) -> float:
    """Seconds in a Go time.ParseDuration string ("5m", "1h30m", "1.5s"; there is no "d")."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while body and pos < len(body):
        term = _GO_TERM.match(body, pos)
        if term is None or term[1] in ("", "."):
            break
        total, pos = total + float(term[1]) * _GO_UNIT[term[2]], term.end()
    if not body or pos < len(body):
        raise MacroError(f'timeGroup: invalid interval "{text}"')
    return -total if text.startswith("-") else total


def _time_group(q: _Query, args: list[str]) -> str:
    # macros.go TimeGroup: strip quotes, time.ParseDuration, math.Round to whole seconds.
    _needs("timeGroup", 2, args)
    period = args[1].strip().strip("'\"")
    seconds = _go_duration(period)
    whole = int(abs(seconds) + 0.5) * (1 if seconds >= 0 else -1)  # Go rounds half away
    if whole <= 0:
        raise MacroError(f'timeGroup: interval must be positive, got "{period}"')
    return f"toStartOfInterval(toDateTime({args[0].strip()}), INTERVAL {whole} second)"


def _time_interval(q: _Query, args: list[str]) -> str:
    _needs("timeInterval", 1, args)
    return f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {_seconds(q)} second)"


def _time_interval_ms(q: _Query, args: list[str]) -> str:
    _needs("timeInterval_ms", 1, args)
    ms = max(q.interval_ms, 1)
    return f"toStartOfInterval(toDateTime64({args[0]}, 3), INTERVAL {ms} millisecond)"


def _interval_text(ms: int) -> str:
    """Grafana's interval notation, truncated to the largest unit (90 s is "1m"): @grafana/data
    rangeutil.secondsToHms for the frontend's $__interval, macropro FormatDuration for the
    backend's."""
    units = (("y", 31_536_000_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000))
    for unit, size in (*units, ("s", 1000), ("ms", 1)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def _no_context(name: str) -> Callable[[_Query, list[str]], str]:
    def expand(q: _Query, args: list[str]) -> str:
        raise MacroError(f"$__{name}: no {name} name in query context")

    return expand


# pkg/macros/macros.go ClickHouseMacros = macropro.MergeMacros(macropro.DefaultMacros, {...}).
# A macro that takes no argument ignores any it is given; its "(...)" is consumed all the same.
MACROS: dict[str, Callable[[_Query, list[str]], str]] = {
    "fromTime": lambda q, _: _datetime(q.start_ms),
    "toTime": lambda q, _: _datetime(q.end_ms),
    "fromTime_ms": lambda q, _: _datetime64(q.start_ms),
    "toTime_ms": lambda q, _: _datetime64(q.end_ms),
    "timeFilter": _filter("timeFilter", _datetime),
    "timeFilter_ms": _filter("timeFilter_ms", _datetime64),
    "dateFilter": _filter("dateFilter", _date),
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeFrom": _time_bound("timeFrom", ">="),  # ClickHouse overrides of the SDK defaults
    "timeTo": _time_bound("timeTo", "<="),
    "timeGroup": _time_group,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda q, _: str(_seconds(q)),
    # macropro defaults.go, kept by the plugin (a dashboard's frontend replaces the first two
    # before they get here). An SQL-editor query carries no table or column: the defaults fail.
    "interval": lambda q, _: _interval_text(q.interval_ms),
    "interval_ms": lambda q, _: str(q.interval_ms),
    "table": _no_context("table"),
    "column": _no_context("column"),
}


def _scan_quoted(sql: str, i: int, backslash: bool) -> int:
    """The index after the '...' or "..." literal opening at i (doubled quotes continue it;
    with `backslash`, so does \\x). Unterminated: the rest of the input."""
    quote, j = sql[i], i + 1
    while j < len(sql):
        escaped = backslash and sql[j] == "\\" and j + 1 < len(sql)
        if escaped or sql[j : j + 2] == quote * 2:
            j += 2
        elif sql[j] == quote:
            return j + 1
        else:
            j += 1
    return j


def _strip_comments(sql: str) -> str:
    """macropro StripComments with the plugin's LineComment|BlockComment|BackslashEscape (#1991):
    `--` to the end of the line and `/* */` become spaces, one per UTF-8 byte."""
    out, i = [], 0
    while i < len(sql):
        if sql[i] in "'\"":
            j = _scan_quoted(sql, i, backslash=True)
            out.append(sql[i:j])
        elif sql.startswith("--", i):
            j = min((k for k in (sql.find("\n", i), sql.find("\r", i)) if k >= 0), default=len(sql))
            out.append(" " * len(sql[i:j].encode()))
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            j = len(sql) if end < 0 else end + 2
            out.append(" " * len(sql[i:j].encode()))
        else:
            j = i + 1
            out.append(sql[i])
        i = j
    return "".join(out)


def _closing_paren(sql: str, i: int) -> int | None:
    """macropro findClosingParen: the ")" closing the "(" at i, skipping quoted literals."""
    depth = 0
    while i < len(sql):
        if sql[i] in "'\"":
            i = _scan_quoted(sql, i, backslash=False)
            continue
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        if sql[i] == ")" and depth == 0:
            return i
        i += 1
    return None


def _split_args(raw: str) -> list[str]:
    """macropro parseArgs: top-level commas outside quotes separate trimmed arguments."""
    raw = raw.strip()
    if not raw:
        return []
    args, depth, start, i = [], 0, 0, 0
    while i < len(raw):
        if raw[i] in "'\"":
            i = _scan_quoted(raw, i, backslash=False)
            continue
        if raw[i] == "(":
            depth += 1
        elif raw[i] == ")":
            depth -= 1
        elif raw[i] == "," and depth == 0:
            args.append(raw[start:i].strip())
            start = i + 1
        i += 1
    return [*args, raw[start:].strip()]


def _in_literal(sql: str, at: int) -> bool:
    i = 0
    while i < at:
        j = _scan_quoted(sql, i, backslash=True) if sql[i] in "'\"" else i + 1
        if j > at and sql[i] in "'\"":
            return True
        i = j
    return False


_TOKEN = re.compile(r"\$__([A-Za-z0-9_]*)")  # macropro: the longest identifier is the name


def _expand(sql: str, q: _Query) -> str:
    out, pos = [], 0
    while (token := _TOKEN.search(sql, pos)) is not None:
        out.append(sql[pos : token.start()])
        name, pos = token[1], token.end()
        has_args = sql.startswith("(", pos)
        if name not in MACROS:
            # The plugin leaves it, and ClickHouse rejects "$__name(" (outside a literal).
            if has_args and not _in_literal(sql, token.start()):
                raise MacroError(f"unknown macro $__{name}(...): ClickHouse would reject it")
            out.append(token[0])  # e.g. $__fromTimeZone is no macro: left alone
            continue
        raw = ""
        close = _closing_paren(sql, pos) if has_args else None
        if close is not None:  # unbalanced parens: a call without arguments
            raw, pos = _expand(sql[pos + 1 : close], q), close + 1  # innermost first
        args = _split_args(raw)
        try:
            out.append(MACROS[name](q, args))
        except MacroError as error:
            raise MacroError(f"macro $__{name}({', '.join(args)}): {error}") from None
    out.append(sql[pos:])
    return "".join(out)


def expand_macros(sql: str, *, start: datetime, end: datetime, interval_s: float = 60) -> str:
    """The SQL after the plugin's backend macros, as the plugin's Go code expands them for a
    query over [start, end] (aware datetimes) with the given interval. Raises MacroError for an
    unknown $__macro( call or a wrong argument count, naming it — as the plugin would fail."""
    q = _Query(_epoch_ms(start), _epoch_ms(end), round(interval_s * 1000))
    if "$__" not in sql:  # macropro's fast path: returned untouched, comments included
        return sql
    return _expand(_strip_comments(sql), q)


# -- frontend: Grafana's template variables and the plugin's $__conditionalAll ------------------

# scenes variables/constants.ts VARIABLE_REGEX: $var | [[var]] [[var:fmt]] | ${var.path:fmt}
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}", re.ASCII
)


def _quoted(quote: str, escaped: str) -> Callable[[str], str]:
    return lambda v: quote + v.replace(quote, escaped) + quote


def _each(one: Callable[[str], str]) -> Callable[[Value, list[str]], str]:
    return lambda v, _: one(v) if isinstance(v, str) else ",".join(map(one, v))


def _joined(v: Value, sep: str) -> str:
    return v if isinstance(v, str) else sep.join(v)  # JS String(array) joins with ","


def _iso(ms: int) -> str:  # JS Date.toISOString
    moment = _EPOCH + ms * _MS
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _date_format(v: Value, args: list[str]) -> str:
    if not isinstance(v, str):
        raise MacroError("the date format takes a single value")
    digits = re.match(r"\s*[+-]?\d+", v)  # parseInt
    if digits is None:
        return "NaN"
    ms, how = int(digits[0]), (args[0] if args else "iso")
    if how == "ms":
        return v
    if how == "seconds":
        return str((ms + 500) // 1000)  # Math.round(ms / 1000)
    if how == "iso":
        return _iso(ms)
    raise MacroError(f"date format {':'.join(args)!r} (moment.js) is not emulated")


# scenes interpolation/formatRegistry.ts. sqlstring pairs ' and turns " into \" — but leaves
# backslashes alone, and ClickHouse reads \ as an escape inside '...': a value with \t, \n, \'
# or a trailing \ does not round-trip (a value ending in \ even breaks out of the literal).
# singlequote escapes ' as \' (which ClickHouse accepts); doublequote gives an identifier.
_FORMATS: dict[str, Callable[[Value, list[str]], str]] = {
    "raw": lambda v, _: _joined(v, ","),
    "csv": lambda v, _: _joined(v, ","),
    "pipe": lambda v, _: _joined(v, "|"),
    "join": lambda v, args: _joined(v, args[0] if args else ","),
    "glob": lambda v, _: (
        "{" + ",".join(v) + "}" if len(v) > 1 and not isinstance(v, str) else _joined(v, ",")
    ),
    "json": lambda v, _: (
        v if isinstance(v, str) else json.dumps(list(v), separators=(",", ":"), ensure_ascii=False)
    ),
    "sqlstring": _each(lambda v: "'" + v.replace("'", "''").replace('"', '\\"') + "'"),
    "singlequote": _each(_quoted("'", "\\'")),
    "doublequote": _each(_quoted('"', '\\"')),
    "date": _date_format,
}
# Grafana formats this module does not emulate; any other unknown name falls back to glob.
_NOT_EMULATED = {"lucene", "regex", "distributed", "html", "percentencode", "text",
                 "queryparam", "customqueryparam", "uriencode"}  # fmt: skip


def _plugin_format(v: Value) -> str:
    """CHDatasource.ts `format`, the plugin's default: arrays quoted and joined, no escaping."""
    return v if isinstance(v, str) else "'" + "','".join(v) + "'"


def _is_all(v: Value) -> bool:  # scenes MultiValueVariable.hasAllValue
    return isinstance(v, AllValue) or v == ALL or (not isinstance(v, str) and list(v[:1]) == [ALL])


def _format(v: Value, fmt: str | None) -> str:
    if fmt is None:
        return _plugin_format(v)
    name, *args = fmt.split(":")
    return _FORMATS.get(name, _FORMATS["glob"])(v, args)  # an unknown name: glob


def _interpolate(sql: str, variables: Mapping[str, Value], default: str | None) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        fmt, path = match[3] or match[6] or default, match[5]
        if name not in variables:
            return match[0]  # an unknown variable stays as written
        value = variables[name]
        if fmt is not None and fmt.split(":")[0] in _NOT_EMULATED:
            raise MacroError(f"the {fmt!r} variable format is not emulated")
        if _is_all(value):
            custom = value.custom if isinstance(value, AllValue) else None
            if custom is not None:  # CustomAllValue: unformatted, then interpolated again
                return _interpolate(custom, variables, "glob")
            value = list(value) if isinstance(value, AllValue) else []
        if path is not None and not isinstance(value, str) and path.isdigit():
            value = value[int(path)] if int(path) < len(value) else value
        return _format(value if isinstance(value, str) else list(value), fmt)

    return _VARIABLE.sub(replace, sql)


_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_REF = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+", re.ASCII)


def _macro_args(sql: str, open_at: int) -> list[str]:
    """CHDatasource.ts getMacroArgs: split on commas at depth 1; quotes are not respected."""
    args, depth, last = [], 0, 1
    sub = sql[open_at:]
    for token in re.finditer(r"[(),]", sub):
        depth += {"(": 1, ")": -1}.get(token[0], 0)
        if token[0] == "," and depth == 1:
            args.append(sub[last : token.start()])
            last = token.end()
        if depth == 0:
            return [*args, sub[last : token.start()]]
    return []


def _apply_conditional_all(sql: str, variables: Mapping[str, Value]) -> str:
    """CHDatasource.ts applyConditionalAll, last call first: `cond`, or `1=1` when the variable
    (written `$var` or `${var}`, no format) is empty or "All". A call without exactly two
    arguments stops the processing; the rest stays in the SQL."""
    while (at := sql.rfind(_CONDITIONAL_ALL)) >= 0:
        params = _macro_args(sql, at + len(_CONDITIONAL_ALL) - 1)
        if len(params) != 2:
            return sql
        phrase = params[0]
        ref = _VARIABLE_REF.search(params[1].strip())
        if ref is not None and ref[0] in variables:
            value = variables[ref[0]]  # current.value.toString()
            if (ALL if _is_all(value) else _joined(value, ",")) in ("", ALL):
                phrase = "1=1"
        # JS String.replace with a string pattern: the first occurrence (and JS would read
        # $&, $', $` and $$ in `phrase` as replacement patterns; not emulated).
        sql = sql.replace(f"{_CONDITIONAL_ALL}{params[0]},{params[1]})", phrase, 1)
    return sql


def interpolate_variables(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """Grafana's frontend template-variable interpolation for the formats above. A variable not
    in `variables` is left as is (Grafana does the same). Also the plugin's frontend-only
    $__conditionalAll(cond, $var)."""
    return _interpolate(_apply_conditional_all(sql, variables), variables, None)


def render_query(
    sql: str,
    *,
    start: datetime,
    end: datetime,
    interval_s: float = 60,
    variables: Mapping[str, str | Sequence[str]] | None = None,
) -> str:
    """What a dashboard panel query becomes: variables first (frontend), then macros (backend)."""
    interval_ms = round(interval_s * 1000)
    builtins = {  # scenes variables/macros: $__from/$__to in epoch ms, $__interval(_ms)
        "__from": str(_epoch_ms(start)),
        "__to": str(_epoch_ms(end)),
        "__interval": _interval_text(interval_ms),
        "__interval_ms": str(interval_ms),
    }
    frontend = interpolate_variables(sql, {**builtins, **(variables or {})})
    return expand_macros(frontend, start=start, end=end, interval_s=interval_s)
