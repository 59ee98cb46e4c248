"""Unified alert rules (Grafana's file-provisioning format), and how Grafana evaluates them.

Each rule is one ClickHouse query (refId A, table format: one row per series, string columns
as labels, one number) and a threshold expression on it (refId B, the condition). Grafana
expands the plugin's macros in alert queries too, over the rule's relative time range ending
at the evaluation time; `evaluate` applies the expressions as Grafana's server-side
expressions do, so tests and `pipeline grafana check` can say whether a rule fires.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from grafana_foundation_sdk.builders import alerting
from grafana_foundation_sdk.builders import expr as expressions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import RelativeTimeRange

from pipeline.grafana.datasource import DATASOURCE_UID, SQL, column_kind

EXPRESSION_DATASOURCE = "__expr__"
FOLDER_UID = "passwordless-rollout"
FOLDER_TITLE = "Passwordless rollout"
# Minutes a source may write nothing before the stale-data rule fires: helpdesk tickets are
# sparse, so they get a day. The roster (an HR feed, often daily or weekly) is not watched.
STALE_AFTER_MINUTES = {"okta": 30, "entra": 30, "ping": 30, "duo": 30, "tickets": 24 * 60}
# A scenario's ticket rate "rises" when the last 28 days run this much above the 28 days
# before, with at least MIN_TICKETS tickets and a rise that chance alone would give less
# than once in ~160 evaluations (z >= 2.5 for the difference of two Poisson counts).
RISE_FACTOR = 1.25
MIN_TICKETS = 10
MIN_Z = 2.5
DAY = 86_400

TICKET_RATE_RISING_SQL = f"""
SELECT scenario, (current / users_now) / (greatest(previous, 1) / users_before) AS rise
FROM
(
    SELECT
        toString(scenario) AS scenario,
        countIf(time > $__toTime - INTERVAL 28 DAY) AS current,
        countIf(time <= $__toTime - INTERVAL 28 DAY) AS previous
    FROM tickets FINAL
    WHERE time > $__toTime - INTERVAL 56 DAY AND time <= $__toTime
    GROUP BY scenario
) AS counts
CROSS JOIN
(
    SELECT
        countIf(r.active_from <= d AND (r.terminated_on IS NULL OR d < r.terminated_on))
            AS users_now,
        countIf(r.active_from <= d - 28 AND (r.terminated_on IS NULL OR d - 28 < r.terminated_on))
            AS users_before
    FROM roster AS r FINAL
    CROSS JOIN (SELECT toDate($__toTime, 'UTC') AS d) AS today
) AS workforce
WHERE users_now > 0 AND users_before > 0 AND current >= {MIN_TICKETS}
    -- the rise is more than chance: z of current - k * previous, k the workforce ratio
    AND (current - previous * users_now / users_before)
        / sqrt(current + previous * pow(users_now / users_before, 2)) >= {MIN_Z}
ORDER BY scenario
"""

# Phase 4 of the plan makes the high-risk apps passwordless-only.
PASSWORDLESS_ONLY_SINCE = "(SELECT toDateTime(start, 'UTC') FROM plan_phases FINAL WHERE phase = 4)"
# The sign-ins of the rule's window only (0011_windowed_views.sql), the times in UTC.
HIGH_RISK_PASSWORD_SQL = f"""
SELECT app, toString(source) AS source, count() AS password_sign_ins
FROM high_risk_sign_ins_between(
    from = toDateTime64($__fromTime, 6, 'UTC'), to = toDateTime64($__toTime, 6, 'UTC'))
WHERE success AND has(factors, 'password')
    AND time >= {PASSWORDLESS_ONLY_SINCE}
GROUP BY app, source
ORDER BY app, source
"""

_WATCHED = ", ".join(f"'{source}'" for source in STALE_AFTER_MINUTES)
_LIMITS = ", ".join(str(minutes) for minutes in STALE_AFTER_MINUTES.values())
# Silence over the source's limit (above 1: stale). A source silent for the whole 30-day
# window has no row; when none has one, the rule's "no data" is the alert.
STALE_DATA_SQL = f"""
SELECT
    source,
    dateDiff('second', max(written_at), $__toTime) / 60
        / transform(source, [{_WATCHED}], [{_LIMITS}], 30) AS silence_over_limit
FROM ingest_batches
WHERE $__timeFilter(written_at) AND source IN ({_WATCHED})
GROUP BY source
ORDER BY source
"""


@dataclass(frozen=True)
class RuleSpec:
    uid: str
    title: str
    sql: str
    window_seconds: int
    comparison: Literal["gt", "lt"]
    threshold: float
    summary: str
    no_data: Literal["OK", "NoData", "Alerting"] = "OK"
    pending: str = "0s"


GROUPS: dict[str, tuple[str, list[RuleSpec]]] = {
    # name: (evaluation interval, rules)
    "helpdesk": (
        "1h",
        [
            RuleSpec(
                "ticket-rate-rising",
                "Ticket rate rising",
                TICKET_RATE_RISING_SQL,
                56 * DAY,
                "gt",
                RISE_FACTOR,
                "Helpdesk tickets of scenario {{ $labels.scenario }} per 1,000 users rose "
                "{{ humanize $values.A.Value }}x in the last 28 days over the 28 before.",
            )
        ],
    ),
    "rollout-health": (
        "5m",
        [
            RuleSpec(
                "high-risk-password-sign-in",
                "Password sign-in into a high-risk app",
                HIGH_RISK_PASSWORD_SQL,
                3600,
                "gt",
                0,
                "{{ $values.A.Value }} successful sign-in(s) with a password into "
                "{{ $labels.app }} ({{ $labels.source }}) in the last hour, after phase 4 "
                "made it passwordless-only.",
            ),
            RuleSpec(
                "stale-data",
                "No events from a source",
                STALE_DATA_SQL,
                30 * DAY,
                "gt",
                1,
                "{{ if $labels.source }}{{ $labels.source }} has written nothing for "
                "{{ humanize $values.A.Value }} times its limit (30 minutes; tickets a day)."
                "{{ else }}No source has written anything in 30 days.{{ end }}",
                no_data="Alerting",
                pending="10m",
            ),
        ],
    ),
}


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups in Grafana's alerting file-provisioning format."""
    return [
        {
            "orgId": 1,
            "name": name,
            "folder": FOLDER_TITLE,
            "interval": interval,
            "rules": [_rule(spec) for spec in specs],
        }
        for name, (interval, specs) in GROUPS.items()
    ]


def _rule(spec: RuleSpec) -> dict[str, Any]:
    rule = (
        alerting.Rule(spec.title)
        .uid(spec.uid)
        .condition("B")
        .queries(
            [
                alerting.Query("A")
                .datasource_uid(DATASOURCE_UID)
                .relative_time_range(RelativeTimeRange(from_val=spec.window_seconds, to=0))
                .model(SQL(spec.sql)),
                alerting.Query("B")
                .datasource_uid(EXPRESSION_DATASOURCE)
                .model(
                    expressions.TypeThreshold()
                    .ref_id("B")
                    .expression("A")
                    .conditions(
                        [
                            expressions.ExprTypeThresholdConditions().evaluator(
                                expressions.ExprTypeThresholdConditionsEvaluator()
                                .type(spec.comparison)
                                .params([spec.threshold])
                            )
                        ]
                    )
                ),
            ]
        )
        .no_data_state(spec.no_data)
        .exec_err_state("Error")
        .for_val(spec.pending)
        .annotations({"summary": spec.summary})
        .labels({"team": "identity", "pipeline": "passwordless"})
        .is_paused(False)
    )
    built = json.loads(JSONEncoder(sort_keys=True).encode(rule.build()))
    # The file format names the folder and group around the rules, not in each rule.
    for key in ("folderUID", "ruleGroup", "orgID"):
        built.pop(key, None)
    return built


# -- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    value: float | None


def numeric_series(
    columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[Series]:
    """A table result as Grafana alerting reads it: each row one series, its string columns
    the labels, its one numeric column the value (more than one number is an error)."""
    numeric = [i for i, kind in enumerate(types) if column_kind(kind) == "number"]
    if len(numeric) != 1:
        raise ValueError(
            f"an alert query must return exactly one numeric column, got {len(numeric)}: "
            + ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
        )
    (value_at,) = numeric
    names = [(i, c) for i, c in enumerate(columns) if i != value_at]
    series = []
    for row in rows:
        labels = {column: str(row[i]) for i, column in names}
        value = row[value_at]
        series.append(Series(labels, None if value is None else float(value)))
    return series


def evaluate(rule: Mapping[str, Any], results: Mapping[str, list[Series]]) -> list[Series]:
    """The series of the rule's query A that fire at one evaluation, given each query's
    series: the threshold expressions are applied in order, the condition's non-zero ones fire.
    One evaluation only: a rule's pending period (`for`) is not modelled."""
    values = dict(results)
    for query in rule["data"]:
        if query["datasourceUid"] != EXPRESSION_DATASOURCE:
            continue
        model = query["model"]
        source = values[model["expression"]]
        if model["type"] == "threshold":
            evaluator = model["conditions"][0]["evaluator"]
            values[query["refId"]] = [
                Series(s.labels, float(_compare(evaluator["type"], s.value, evaluator["params"])))
                for s in source
            ]
        else:
            raise ValueError(f"expression type {model['type']!r} is not evaluated here")
    if not values["A"]:
        # No series at all: the rule's noDataState decides (Alerting: one alert, no labels).
        return [Series({}, None)] if rule.get("noDataState") == "Alerting" else []
    condition = values[rule["condition"]]
    return [s for s, c in zip(values["A"], condition, strict=True) if c.value]


def _compare(kind: str, value: float | None, params: Sequence[float]) -> bool:
    if value is None or math.isnan(value):
        return False  # Grafana: a null or NaN value does not meet a threshold
    if kind == "gt":
        return value > params[0]
    if kind == "lt":
        return value < params[0]
    raise ValueError(f"threshold type {kind!r} is not evaluated here")
