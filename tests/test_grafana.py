"""The Grafana side on the real engine: every dashboard panel's, template variable's and alert
rule's SQL, expanded as Grafana and the ClickHouse plugin expand it, run against a warehouse
filled by the pipeline's batch builder from a simulated rollout; and the files in grafana/.

The rollout is 2,000 users over 30 weeks: the size at which the simulator's no-runbook
scenario (passkeys inside VDI/RDP sessions) is a clear rise and the ticket-rate alert must
catch it. tests/test_grafana_alerts.py has the rollout without it.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from warehouse_fill import fill, fill_lines, migrated, simulation

from pipeline.grafana import check, provisioning
from pipeline.grafana.alerts import rule_groups
from pipeline.grafana.dashboards import dashboards
from pipeline.grafana.datasource import DATASOURCE_UID, PLUGIN_TYPE
from pipeline.grafana.macros import render_query
from pipeline.model import Method, Source
from pipeline.plan import load_plan
from pipeline.settings import REPO_ROOT
from pipeline.simulate import vendors
from pipeline.simulate.intents import Person, SignInIntent
from pipeline.sinks.warehouse import Warehouse

USERS, WEEKS, SEED = 2000, 30, 1
# Panels whose data is arrival time (now), not event time: read over the last day up to now.
LIVE_PANELS = (
    "Events written per minute by source",
    "Consumer lag by source",
    "Dead letters by source",
    "Latest dead letters",
)
MALFORMED = {
    "okta": [b'{"uuid": "truncated', b"\xff\xfe not utf-8"],
    "entra": [b'{"id": 7, "createdDateTime": []}'],
    "tickets": [b"null"],
}
# Schema drift: a Duo factor string no mapping knows, in the rollout's last month.
DRIFT = json.loads((Path(__file__).parent / "fixtures/duo/auth_unknown_factor.json").read_text())
DRIFT |= {"isotimestamp": "2026-07-20T10:00:00+00:00", "timestamp": 1784541600}


@dataclass
class Rollout:
    warehouse: Warehouse
    truth: dict[date, dict[str, Any]]
    end: datetime


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rollout]:
    out = simulation(tmp_path_factory.mktemp("grafana"), users=USERS, weeks=WEEKS, seed=SEED)
    truth = json.loads((out / "truth.json").read_text())
    warehouse = migrated(out.parent / "wh")
    try:
        fill(warehouse, out, extra={**MALFORMED, "duo": [json.dumps(DRIFT).encode()]})
        weeks = {date.fromisoformat(week["start"]): week for week in truth["weeks"]}
        yield Rollout(warehouse, weeks, check.data_end(warehouse))
    finally:  # one engine directory per process: the next module opens its own
        warehouse.close()


def test_the_files_under_grafana_are_what_the_code_renders() -> None:
    assert provisioning.out_of_date() == [], "run `pipeline grafana render`"


def test_every_panel_reads_the_clickhouse_datasource_with_raw_sql() -> None:
    boards = dashboards()
    assert set(boards) == {"rollout-overview", "active-use", "helpdesk", "pipeline-health"}
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    for board in boards.values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert set(variables) == {"source", "department"}
        assert variables["department"]["datasource"]["uid"] == DATASOURCE_UID
        assert board["time"] == {"from": "now-90d", "to": "now"}
        panels = [p for p in board["panels"] if p["type"] != "row"]
        titles = [p["title"] for p in panels]
        assert len(set(titles)) == len(titles), titles
        for panel in panels:
            assert panel["datasource"] == {"type": PLUGIN_TYPE, "uid": DATASOURCE_UID}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["editorType"] == "sql" and target["rawSql"].startswith("SELECT")
                assert target["datasource"]["uid"] == DATASOURCE_UID
                time_series = target["format"] == 0
                assert time_series == (target["queryType"] == "timeseries")
                assert time_series == (panel["type"] == "timeseries"), panel["title"]
                # Grafana's $__interval is "1m", not SQL: the plugin's $__interval_s is
                assert "$__interval " not in target["rawSql"] + " "


def test_every_query_runs_and_answers_in_its_panels_shape(rollout: Rollout) -> None:
    found = check.queries(dashboards(), rule_groups())
    start = rollout.end - timedelta(days=30)
    outcomes = check.run(rollout.warehouse, found, start=start, end=rollout.end)
    # the panels on when batches were written: the last day, by the warehouse's clock
    (now,) = rollout.warehouse.query("SELECT now64(3, 'UTC')")[0]
    now = now.replace(tzinfo=UTC)
    live = check.run(
        rollout.warehouse,
        [q for q in found if q.where.split(" / ")[-1].split(" [")[0] in LIVE_PANELS],
        start=now - timedelta(days=1),
        end=now + timedelta(minutes=1),
    )
    failed = [o.line() for o in outcomes + live if not o.ok]
    assert failed == []
    assert len(outcomes) == len(found) > 35
    panel_rows = {o.query.where: o.rows for o in outcomes if o.query.shape != "alert"}
    panel_rows.update({o.query.where: o.rows for o in live})
    # a phase target exists only in the phases that set one (the next test); not in phase 6
    empty = [where for where, rows in panel_rows.items() if rows == 0]
    assert [where for where in empty if not where.endswith("[TARGET]")] == []
    # a time series with a text column is long: each series is named by that column's value
    panels = {
        f"{board['title']} / {panel['title']} [A]": panel
        for board in dashboards().values()
        for panel in board["panels"]
    }
    for outcome in outcomes:
        texts = [c for c, kind in outcome.columns if "String" in kind]
        if outcome.query.shape == "time series" and texts:
            (label,) = texts
            display = panels[outcome.query.where]["fieldConfig"]["defaults"]["displayName"]
            assert display == "${__field.labels." + label + "}", outcome.query.where
    alerts = {o.query.where: o for o in outcomes if o.query.shape == "alert"}
    assert set(alerts) == {
        "alert ticket-rate-rising [A]",
        "alert high-risk-password-sign-in [A]",
        "alert stale-data [A]",
    }


@pytest.mark.parametrize(
    "variables",
    [
        {"source": "okta", "department": "Engineering"},
        # a value with a quote is escaped, not pasted: it matches nothing and breaks nothing
        {"source": "all", "department": "O'Brien & Sons"},
    ],
)
def test_every_query_runs_for_other_variable_values(
    rollout: Rollout, variables: dict[str, str]
) -> None:
    found = [q for q in check.queries(dashboards(), rule_groups()) if q.shape != "alert"]
    start = rollout.end - timedelta(days=30)
    outcomes = check.run(
        rollout.warehouse, found, start=start, end=rollout.end, variables=variables
    )
    assert [o.line() for o in outcomes if not o.ok] == []


def test_an_answer_of_the_wrong_shape_fails_its_panel(rollout: Rollout) -> None:
    wrong = [
        check.Query("no time column", "SELECT 1 AS value, now() AS time", "time series"),
        check.Query("no number", "SELECT now() AS time, 'a' AS label", "time series"),
        check.Query("stat of text", "SELECT 'a' AS label", "stat"),
        check.Query("two columns", "SELECT 'a' AS a, 'b' AS b", "variable"),
        check.Query("syntax", "SELECT FROM", "table"),
    ]
    (rule,) = [r for g in rule_groups() for r in g["rules"] if r["uid"] == "stale-data"]
    wrong.append(
        check.Query("two numbers", "SELECT 1 AS a, 2 AS b", "alert", timedelta(hours=1), rule)
    )
    outcomes = check.run(rollout.warehouse, wrong, start=rollout.end, end=rollout.end)
    assert [o.ok for o in outcomes] == [False] * len(wrong)
    assert all(o.line().startswith(f"FAIL {o.query.where}: ") for o in outcomes)


def test_the_variables_filter_what_a_panel_counts(rollout: Rollout) -> None:
    (pattern,) = [
        q for q in check.queries(dashboards(), []) if "Sign-ins by method pattern" in q.where
    ]
    start = rollout.end - timedelta(days=30)

    def total(**variables: str) -> int:
        sql = render_query(
            pattern.sql,
            start=start,
            end=rollout.end,
            variables={**check.DEFAULT_VARIABLES, **variables},
        )
        rows = rollout.warehouse.query(sql)
        return sum(passwordless + other for _, passwordless, other in rows)

    everyone = total()
    okta, entra, ping, duo = (total(source=s) for s in ("okta", "entra", "ping", "duo"))
    assert 0 < okta < everyone and okta + entra + ping + duo == everyone
    assert 0 < total(department="Engineering") < everyone
    assert total(department="O'Brien & Sons") == 0


def test_each_stat_shows_the_target_its_phase_sets(rollout: Rollout) -> None:
    """Evaluated on the last day of each phase, a stat's TARGET query gives the plan's
    target for its metric in that phase, and nothing in a phase without one."""
    plan = load_plan()
    targets = [q for q in check.queries(dashboards(), []) if q.where.endswith("[TARGET]")]
    assert len(targets) == 4
    with_targets = set()
    for query in targets:
        (metric,) = re.findall(r"metric = '(\w+)'", query.sql)
        shown = {}
        for phase in plan.phases[:-1]:  # the open-ended last one has no last day
            last_day = plan.week_start(phase.weeks[1]) + timedelta(days=6)
            end = datetime(last_day.year, last_day.month, last_day.day, 12, tzinfo=UTC)
            sql = render_query(query.sql, start=end - timedelta(days=30), end=end)
            shown[phase.phase] = [row[0] for row in rollout.warehouse.query(sql)]
        expected = {
            phase.phase: [t.min for t in phase.targets if t.metric == metric]
            for phase in plan.phases[:-1]
        }
        assert shown == expected, query.where
        if any(expected.values()):
            with_targets.add(metric)
    # the example plan sets no active-use target: that stat shows none in any phase
    assert with_targets == {"enrollment_rate", "on_passwordless_rate", "high_risk_active_use_rate"}


def test_a_method_no_mapping_knows_is_kept_and_shown(rollout: Rollout) -> None:
    (drift,) = [
        q for q in check.queries(dashboards(), []) if "Methods no mapping knows yet" in q.where
    ]
    sql = render_query(drift.sql, start=rollout.end - timedelta(days=30), end=rollout.end)
    rows = rollout.warehouse.query(sql)
    assert [(source, raw, events) for source, raw, events, _, _ in rows] == [
        ("duo", "duo_desktop_attestation", 1)
    ]
    # kept as a sign-in (not passwordless), not dropped
    (kept,) = rollout.warehouse.query(
        "SELECT count() FROM auth_events WHERE has(raw_factors, 'duo_desktop_attestation')"
    )[0]
    assert kept == 1


def test_the_weekly_ticket_panel_adds_up_to_the_truth(rollout: Rollout) -> None:
    """The helpdesk panel's scenarios of a week add up to that week's ticket rate in
    truth.json, which the simulator counted from its own intents."""
    (weekly,) = [
        q
        for q in check.queries(dashboards(), [])
        if q.where.startswith(
            "Passwordless rollout: helpdesk / Tickets per 1,000 users by scenario"
        )
    ]
    sql = render_query(
        weekly.sql,
        start=datetime(2025, 1, 1, tzinfo=UTC),
        end=rollout.end,
        variables=check.DEFAULT_VARIABLES,
    )
    per_week: dict[date, float] = defaultdict(float)
    for week, _scenario, rate in rollout.warehouse.query(sql):
        per_week[week.date()] += rate or 0.0
    assert set(per_week) == set(rollout.truth)
    for week, truth in rollout.truth.items():
        assert per_week[week] == pytest.approx(truth["ticket_rate_per_1000"]), week


def test_provisioning_files_point_at_the_datasource_and_the_mounted_dashboards() -> None:
    import yaml

    root = provisioning.GRAFANA_DIR
    datasources = yaml.safe_load(
        (root / "provisioning/datasources/passwordless-clickhouse.yaml").read_text()
    )
    (source,) = datasources["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == PLUGIN_TYPE
    assert source["secureJsonData"] == {"password": "${PIPELINE_GRAFANA_CLICKHOUSE_PASSWORD}"}
    assert source["jsonData"]["username"] == "${PIPELINE_GRAFANA_CLICKHOUSE_USER}"
    providers = yaml.safe_load((root / "provisioning/dashboards/passwordless.yaml").read_text())
    (provider,) = providers["providers"]
    assert (
        provider["type"] == "file" and provider["options"]["path"] == provisioning.DASHBOARDS_MOUNT
    )
    rules = yaml.safe_load((root / "provisioning/alerting/passwordless-rules.yaml").read_text())
    assert rules["groups"] == rule_groups()
    for path in (root / "dashboards").glob("*.json"):
        assert json.loads(path.read_text())["uid"] in {b["uid"] for b in dashboards().values()}
    # the example compose file mounts the dashboards where the provider looks, and gives
    # Grafana every variable the datasource file reads
    compose = yaml.safe_load((REPO_ROOT / "deploy" / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    assert f"../grafana/dashboards:{provisioning.DASHBOARDS_MOUNT}:ro" in grafana["volumes"]
    datasource_file = (root / "provisioning/datasources/passwordless-clickhouse.yaml").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", datasource_file)) == set(grafana["environment"]) - {
        "GF_INSTALL_PLUGINS"
    }


def alert(uid: str) -> check.Query:
    (query,) = [q for q in check.queries({}, rule_groups()) if q.where == f"alert {uid} [A]"]
    return query


def evaluate(rollout: Rollout, uid: str, at: datetime) -> list[dict[str, str]]:
    """The labels of the series the rule fires for when Grafana evaluates it at `at`."""
    (outcome,) = check.run(rollout.warehouse, [alert(uid)], start=at, end=at)
    assert outcome.ok and outcome.firing is not None, outcome.line()
    return [series.labels for series in outcome.firing]


def week_end(week: int) -> datetime:
    start = load_plan().start
    return datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(weeks=week)


def test_the_ticket_rate_alert_fires_on_the_no_runbook_scenario(rollout: Rollout) -> None:
    """From week 24 on, `other` (passkeys in VDI/RDP sessions, no runbook) has risen enough
    over 28 days to be more than chance, and only it fires: the adoption-driven scenarios are
    flat by then (tests/test_grafana_alerts.py: the same rollout without it stays quiet)."""
    for week in range(24, WEEKS + 1):
        assert evaluate(rollout, "ticket-rate-rising", week_end(week)) == [{"scenario": "other"}], (
            week
        )
    assert evaluate(rollout, "ticket-rate-rising", rollout.end) == [{"scenario": "other"}]


def test_the_stale_data_alert_fires_per_source_that_stopped(rollout: Rollout) -> None:
    (written,) = rollout.warehouse.query("SELECT max(written_at) FROM ingest_batches")[0]
    written = written.replace(tzinfo=UTC)
    assert evaluate(rollout, "stale-data", written + timedelta(minutes=5)) == []
    # the IdPs after 30 silent minutes; tickets, sparse, after a day; the roster never
    idps = [{"source": s} for s in ("duo", "entra", "okta", "ping")]
    assert evaluate(rollout, "stale-data", written + timedelta(minutes=45)) == idps
    assert evaluate(rollout, "stale-data", written + timedelta(hours=25)) == [
        *idps,
        {"source": "tickets"},
    ]
    # a month with nothing written at all: no data, which this rule treats as firing
    assert evaluate(rollout, "stale-data", written + timedelta(days=31)) == [{}]


def test_the_high_risk_alert_fires_on_a_password_sign_in_after_phase_4(rollout: Rollout) -> None:
    """The simulated rollout refuses passwords on high-risk apps from phase 4: quiet. One
    successful password sign-in into the AWS Console (an Okta record) makes it fire."""
    for week in range(15, WEEKS + 1, 3):
        assert evaluate(rollout, "high-risk-password-sign-in", week_end(week)) == [], week
    when = rollout.end - timedelta(minutes=20)
    person = Person("breakglass@example.com", "Break Glass", "f" * 32, "US")
    intent = SignInIntent(
        "e" * 32, when, person, "AWS Console", (Method.PASSWORD,), True, "198.51.100.7"
    )
    records = vendors.emit_signin(Source.OKTA, intent, random.Random(1))
    fill_lines(rollout.warehouse, "okta", [json.dumps(r).encode() for r in records])
    assert evaluate(rollout, "high-risk-password-sign-in", rollout.end) == [
        {"app": "AWS Console", "source": "okta"}
    ]
    # an hour later the sign-in has left the rule's window
    assert evaluate(rollout, "high-risk-password-sign-in", rollout.end + timedelta(hours=1)) == []


def test_every_query_answers_the_same_in_a_server_of_another_time_zone(rollout: Rollout) -> None:
    """A value handed to a view's parameter is read back as text in the parameter's own zone
    (0011_windowed_views.sql): the panels hand over their times in UTC, so a ClickHouse whose
    zone is Tokyo's answers every panel, variable and rule as one in UTC does."""
    start = rollout.end - timedelta(days=30)
    answered = 0
    for query in check.queries(dashboards(), rule_groups()):
        if "Freshness" in query.where:
            continue  # seconds since the last write: the clock moves between the two
        begin = rollout.end - query.window if query.window is not None else start
        sql = render_query(
            query.sql,
            start=begin,
            end=rollout.end,
            interval_s=3600,
            variables=None if query.shape == "alert" else check.DEFAULT_VARIABLES,
        )
        utc = rollout.warehouse.client.query(sql).result_rows
        tokyo = rollout.warehouse.client.query(sql, settings={"session_timezone": "Asia/Tokyo"})
        assert sorted(tokyo.result_rows, key=repr) == sorted(utc, key=repr), query.where
        answered += bool(utc)
    assert answered > 30
