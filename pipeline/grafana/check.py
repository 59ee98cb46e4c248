"""`pipeline grafana check`: every panel's, variable's and alert rule's SQL, expanded as
Grafana and the ClickHouse plugin expand it, run against the warehouse, with the shape of
each answer checked against what its panel needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.grafana.alerts import EXPRESSION_DATASOURCE, Series, evaluate, numeric_series
from pipeline.grafana.datasource import Format, column_kind
from pipeline.grafana.macros import render_query
from pipeline.sinks.warehouse import Warehouse

DEFAULT_VARIABLES: dict[str, str] = {"source": "all", "department": "all"}
# Grafana's default for a panel: about one point per pixel of a ~1,000 px wide panel.
MAX_DATA_POINTS = 1000


@dataclass(frozen=True)
class Query:
    where: str  # "dashboard / panel [refId]", "dashboard / variable name", "alert rule uid"
    sql: str
    shape: str  # "time series", "table", "stat", "bar chart", "variable", "alert"
    window: timedelta | None = None  # an alert query's relative time range
    rule: Mapping[str, Any] | None = None


@dataclass
class Outcome:
    query: Query
    rows: int = 0
    columns: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None
    firing: list[Series] | None = None  # alert rules: the series that would fire

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        if self.problem is not None:
            return f"FAIL {self.query.where}: {self.problem}"
        text = f"ok   {self.query.where}: {self.rows} row{'s' if self.rows != 1 else ''}"
        if self.firing is not None:
            labels = ", ".join(
                "{" + ", ".join(f"{k}={v}" for k, v in s.labels.items()) + "}" for s in self.firing
            )
            if not self.firing:
                text += ", not firing"
            elif not any(s.labels for s in self.firing):
                text += ", firing (no data: the rule treats that as an alert)"
            else:
                text += f", firing {labels}"
        return text


def queries(
    dashboards: Mapping[str, Mapping[str, Any]], groups: Sequence[Mapping[str, Any]]
) -> list[Query]:
    """Every query of the dashboards (panels and query variables) and of the alert rules."""
    found: list[Query] = []
    for board in dashboards.values():
        title = board["title"]
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                found.append(
                    Query(f"{title} / variable {variable['name']}", _sql(variable), "variable")
                )
        for panel in board.get("panels", []):
            for target in panel.get("targets", []):
                shape = _shape(panel["type"], target)
                where = f"{title} / {panel['title']} [{target['refId']}]"
                found.append(Query(where, target["rawSql"], shape))
    for group in groups:
        for rule in group["rules"]:
            for data in rule["data"]:
                if data["datasourceUid"] == EXPRESSION_DATASOURCE:
                    continue
                window = timedelta(seconds=data["relativeTimeRange"]["from"])
                found.append(
                    Query(
                        f"alert {rule['uid']} [{data['refId']}]",
                        data["model"]["rawSql"],
                        "alert",
                        window,
                        rule,
                    )
                )
    return found


def data_end(warehouse: Warehouse) -> datetime:
    """The latest event's time (now if there is none): "the last 30 days of data" end here."""
    (latest,) = warehouse.query(
        "SELECT max(time) FROM (SELECT max(time) AS time FROM sign_in_parts UNION ALL "
        "SELECT max(time) FROM enrollment_events UNION ALL SELECT max(time) FROM tickets)"
    )[0]
    if latest is None or latest.year <= 1970:
        return datetime.now(UTC)
    return latest.replace(tzinfo=UTC) if latest.tzinfo is None else latest


def run(
    warehouse: Warehouse,
    found: Sequence[Query],
    *,
    start: datetime,
    end: datetime,
    variables: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """Run each query over [start, end]; an alert query over its own window ending at `end`,
    as Grafana evaluates the rule at that moment, and then its expressions."""
    values = {**DEFAULT_VARIABLES, **(variables or {})}
    outcomes = []
    for query in found:
        begin = end - query.window if query.window is not None else start
        interval = max(1.0, (end - begin).total_seconds() / MAX_DATA_POINTS)
        sql = render_query(
            query.sql,
            start=begin,
            end=end,
            interval_s=interval,
            variables=None if query.shape == "alert" else values,
        )
        outcomes.append(_run_one(warehouse, query, sql))
    return outcomes


def _run_one(warehouse: Warehouse, query: Query, sql: str) -> Outcome:
    outcome = Outcome(query)
    try:
        columns, types, rows = warehouse.query_types(sql)
    except Exception as exc:  # every failure is reported against its panel; none stops the run
        outcome.problem = f"{type(exc).__name__}: {_first_line(str(exc))}"
        return outcome
    outcome.rows = len(rows)
    outcome.columns = list(zip(columns, types, strict=True))
    outcome.problem = _shape_problem(query.shape, types)
    if outcome.problem is None and query.rule is not None:
        try:
            series = numeric_series(columns, types, rows)
            outcome.firing = evaluate(query.rule, {"A": series})
        except ValueError as exc:
            outcome.problem = str(exc)
    return outcome


def _shape_problem(shape: str, types: Sequence[str]) -> str | None:
    numbers = [t for t in types if column_kind(t) == "number"]
    if shape == "time series":
        if not types or column_kind(types[0]) != "time":
            return "a time series needs its time column first, got " + ", ".join(types)
        if not numbers:
            return "a time series needs a numeric value column"
    elif shape in ("stat", "bar chart") and not numbers:
        return f"a {shape} needs a numeric column"
    elif shape == "bar chart" and column_kind(types[0]) != "text":
        return "a bar chart needs its category (text) column first"
    elif shape == "variable" and len(types) != 1:
        return f"a variable query returns one column, got {len(types)}"
    return None


def _shape(panel_type: str, target: Mapping[str, Any]) -> str:
    if target.get("format") == Format.TIME_SERIES:
        return "time series"
    return {"stat": "stat", "barchart": "bar chart"}.get(panel_type, "table")


def _sql(variable: Mapping[str, Any]) -> str:
    query = variable["query"]
    return query["rawSql"] if isinstance(query, Mapping) else str(query)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
