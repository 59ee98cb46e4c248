"""The four dashboards, built with the Grafana Foundation SDK (Grafana 11.6 line).

Every panel reads the views of schemas/clickhouse through the ClickHouse datasource, with
the plugin's macros for the dashboard's time range. Two template variables filter them:
`source` (the owning IdP) and `department`. Their value `all` matches the rollup views'
total rows ("all" convention, 0003_rollups.sql), and raw views are filtered to match.
"As of" a panel means the latest rollout day inside the time range.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import barchart, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DynamicConfigValue,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from pipeline.grafana.alerts import PASSWORDLESS_ONLY_SINCE, TICKET_RATE_RISING_SQL
from pipeline.grafana.datasource import DATASOURCE, DATASOURCE_NAME, DATASOURCE_UID, SQL

SOURCE = "${source:sqlstring}"
DEPARTMENT = "${department:sqlstring}"
# Rows of a rollup view at the chosen source and department (or their 'all' totals).
DIMENSIONS = f"source = {SOURCE} AND department = {DEPARTMENT}"
# The same filter on a view without 'all' rows (sign_ins and the like).
RAW_DIMENSIONS = (
    f"({SOURCE} = 'all' OR source = {SOURCE})"
    f" AND ({DEPARTMENT} = 'all' OR department = {DEPARTMENT})"
)
LATEST_DAY = "(SELECT max(day) FROM rollout_days WHERE $__dateFilter(day))"
# The time range as the parameters of the views of 0011_windowed_views.sql, which read the
# days of the range only: times in UTC (a parameter is read back as text in its own zone),
# days as $__dateFilter has them.
RANGE_TIMES = "from = toDateTime64($__fromTime, 6, 'UTC'), to = toDateTime64($__toTime, 6, 'UTC')"
RANGE_DAYS = "from = toDate($__fromTime, 'UTC'), to = toDate($__toTime, 'UTC')"
LATEST = f"from = {LATEST_DAY}, to = {LATEST_DAY}"
# The 7 days ending on the latest day in range, as times (the active-use panels count the
# sign-ins themselves: they need no risk tier, nor the rollup's 'all' rows).
LAST_7_DAYS_TIMES = (
    f"from = toDateTime64(toDate32({LATEST_DAY}) - 6, 6, 'UTC'),\n"
    f"    to = toDateTime64(toDate32({LATEST_DAY}) + 1, 6, 'UTC') - toIntervalMicrosecond(1)"
)
# The whole days of the range and the 6 before it (for the 7 days ending on its first), as times.
RANGE_DAYS_AND_6_BEFORE = (
    "from = toDateTime64(toDate32(toDate($__fromTime, 'UTC')) - 6, 6, 'UTC'),\n"
    "            to = toDateTime64(toDate32(toDate($__toTime, 'UTC')) + 1, 6, 'UTC')"
    " - toIntervalMicrosecond(1)"
)
PERCENT = "percentunit"
PER_1000 = "none"
TAGS = ["passwordless", "generated"]
TIME_RANGE = ("now-90d", "now")


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model by file name (without .json)."""
    built = {
        "rollout-overview": _overview(),
        "active-use": _active_use(),
        "helpdesk": _helpdesk(),
        "pipeline-health": _pipeline_health(),
    }
    encoder = JSONEncoder(sort_keys=True)
    return {name: json.loads(encoder.encode(board.build())) for name, board in built.items()}


# -- the dashboards -------------------------------------------------------------------------


def _overview() -> dash.Dashboard:
    board = _dashboard(
        "passwordless-overview",
        "Passwordless rollout: overview",
        "The three rollout metrics as of the latest day in the time range, their trend, and "
        "the rollout plan's phase targets and gates.",
    )
    board.with_row(dash.Row("Now"))
    board.with_panel(
        _stat(
            "Current phase",
            "SELECT concat('Phase ', toString(phase), ': ', name) AS phase,\n"
            "    days_left AS `days left`\n"
            f"FROM phase_days WHERE day = {LATEST_DAY}",
            unit="none",
            description="The plan's phase on the latest day in range, and the days left in it "
            "(empty in the open-ended last phase).",
            fields="/.*/",
        ).span(6)
    )
    board.with_panel(
        _stat(
            "Enrollment rate",
            f"SELECT enrollment_rate\nFROM enrollment_daily_between({LATEST})\n"
            f"WHERE department = {DEPARTMENT} AND idp = {SOURCE}",
            unit=PERCENT,
            target="enrollment_rate",
            description="Active workforce with a passwordless factor registered at the end of "
            "the day. Source filters by the user's home IdP.",
        ).span(3)
    )
    board.with_panel(
        _stat(
            "Active-use rate (7 days)",
            "SELECT if(count() = 0, NULL, countIf(passwordless) / count()) AS active_use_rate_7d\n"
            f"FROM sign_ins_between({LAST_7_DAYS_TIMES})\n"
            f"WHERE success AND {RAW_DIMENSIONS}",
            unit=PERCENT,
            target="active_use_rate",
            description="Share of successful sign-ins in the last 7 days that were passwordless.",
        ).span(3)
    )
    board.with_panel(
        _stat(
            "Users on passwordless (7 days)",
            f"SELECT on_passwordless_rate_7d\nFROM on_passwordless_daily_between({LATEST})\n"
            f"WHERE {DIMENSIONS}",
            unit=PERCENT,
            target="on_passwordless_rate",
            description="Users who signed in in the last 7 days with every sign-in passwordless.",
        ).span(4)
    )
    board.with_panel(
        _stat(
            "High-risk active use (7 days)",
            "SELECT if(count() = 0, NULL, countIf(passwordless) / count())"
            " AS high_risk_active_use_rate\n"
            f"FROM high_risk_sign_ins_between({LAST_7_DAYS_TIMES})\n"
            f"WHERE success AND {RAW_DIMENSIONS}",
            unit=PERCENT,
            target="high_risk_active_use_rate",
            description="Share of successful sign-ins into high-risk apps that were passwordless.",
        ).span(4)
    )
    board.with_panel(
        _stat(
            "Tickets per 1,000 users (28 days)",
            f"SELECT tickets_per_1000_28d\nFROM ticket_rate_trailing_28d_between({LATEST})\n"
            f"WHERE scenario = 'all' AND department = {DEPARTMENT}",
            unit=PER_1000,
            description="Helpdesk tickets opened in the last 28 days per 1,000 active users "
            "(tickets have no source: the source filter does not apply).",
        ).span(4)
    )
    board.with_row(dash.Row("Trend against the plan's targets"))
    board.with_panel(
        _against_target(
            "Enrollment rate",
            "SELECT toDateTime(day, 'UTC') AS time, enrollment_rate AS value\n"
            f"FROM enrollment_daily_between({RANGE_DAYS})\n"
            f"WHERE department = {DEPARTMENT} AND idp = {SOURCE}",
            "enrollment_rate",
        )
    )
    board.with_panel(
        _against_target(
            "Active-use rate (7 days)",
            "SELECT toDateTime(day, 'UTC') AS time,\n"
            "    if(sum(sign_ins) = 0, NULL, sum(passwordless_sign_ins) / sum(sign_ins)) AS value\n"
            "FROM (\n"
            "    SELECT toDate(signed_in_on + n) AS day, sign_ins, passwordless_sign_ins\n"
            "    FROM (\n"
            "        SELECT toDate(time) AS signed_in_on, count() AS sign_ins,\n"
            "            countIf(passwordless) AS passwordless_sign_ins\n"
            f"        FROM sign_ins_between({RANGE_DAYS_AND_6_BEFORE})\n"
            f"        WHERE success AND {RAW_DIMENSIONS}\n"
            "        GROUP BY signed_in_on)\n"
            "    ARRAY JOIN range(7) AS n)\n"
            "WHERE $__dateFilter(day) AND day IN (SELECT day FROM rollout_days)\n"
            "GROUP BY day",
            "active_use_rate",
        )
    )
    board.with_panel(
        _against_target(
            "Users on passwordless (7 days)",
            "SELECT toDateTime(day, 'UTC') AS time, on_passwordless_rate_7d AS value\n"
            f"FROM on_passwordless_daily_between({RANGE_DAYS})\nWHERE {DIMENSIONS}",
            "on_passwordless_rate",
        )
    )
    board.with_panel(
        _against_target(
            "High-risk active use (daily)",
            "SELECT day AS time, value FROM (\n"
            "    SELECT toStartOfDay(time) AS day, countIf(passwordless) / count() AS value\n"
            f"    FROM high_risk_sign_ins_between({RANGE_TIMES})\n"
            f"    WHERE success AND {RAW_DIMENSIONS}\n"
            "    GROUP BY day)",
            "high_risk_active_use_rate",
        )
    )
    board.with_panel(
        _timeseries(
            "Tickets per 1,000 users (28 days) over time",
            "SELECT toDateTime(day, 'UTC') AS time, tickets_per_1000_28d AS `tickets per 1,000`\n"
            f"FROM ticket_rate_trailing_28d_between({RANGE_DAYS})\n"
            f"WHERE scenario = 'all' AND department = {DEPARTMENT}\n"
            "ORDER BY time",
            unit=PER_1000,
            description="The plan sets no ticket target; the Helpdesk dashboard breaks this down.",
        ).span(24)
    )
    board.with_row(dash.Row("Phase gates"))
    board.with_panel(
        _table(
            "Phase gates",
            "SELECT phase, rollout_week AS `gate week`, metric, target, actual, passed\n"
            "FROM (\n"
            "    SELECT *, max(week_start) OVER (PARTITION BY phase) AS last_week\n"
            f"    FROM phase_gates_between({RANGE_DAYS}))\n"
            "WHERE week_start = last_week\n"
            "ORDER BY phase, metric",
            description="Each phase's targets against its last week in range (the current week "
            "for the phase in progress). Whole workforce: the filters do not apply.",
        )
        .override_by_name(
            "passed",
            [
                DynamicConfigValue(
                    "mappings",
                    [
                        {
                            "type": "value",
                            "options": {
                                "true": {"text": "passed", "color": "green", "index": 0},
                                "false": {"text": "not met", "color": "red", "index": 1},
                            },
                        }
                    ],
                ),
                DynamicConfigValue("custom.cellOptions", {"type": "color-background"}),
            ],
        )
        .span(24)
    )
    return board


def _active_use() -> dash.Dashboard:
    board = _dashboard(
        "passwordless-active-use",
        "Passwordless rollout: active use",
        "Which sign-ins are passwordless: by source, department, method pattern and app risk "
        "tier; password paths into high-risk apps after phase 4; enrolled users who still "
        "type passwords.",
    )
    daily = (
        "SELECT toStartOfDay(time) AS day, {key},\n"
        "    countIf(passwordless) / count() AS `active-use rate`\n"
        f"FROM sign_ins_between({RANGE_TIMES})\n"
        "WHERE success AND {where}\n"
        "GROUP BY day, {group}\nORDER BY day"
    )
    by = {  # series column: (its expression, the filter on the other dimensions)
        "source": (
            "toString(source) AS source",
            f"({DEPARTMENT} = 'all' OR department = {DEPARTMENT})",
        ),
        "department": ("department", f"({SOURCE} = 'all' OR source = {SOURCE})"),
        "risk_tier": ("risk_tier", RAW_DIMENSIONS),
    }
    for column, (key, where) in by.items():
        board.with_panel(
            _timeseries(
                f"Active-use rate by {column.replace('_', ' ')} (daily)",
                daily.format(key=key, where=where, group=column),
                unit=PERCENT,
                series_by=column,
            ).span(12)
        )
    board.with_panel(
        barchart.Panel()
        .title("Sign-ins by method pattern")
        .description("The factors each successful sign-in used, in the time range.")
        .datasource(DATASOURCE)
        .with_target(
            SQL(
                "SELECT if(empty(factors), 'none', arrayStringConcat(factors, ' + ')) AS pattern,\n"
                "    countIf(passwordless) AS passwordless_sign_ins,\n"
                "    countIf(NOT passwordless) AS other_sign_ins\n"
                f"FROM sign_ins_between({RANGE_TIMES})\n"
                f"WHERE success AND {RAW_DIMENSIONS}\n"
                "GROUP BY pattern\nORDER BY passwordless_sign_ins + other_sign_ins DESC\nLIMIT 15"
            )
        )
        .orientation(common.VizOrientation.HORIZONTAL)
        .stacking(common.StackingMode.NORMAL)
        .height(8)
        .span(12)
    )
    board.with_panel(
        _table(
            "High-risk paths after phase 4",
            "SELECT app, toString(source) AS source,\n"
            "    if(empty(factors), 'none', arrayStringConcat(factors, ' + ')) AS pattern,\n"
            "    count() AS attempts, countIf(success) AS succeeded, max(time) AS last_seen\n"
            f"FROM high_risk_sign_ins_between({RANGE_TIMES})\n"
            "WHERE NOT passwordless\n"
            f"    AND time >= {PASSWORDLESS_ONLY_SINCE} AND {RAW_DIMENSIONS}\n"
            "GROUP BY app, source, pattern\nORDER BY succeeded DESC, attempts DESC",
            description="Sign-ins into high-risk apps that were not passwordless once phase 4 "
            "made passwordless required there. A pattern with a password that succeeded is what "
            "the alert rule 'Password sign-in into a high-risk app' fires on.",
        ).span(24)
    )
    # An internal link: Grafana opens Explore on this query itself, encoding it for the URL.
    sign_ins_of_user = {
        "title": "Sign-ins of this user (SQL in Explore)",
        "url": "",
        "internal": {
            "datasourceUid": DATASOURCE_UID,
            "datasourceName": DATASOURCE_NAME,
            "query": SQL(
                "SELECT time, source, app, factors, passwordless, success\n"
                f"FROM sign_ins_between({RANGE_TIMES})\n"
                "WHERE user = ${__value.raw:sqlstring}\nORDER BY time DESC\nLIMIT 500"
            )
            .build()
            .to_json(),
        },
    }
    board.with_panel(
        _table(
            "Enrolled, still typing passwords (last 7 days of the range)",
            "SELECT user, department, source, password_sign_ins_7d, last_password_sign_in,\n"
            "    arrayStringConcat(enrolled_factors, ', ') AS enrolled_factors\n"
            "FROM enrolled_still_using_passwords_at(at = toDateTime64($__toTime, 6, 'UTC'))\n"
            f"WHERE {RAW_DIMENSIONS}\n"
            "ORDER BY password_sign_ins_7d DESC\nLIMIT 500",
            description="Users with a passwordless factor who signed in without it. Click a "
            "user for their sign-ins in Explore (ad-hoc SQL), or run `pipeline sql`.",
        )
        .override_by_name("user", [DynamicConfigValue("links", [sign_ins_of_user])])
        .span(24)
    )
    return board


def _helpdesk() -> dash.Dashboard:
    board = _dashboard(
        "passwordless-helpdesk",
        "Passwordless rollout: helpdesk",
        "Tickets per 1,000 active users by runbook scenario. `other` is what no runbook "
        "covers: a rising `other` is a fallback nobody has written down yet.",
    )
    board.with_panel(
        _timeseries(
            "Tickets per 1,000 users by scenario (weekly)",
            "SELECT toDateTime(week_start, 'UTC') AS week, scenario, tickets_per_1000\n"
            f"FROM ticket_rate_weekly_between({RANGE_DAYS})\n"
            f"WHERE scenario != 'all' AND department = {DEPARTMENT}\n"
            "ORDER BY week, scenario",
            unit=PER_1000,
            bars=True,
            series_by="scenario",
        )
        .override_by_name(
            "other",
            [DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "red"})],
        )
        .span(24)
    )
    board.with_panel(
        _timeseries(
            "No runbook (`other`) against all tickets (28 days, per 1,000 users)",
            "SELECT toDateTime(day, 'UTC') AS day, scenario, tickets_per_1000_28d\n"
            f"FROM ticket_rate_trailing_28d_between({RANGE_DAYS})\n"
            f"WHERE scenario IN ('all', 'other') AND department = {DEPARTMENT}\n"
            "ORDER BY day, scenario",
            unit=PER_1000,
            series_by="scenario",
        ).span(12)
    )
    board.with_panel(
        _table(
            "Scenarios rising (the alert rule's query, at the end of the range)",
            TICKET_RATE_RISING_SQL,
            description="Scenario tickets per 1,000 users in the 28 days up to the end of the "
            "range against the 28 days before; `rise` is the ratio. The alert 'Ticket rate "
            "rising' fires for a rise of 25% or more that is not chance.",
        ).span(12)
    )
    board.with_panel(
        _table(
            "Tickets per 1,000 users by quarter",
            "SELECT quarter_start, scenario, weeks, tickets, round(active_workforce) AS users,\n"
            f"    tickets_per_1000\nFROM ticket_rate_quarterly_between({RANGE_DAYS})\n"
            f"WHERE department = {DEPARTMENT}\n"
            "    AND quarter_start <= toDate($__toTime, 'UTC')\n"
            "    AND quarter_start + INTERVAL 3 MONTH > toDate($__fromTime, 'UTC')\n"
            "ORDER BY quarter_start, scenario = 'all', scenario",
            description="A quarter is the rollout weeks whose Monday falls in it, over their "
            "mean active workforce.",
        ).span(24)
    )
    return board


def _pipeline_health() -> dash.Dashboard:
    board = _dashboard(
        "passwordless-pipeline-health",
        "Passwordless rollout: pipeline health",
        "What the worker writes per minute, how far behind the end of each topic it is (lag, "
        "from its own batches), how fresh each source is, and the dead letters.",
    )
    board.with_panel(
        _timeseries(
            "Events written per minute by source",
            "SELECT $__timeInterval(written_at) AS bucket, source,\n"
            "    sum(messages) * 60 / $__interval_s AS `events per minute`\n"
            "FROM ingest_batches\nWHERE $__timeFilter(written_at)\n"
            "GROUP BY bucket, source\nORDER BY bucket",
            unit="none",
            description="Raw messages the worker wrote, by write time.",
            series_by="source",
        ).span(12)
    )
    board.with_panel(
        _timeseries(
            "Consumer lag by source",
            "SELECT bucket, source, sum(lag) AS `messages behind`\nFROM (\n"
            "    SELECT $__timeInterval(written_at) AS bucket, source, topic, partition,\n"
            "        argMax(lag, written_at) AS lag\n"
            "    FROM ingest_batches\n"
            "    WHERE $__timeFilter(written_at) AND end_offset IS NOT NULL\n"
            "    GROUP BY bucket, source, topic, partition)\n"
            "GROUP BY bucket, source\nORDER BY bucket",
            unit="none",
            description="Messages still behind the end of each partition when the worker built "
            "its latest batch in the interval, summed over the source's partitions.",
            series_by="source",
        ).span(12)
    )
    board.with_panel(
        _table(
            "Freshness by source",
            "SELECT p.source AS source, p.last_written AS last_written,\n"
            "    dateDiff('second', p.last_written, now64(3)) AS seconds_since_last_write,\n"
            "    p.messages_behind AS messages_behind, e.last_event AS last_event\n"
            "FROM (\n"
            "    SELECT source, max(last_written) AS last_written, sum(lag) AS messages_behind\n"
            "    FROM ingest_progress GROUP BY source) AS p\n"
            "LEFT JOIN (\n"
            "    SELECT source, max(time) AS last_event FROM arrivals\n"
            "    WHERE $__timeFilter(time) GROUP BY source) AS e\n"
            "    ON e.source = p.source\n"
            "ORDER BY source",
            description="The latest write and the lag now, whatever the time range; the latest "
            "event in the time range (its months are read, not the whole history). The "
            "stale-data alert fires when an IdP has written nothing for 30 minutes (tickets: a "
            "day).",
        ).span(12)
    )
    board.with_panel(
        _timeseries(
            "Ingest delay p95 by source (event time to written)",
            "SELECT $__timeInterval(time) AS bucket, source,\n"
            "    quantile(0.95)(dateDiff('second', time, ingested_at)) AS `p95 delay`\n"
            "FROM arrivals\nWHERE $__timeFilter(time)\n"
            "GROUP BY bucket, source\nORDER BY bucket",
            unit="s",
            series_by="source",
        ).span(12)
    )
    board.with_panel(
        _timeseries(
            "Events per minute by source (event time)",
            "SELECT $__timeInterval(time) AS bucket, source,\n"
            "    count() * 60 / $__interval_s AS `events per minute`\n"
            "FROM arrivals\nWHERE $__timeFilter(time)\n"
            "GROUP BY bucket, source\nORDER BY bucket",
            unit="none",
            description="Stored events (sign-in steps, enrollments, tickets) by when they "
            "happened: the IdPs' activity.",
            series_by="source",
        ).span(12)
    )
    board.with_panel(
        _timeseries(
            "Dead letters by source",
            "SELECT $__timeInterval(received_at) AS bucket, source, count() AS `dead letters`\n"
            "FROM dead_letters FINAL\nWHERE $__timeFilter(received_at)\n"
            "GROUP BY bucket, source\nORDER BY bucket",
            unit="none",
            bars=True,
            series_by="source",
        ).span(12)
    )
    board.with_panel(
        _table(
            "Methods no mapping knows yet (classified unknown)",
            "SELECT source, raw_method, events, first_seen, last_seen\nFROM unknown_methods\n"
            "WHERE last_seen >= $__fromTime\nORDER BY last_seen DESC\nLIMIT 100",
            description="A vendor's new factor or method string: the events are kept and "
            "count as not passwordless until someone maps the string (docs/sources/).",
        ).span(24)
    )
    board.with_panel(
        _table(
            "Latest dead letters",
            "SELECT received_at, source, topic, partition, offset, reason,\n"
            "    substring(raw, 1, 200) AS raw_start\n"
            "FROM dead_letters FINAL\nWHERE $__timeFilter(received_at)\n"
            "ORDER BY received_at DESC\nLIMIT 100",
            description="The whole message stays on the dead-letter topic with its headers.",
        ).span(24)
    )
    return board


# -- building blocks ------------------------------------------------------------------------


def _dashboard(uid: str, title: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .time(*TIME_RANGE)
        .refresh("15m")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dash.CustomVariable("source")
            .label("Source (IdP)")
            .values("all,okta,entra,ping,duo")
            .current(VariableOption(selected=True, text="all", value="all"))
        )
        .with_variable(
            dash.QueryVariable("department")
            .label("Department")
            .datasource(DATASOURCE)
            .query(
                SQL(
                    "SELECT department FROM (\n"
                    "    SELECT 'all' AS department, 0 AS rank\n"
                    "    UNION ALL\n"
                    "    SELECT DISTINCT if(department = '', 'unknown', toString(department)), 1\n"
                    "    FROM roster FINAL)\n"
                    "ORDER BY rank, department"
                )
                .build()
                .to_json()
            )
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(VariableSort.DISABLED)
            .current(VariableOption(selected=True, text="all", value="all"))
        )
        .link(
            dash.DashboardLink("Passwordless rollout")
            .type("dashboards")
            .tags(["passwordless"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def _stat(
    title: str,
    sql: str,
    *,
    unit: str,
    description: str,
    target: str | None = None,
    fields: str = "",
) -> stat.Panel:
    """A number as of the latest day in range; with `target`, shown beside the plan's target
    for that metric that day (query TARGET; nothing when the day's phase sets none)."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(SQL(sql))
        .unit(unit)
        .height(5)
        .reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields(fields).values(False)
        )
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common.BigValueColorMode.NONE)
        .graph_mode(common.BigValueGraphMode.NONE)
    )
    if unit == PERCENT:
        panel.decimals(1)
    if target is not None:
        panel.with_target(
            SQL(
                "SELECT target AS `phase target`\nFROM daily_targets\n"
                f"WHERE metric = '{target}' AND day = {LATEST_DAY}",
                ref_id="TARGET",
            )
        )
    return panel


def _timeseries(
    title: str,
    sql: str,
    *,
    unit: str,
    description: str = "",
    bars: bool = False,
    series_by: str | None = None,
) -> timeseries.Panel:
    """A time series panel; `series_by` names the text column whose values are the series
    (Grafana turns the long answer wide and labels each series with it)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(SQL(sql, time_series=True))
        .unit(unit)
        .height(8)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .span_nulls(False)
    )
    if unit == PERCENT:
        panel.min(0).max(1)
    if series_by is not None:
        panel.display_name("${__field.labels." + series_by + "}")
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80).stacking(
            common_builders.StackingConfig().mode(common.StackingMode.NORMAL)
        )
    return panel


def _against_target(name: str, actual_sql: str, metric: str) -> timeseries.Panel:
    """The metric per day and, as a dashed step line, the plan's target for it that day
    (gaps where the day's phase sets none)."""
    sql = (
        "SELECT time, series, value FROM (\n"
        f"    SELECT time, '{name.lower()}' AS series, value FROM ({actual_sql})\n"
        "    UNION ALL\n"
        "    SELECT toDateTime(day, 'UTC') AS time, 'phase target' AS series, target AS value\n"
        f"    FROM daily_targets WHERE metric = '{metric}' AND $__dateFilter(day))\n"
        "ORDER BY time"
    )
    return (
        _timeseries(f"{name} against the phase target", sql, unit=PERCENT, series_by="series")
        .override_by_name(
            "phase target",
            [
                DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
                DynamicConfigValue("custom.lineInterpolation", "stepAfter"),
                DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "green"}),
            ],
        )
        .span(12)
    )


def _table(title: str, sql: str, *, description: str = "") -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(SQL(sql))
        .height(9)
    )
