"""Grafana panel SQL, expanded the way Grafana and the ClickHouse plugin (v4.20) expand it.

Expected strings come from the plugin's own tests (pkg/macros/macros_test.go: from =
2014-11-12T11:45:26.371Z, to = 2015-11-12T11:45:26.371Z, interval = 20 s; TestInterpolate uses
.123Z / .456Z), from the PRs that fixed its macro engine (#1991 backslash literals, #2043 nested
macros) and from Grafana's formatRegistry tests. The last section runs the expanded SQL on the
real ClickHouse engine (chDB, in-process).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from pipeline.grafana.macros import (
    AllValue,
    MacroError,
    expand_macros,
    interpolate_variables,
    render_query,
)

FROM = datetime(2014, 11, 12, 11, 45, 26, 371000, tzinfo=UTC)
TO = datetime(2015, 11, 12, 11, 45, 26, 371000, tzinfo=UTC)


def expand(sql: str, interval_s: float = 20, start: datetime = FROM, end: datetime = TO) -> str:
    return expand_macros(sql, start=start, end=end, interval_s=interval_s)


# -- each backend macro, against macros_test.go ------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # TestMacroFromTimeFilter / ToTimeFilter / FromTimeFilterMs / ToTimeFilterMs
        ("$__fromTime", "toDateTime(1415792726)"),
        ("$__toTime", "toDateTime(1447328726)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1415792726371)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1447328726371)"),
        # TestMacroDateFilter, TestMacroDateTimeFilter ("dt" is its alias in the macro map)
        (
            "$__dateFilter(dateCol)",
            "dateCol >= toDate('2014-11-12') AND dateCol <= toDate('2015-11-12')",
        ),
        (
            "$__dateTimeFilter(dateCol, timeCol)",
            "(dateCol >= toDate('2014-11-12') AND dateCol <= toDate('2015-11-12')) AND "
            "(timeCol >= toDateTime(1415792726) AND timeCol <= toDateTime(1447328726))",
        ),
        (
            "$__dt(dateCol, timeCol)",
            "(dateCol >= toDate('2014-11-12') AND dateCol <= toDate('2015-11-12')) AND "
            "(timeCol >= toDateTime(1415792726) AND timeCol <= toDateTime(1447328726))",
        ),
        # TestMacroTimeInterval / TimeIntervalMs / IntervalSeconds (interval 20 s)
        ("$__timeInterval(col)", "toStartOfInterval(toDateTime(col), INTERVAL 20 second)"),
        (
            "$__timeInterval_ms(col)",
            "toStartOfInterval(toDateTime64(col, 3), INTERVAL 20000 millisecond)",
        ),
        ("$__interval_s", "20"),
        # TestMacroTimeFrom / TimeTo / TimeGroup (the ClickHouse overrides of the SDK defaults)
        ("$__timeFrom(ts)", "ts >= toDateTime(1415792726)"),
        ("$__timeTo(ts)", "ts <= toDateTime(1447328726)"),
        ("$__timeGroup(ts, 5m)", "toStartOfInterval(toDateTime(ts), INTERVAL 300 second)"),
        ("$__timeGroup(ts, 1h)", "toStartOfInterval(toDateTime(ts), INTERVAL 3600 second)"),
        ("$__timeGroup(ts, '1h30m')", "toStartOfInterval(toDateTime(ts), INTERVAL 5400 second)"),
        # macropro's defaults, kept in the plugin's map
        ("$__interval_ms", "20000"),
        ("$__interval", "20s"),
        ("$__timeFilter(ts)", "ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)"),
        (
            "$__timeFilter_ms(ts)",
            "ts >= fromUnixTimestamp64Milli(1415792726371) AND "
            "ts <= fromUnixTimestamp64Milli(1447328726371)",
        ),
    ],
)
def test_each_macro_expands_as_the_plugin_tests_say(sql: str, expected: str) -> None:
    assert expand(sql) == expected


SQL_FROM = datetime(2014, 11, 12, 11, 45, 26, 123000, tzinfo=UTC)
SQL_TO = datetime(2015, 11, 12, 11, 45, 26, 456000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [  # macros_test.go TestInterpolate, all eight cases
        (
            "select * from foo where $__timeFilter(cast(sth as timestamp))",
            "select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND "
            "cast(sth as timestamp) <= toDateTime(1447328726)",
        ),
        (
            "select * from foo where $__timeFilter(cast(sth as timestamp) )",
            "select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND "
            "cast(sth as timestamp) <= toDateTime(1447328726)",
        ),
        (
            "select * from foo where $__timeFilter_ms(cast(sth as timestamp))",
            "select * from foo where cast(sth as timestamp) >= "
            "fromUnixTimestamp64Milli(1415792726123) AND cast(sth as timestamp) <= "
            "fromUnixTimestamp64Milli(1447328726456)",
        ),
        (
            "select * from foo where $__timeFilter_ms(cast(sth as timestamp) )",
            "select * from foo where cast(sth as timestamp) >= "
            "fromUnixTimestamp64Milli(1415792726123) AND cast(sth as timestamp) <= "
            "fromUnixTimestamp64Milli(1447328726456)",
        ),
        (
            "select * from foo where ( date >= $__fromTime and date <= $__toTime ) limit 100",
            "select * from foo where ( date >= toDateTime(1415792726) and date <= "
            "toDateTime(1447328726) ) limit 100",
        ),
        (
            "select * from foo where ( date >= $__fromTime ) and ( date <= $__toTime ) limit 100",
            "select * from foo where ( date >= toDateTime(1415792726) ) and ( date <= "
            "toDateTime(1447328726) ) limit 100",
        ),
        (
            "select * from foo where ( date >= $__fromTime_ms and date <= $__toTime_ms ) limit 100",
            "select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) and date <= "
            "fromUnixTimestamp64Milli(1447328726456) ) limit 100",
        ),
        (
            "select * from foo where ( date >= $__fromTime_ms ) and "
            "( date <= $__toTime_ms ) limit 100",
            "select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) ) and "
            "( date <= fromUnixTimestamp64Milli(1447328726456) ) limit 100",
        ),
    ],
)
def test_whole_queries_interpolate_as_in_the_plugin_test(sql: str, expected: str) -> None:
    assert expand(sql, start=SQL_FROM, end=SQL_TO) == expected


@pytest.mark.parametrize(
    ("interval_s", "seconds", "milliseconds"),
    [
        (20, "20", "20000"),
        (1.5, "1", "1500"),
        (0.2, "1", "200"),
        (0, "1", "1"),
        (90, "90", "90000"),
    ],
)
def test_the_interval_is_truncated_to_seconds_and_floors_at_one(
    interval_s: float, seconds: str, milliseconds: str
) -> None:
    sql = "$__interval_s|$__timeInterval(t)|$__timeInterval_ms(t)"
    assert expand(sql, interval_s=interval_s).split("|") == [
        seconds,
        f"toStartOfInterval(toDateTime(t), INTERVAL {seconds} second)",
        f"toStartOfInterval(toDateTime64(t, 3), INTERVAL {milliseconds} millisecond)",
    ]


def test_times_are_whole_milliseconds_then_whole_seconds_in_any_zone() -> None:
    paris = timezone(timedelta(hours=1))
    start = datetime(2014, 11, 12, 12, 45, 26, 371999, tzinfo=paris)  # 11:45:26.371999 UTC
    sql = "$__fromTime $__fromTime_ms $__dateFilter(d)"
    assert expand(sql, start=start) == expand(sql)  # microseconds dropped, the offset applied
    with pytest.raises(ValueError, match="aware datetime"):
        expand("$__fromTime", start=datetime(2014, 11, 12))


def test_dates_are_the_utc_dates_of_the_range() -> None:
    # The plugin formats the date in the Grafana server's zone; this module assumes UTC.
    start = datetime(2024, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC
    sql = "$__dateFilter(d)"
    assert (
        expand(sql, start=start, end=start)
        == "d >= toDate('2024-01-02') AND d <= toDate('2024-01-02')"
    )


# -- how macros are found -----------------------------------------------------------------------


def test_a_macro_inside_another_expands_innermost_first() -> None:
    # issue #2038 / PR #2043: broken in 4.19.0, fixed in 4.20.0 (macropro v1.0.1)
    assert expand("SELECT $__timeInterval($__fromTime) AS from_time") == (
        "SELECT toStartOfInterval(toDateTime(toDateTime(1415792726)), INTERVAL 20 second) "
        "AS from_time"
    )
    assert expand("$__timeFilter(toDateTime64($__fromTime_ms, 3))") == (
        "toDateTime64(fromUnixTimestamp64Milli(1415792726371), 3) >= toDateTime(1415792726) AND "
        "toDateTime64(fromUnixTimestamp64Milli(1415792726371), 3) <= toDateTime(1447328726)"
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "$__timeFilter(   ts   )",
            "ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)",
        ),
        (
            "$__timeFilter(\n  ts\n)",
            "ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)",
        ),
        (
            "$__dateTimeFilter(  d ,t  )",
            "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND "
            "(t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))",
        ),
        (  # commas inside parentheses and inside a string literal do not split arguments
            "$__timeFilter(parseDateTime(s, '%Y,%m'))",
            "parseDateTime(s, '%Y,%m') >= toDateTime(1415792726) AND "
            "parseDateTime(s, '%Y,%m') <= toDateTime(1447328726)",
        ),
        (  # a parenthesis inside a string literal does not close the call
            "$__timeFilter(if(x = ')', a, b))",
            "if(x = ')', a, b) >= toDateTime(1415792726) AND "
            "if(x = ')', a, b) <= toDateTime(1447328726)",
        ),
        ("$__fromTime()", "toDateTime(1415792726)"),  # a no-argument macro eats its "()"
    ],
)
def test_arguments_are_trimmed_and_split_on_top_level_commas(sql: str, expected: str) -> None:
    assert expand(sql) == expected


def test_several_macros_on_one_line() -> None:
    sql = "SELECT $__timeInterval(t) AS time WHERE $__timeFilter(t) AND $__timeFilter(u) "
    sql += "LIMIT $__interval_s"
    assert expand(sql) == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 20 second) AS time WHERE "
        "t >= toDateTime(1415792726) AND t <= toDateTime(1447328726) AND "
        "u >= toDateTime(1415792726) AND u <= toDateTime(1447328726) LIMIT 20"
    )


def test_a_macro_name_that_prefixes_another_is_read_in_full() -> None:
    assert expand("$__timeFilter_ms(t) OR $__timeFilter(t)") == (
        "t >= fromUnixTimestamp64Milli(1415792726371) AND "
        "t <= fromUnixTimestamp64Milli(1447328726371) "
        "OR t >= toDateTime(1415792726) AND t <= toDateTime(1447328726)"
    )
    assert expand("$__fromTime_ms,$__fromTime,$__toTime_ms,$__toTime") == (
        "fromUnixTimestamp64Milli(1415792726371),toDateTime(1415792726),"
        "fromUnixTimestamp64Milli(1447328726371),toDateTime(1447328726)"
    )
    assert expand("$__interval_ms $__interval_s $__interval") == "20000 20 20s"
    # a longer identifier that is no macro is left alone, not cut into $__fromTime + "Zone"
    assert (
        expand("SELECT $__fromTimeZone, $__timeFilterish")
        == "SELECT $__fromTimeZone, $__timeFilterish"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "$__timeFilter()",
            r"macro \$__timeFilter\(\): timeFilter requires 1 argument, received 0",
        ),
        (
            "$__timeFilter(a, b)",
            r"macro \$__timeFilter\(a, b\): timeFilter requires 1 argument, received 2",
        ),
        ("$__timeFilter (ts)", "timeFilter requires 1 argument, received 0"),  # "(" must follow
        ("$__timeFilter(ts", "timeFilter requires 1 argument, received 0"),  # unbalanced
        ("$__dateTimeFilter(d)", "dateTimeFilter requires 2 arguments, received 1"),
        ("$__timeInterval_ms()", "timeInterval_ms requires 1 argument, received 0"),
        ("$__timeGroup(ts)", "timeGroup requires 2 arguments, received 1"),
        ("$__timeGroup(ts, 1d)", r'invalid interval "1d"'),  # Go time.ParseDuration has no "d"
        ("$__timeGroup(ts, 0s)", "interval must be positive"),
        ("$__timeFilter($__fromTime(1, 2), x)", "timeFilter requires 1 argument, received 2"),
        ("SELECT $__timeFilterX(ts)", r"unknown macro \$__timeFilterX"),
        ("SELECT $__columns(t, k, v) FROM x", r"unknown macro \$__columns"),  # after 4.20
        ("WHERE $__conditionalAll(a, $v)", r"unknown macro \$__conditionalAll"),  # frontend only
        ("SELECT * FROM $__table", r"\$__table: no table name"),
    ],
)
def test_bad_calls_fail_naming_the_macro(sql: str, message: str) -> None:
    with pytest.raises(MacroError, match=message):
        expand(sql)


def test_an_unknown_macro_inside_a_string_literal_is_just_text() -> None:
    assert expand("SELECT '$__nope(1)', $__interval_s") == "SELECT '$__nope(1)', 20"


def test_comments_are_blanked_before_expansion() -> None:
    sql = "SELECT 1 -- $__timeFilter(\nWHERE $__timeFilter(t) /* $__nope(é) */"
    assert expand(sql) == (
        "SELECT 1 "
        + " " * 17
        + "\nWHERE t >= toDateTime(1415792726) AND t <= toDateTime(1447328726) "
        + " " * 17  # one space per UTF-8 byte of the comment, as Go writes them
    )
    assert expand("SELECT 1 -- no macro here") == "SELECT 1 -- no macro here"  # fast path


def test_a_backslash_escaped_quote_does_not_open_a_comment() -> None:
    # PR #1991: after the macropro migration (#1802) this query lost its time filter
    assert expand(r"SELECT * FROM t WHERE msg = 'it\'s -- fine' AND $__timeFilter(ts)") == (
        r"SELECT * FROM t WHERE msg = 'it\'s -- fine' AND "
        "ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)"
    )


# -- frontend: template variables ---------------------------------------------------------------

VARIABLES: dict[str, str | Sequence[str]] = {
    "app": "okta",
    "name": "O'Brien",
    "apps": ["okta", "entra"],
    "quoted": ["O'Brien", 'say "hi"'],
    "every": AllValue(["okta", "entra", "duo"]),
    "anything": AllValue(["okta"], custom=".*"),
    "bare_all": "$__all",
    "nothing": "",
    "none": [],
}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # the plugin's default format: single values raw, arrays quoted and joined
        ("$app ${app} [[app]]", "okta okta okta"),
        ("app IN ($apps)", "app IN ('okta','entra')"),
        ("[[apps]]", "'okta','entra'"),
        ("$quoted", "'O'Brien','say \"hi\"'"),  # unescaped: Grafana's default is not safe
        # explicit formats (scenes formatRegistry.ts)
        ("${name:sqlstring}", "'O''Brien'"),
        ("${quoted:sqlstring}", "'O''Brien','say \\\"hi\\\"'"),
        ("${name:singlequote}", "'O\\'Brien'"),
        ("${quoted:doublequote}", '"O\'Brien","say \\"hi\\""'),
        ("${apps:csv} [[apps:csv]] ${app:csv}", "okta,entra okta,entra okta"),
        ("${apps:raw} ${name:raw}", "okta,entra O'Brien"),
        ("${apps:pipe} ${apps:glob} ${app:glob}", "okta|entra {okta,entra} okta"),
        ("${apps:json} ${app:json}", '["okta","entra"] okta'),
        ("${apps:join: OR }", "okta OR entra"),
        ("${apps:nosuchformat}", "{okta,entra}"),  # Grafana falls back to glob
        ("${apps.1}", "entra"),  # a field path indexes a multi value
        # All: the options' values, or the custom all value, unformatted
        ("app IN ($every)", "app IN ('okta','entra','duo')"),
        ("${every:sqlstring} ${every:csv}", "'okta','entra','duo' okta,entra,duo"),
        ("match(app, '$anything') ${anything:sqlstring}", "match(app, '.*') .*"),
        ("$bare_all $none", "'' ''"),  # All with no options known, an empty multi value
        # unknown variables and backend macros stay as written
        (
            "$missing ${missing} ${missing:csv} [[missing]]",
            "$missing ${missing} ${missing:csv} [[missing]]",
        ),
        ("$__timeFilter(t) AND $__interval_s", "$__timeFilter(t) AND $__interval_s"),
    ],
)
def test_variable_formats(sql: str, expected: str) -> None:
    assert interpolate_variables(sql, VARIABLES) == expected


def test_formats_this_module_does_not_emulate_say_so() -> None:
    with pytest.raises(MacroError, match="regex"):
        interpolate_variables("${apps:regex}", VARIABLES)
    with pytest.raises(MacroError, match="moment"):
        interpolate_variables("${t:date:YYYY-MM}", {"t": "1594671549254"})


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("WHERE $__conditionalAll(app IN ($apps), $apps)", "WHERE app IN ('okta','entra')"),
        ("WHERE $__conditionalAll(app IN ($every), $every)", "WHERE 1=1"),
        ("WHERE $__conditionalAll(app IN ($every), ${every})", "WHERE 1=1"),
        ("WHERE $__conditionalAll(app IN ($anything), $anything)", "WHERE 1=1"),  # custom all too
        ("WHERE $__conditionalAll(app = '$nothing', $nothing)", "WHERE 1=1"),
        ("WHERE $__conditionalAll(app IN ($none), $none)", "WHERE 1=1"),
        (
            "WHERE $__conditionalAll(app IN (${apps:sqlstring}), $apps) AND "
            "$__conditionalAll(name = ${name:sqlstring}, $name)",
            "WHERE app IN ('okta','entra') AND name = 'O''Brien'",
        ),
        # the variable must be written $var or ${var}: with a format the condition always stays
        (
            "WHERE $__conditionalAll(app IN ($every), ${every:csv})",
            "WHERE app IN ('okta','entra','duo')",
        ),
        ("WHERE $__conditionalAll(x = 1, $missing)", "WHERE x = 1"),  # unknown: condition kept
        # not two arguments: processing stops and the call stays (the backend then fails)
        ("WHERE $__conditionalAll(a, b, $apps)", "WHERE $__conditionalAll(a, b, 'okta','entra')"),
    ],
)
def test_conditional_all(sql: str, expected: str) -> None:
    assert interpolate_variables(sql, VARIABLES) == expected


def test_render_query_runs_variables_then_macros_with_grafana_built_ins() -> None:
    sql = (
        "SELECT $__timeInterval(t) AS time, $__from, ${__to:date:seconds}, ${__from:date}, "
        "'$__interval', $__interval_ms FROM x WHERE $__timeFilter(t) AND app IN (${apps:sqlstring})"
    )
    assert render_query(sql, start=FROM, end=TO, interval_s=90, variables=VARIABLES) == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 90 second) AS time, 1415792726371, "
        "1447328726, 2014-11-12T11:45:26.371Z, '1m', 90000 FROM x WHERE "
        "t >= toDateTime(1415792726) AND t <= toDateTime(1447328726) AND app IN ('okta','entra')"
    )
    # a dashboard variable wins over a built-in of the same name
    assert render_query("$__from", start=FROM, end=TO, variables={"__from": "x"}) == "x"


# -- on the real ClickHouse engine --------------------------------------------------------------


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    data: Path = tmp_path_factory.mktemp("chdb")
    client = clickhouse_connect.get_client(dsn=f"chdb://{data}")
    yield client
    client.close()


def scalar(client: Client, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


DAY_10 = datetime(1970, 1, 11, 0, 0, 0, 500000, tzinfo=UTC)  # day 10, half a second in
DAY_20 = datetime(1970, 1, 21, tzinfo=UTC)  # day 20, midnight


def test_time_filter_counts_on_clickhouse(clickhouse: Client) -> None:
    def count(sql: str) -> int:
        return int(scalar(clickhouse, render_query(sql, start=DAY_10, end=DAY_20)))

    # both bounds inclusive; the start is cut to whole seconds, so day 10's midnight is in
    assert (
        count("SELECT count() FROM numbers(100) WHERE $__timeFilter(toDateTime(number * 86400))")
        == 11
    )
    # in milliseconds it is not
    ms = "SELECT count() FROM numbers(100) WHERE $__timeFilter_ms(toDateTime64(number * 86400, 3))"
    assert count(ms) == 10
    assert count("SELECT count() FROM numbers(100) WHERE $__dateFilter(toDate(number))") == 11
    between = "SELECT count() FROM numbers(100) WHERE $__timeFrom(toDateTime(number * 86400)) AND "
    assert count(between + "$__timeTo(toDateTime(number * 86400))") == 11
    dt = "SELECT count() FROM numbers(100) WHERE $__dt(toDate(number), toDateTime(number * 86400))"
    assert count(dt) == 11


def test_buckets_on_clickhouse(clickhouse: Client) -> None:
    hour = datetime(2024, 1, 1, tzinfo=UTC)
    start, end = hour, hour + timedelta(hours=1)
    minutes = "SELECT count(DISTINCT $__timeInterval(toDateTime(number))) FROM numbers(3600)"
    assert scalar(clickhouse, render_query(minutes, start=start, end=end, interval_s=60)) == 60
    quarters = (
        "SELECT count(DISTINCT $__timeInterval_ms(toDateTime64(number / 10, 3))) FROM numbers(100)"
    )
    assert scalar(clickhouse, render_query(quarters, start=start, end=end, interval_s=0.25)) == 40
    groups = "SELECT count(DISTINCT $__timeGroup(toDateTime(number), '5m')) FROM numbers(3600)"
    assert scalar(clickhouse, render_query(groups, start=start, end=end)) == 12


def test_a_dashboard_panel_query_on_clickhouse(clickhouse: Client) -> None:
    sql = """
        -- sign-ins per hour, $__timeFilter in a comment is not expanded
        SELECT $__timeInterval(t) AS time, count() AS n
        FROM (SELECT toDateTime('2024-01-01 00:00:00', 'UTC') + number * 60 AS t,
                     ['okta', 'entra', 'duo'][number % 3 + 1] AS app
              FROM numbers(1440))
        WHERE $__timeFilter(t) AND $__conditionalAll(app IN (${apps:sqlstring}), $apps)
        GROUP BY time ORDER BY time
    """
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2024, 1, 1, 5, 59, 59, tzinfo=UTC)
    rows = clickhouse.query(
        render_query(
            sql, start=start, end=end, interval_s=3600, variables={"apps": ["okta", "duo"]}
        )
    ).result_rows
    assert [(time.hour, n) for time, n in rows] == [(hour, 40) for hour in range(6)]
    every = {"apps": AllValue(["okta", "entra", "duo"])}
    rows = clickhouse.query(
        render_query(sql, start=start, end=end, interval_s=3600, variables=every)
    ).result_rows
    assert [n for _, n in rows] == [60] * 6


def test_the_time_built_ins_agree_with_the_macros_on_clickhouse(clickhouse: Client) -> None:
    sql = "SELECT ${__from:date:seconds} = toUnixTimestamp($__fromTime), "
    sql += "$__to = toUnixTimestamp64Milli($__toTime_ms)"
    row = clickhouse.query(render_query(sql, start=FROM, end=TO)).result_rows[0]
    assert row == (1, 1)


def test_sqlstring_values_round_trip_through_clickhouse(clickhouse: Client) -> None:
    values = ["O'Brien", 'say "hi"', "it''s", "plain"]
    sql = interpolate_variables(
        "SELECT ${v:sqlstring}, [${many:sqlstring}]", {"v": "O'Brien", "many": values}
    )
    assert clickhouse.query(sql).result_rows == [("O'Brien", values)]
    # singlequote escapes with a backslash, which ClickHouse reads the same way
    assert (
        scalar(clickhouse, interpolate_variables("SELECT ${v:singlequote}", {"v": "O'Brien"}))
        == "O'Brien"
    )


def test_sqlstring_leaves_backslashes_which_clickhouse_reads_as_escapes(clickhouse: Client) -> None:
    # The gap: Grafana's sqlstring does not double "\", and ClickHouse decodes "\t" in a literal.
    path = "C:\\temp"
    sql = interpolate_variables("SELECT ${v:sqlstring}", {"v": path})
    assert sql == "SELECT 'C:\\temp'"
    assert scalar(clickhouse, sql) == "C:\temp"  # a tab, not backslash + "t"
