"""The ticket-rate alert on a rollout without the no-runbook scenario: the same simulated
rollout as tests/test_grafana.py (2,000 users, 30 weeks) with `no_runbook_growth=0`.

Evaluated as Grafana would at the end of every week from phase 3 on, the rule never fires on
`other`, and is quiet once adoption has settled (phases 5 and 6). What it does catch here is
real: the phishing lockdown of week 17 shows as a rising phishing_lockdown scenario.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from commands import pipeline_cli
from warehouse_fill import fill, migrated, simulation

from pipeline.grafana import check
from pipeline.grafana.alerts import rule_groups
from pipeline.plan import load_plan
from pipeline.sinks.warehouse import Warehouse

USERS, WEEKS, SEED = 2000, 30, 1


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    base = tmp_path_factory.mktemp("quiet-rollout")
    out = simulation(base, users=USERS, weeks=WEEKS, seed=SEED, no_runbook_growth=0)
    warehouse = migrated(base / "wh")
    try:
        fill(warehouse, out, names=("tickets", "roster"))  # all the rule reads
        yield warehouse
    finally:
        warehouse.close()


def firing(warehouse: Warehouse, week: int) -> list[str]:
    (query,) = [
        q for q in check.queries({}, rule_groups()) if q.where == "alert ticket-rate-rising [A]"
    ]
    start = load_plan().start
    at = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(weeks=week)
    (outcome,) = check.run(warehouse, [query], start=at, end=at)
    assert outcome.ok and outcome.firing is not None, outcome.line()
    return [series.labels["scenario"] for series in outcome.firing]


def test_without_the_no_runbook_scenario_other_never_fires(warehouse: Warehouse) -> None:
    by_week = {week: firing(warehouse, week) for week in range(9, WEEKS + 1)}
    assert [week for week, scenarios in by_week.items() if "other" in scenarios] == []
    quiet_from = load_plan().phases[4].weeks[0]  # phase 5: adoption has settled
    assert {week: s for week, s in by_week.items() if week >= quiet_from and s} == {}
    # the rule is not blind: the week-17 phishing lockdown is a real rise, and it fires
    assert "phishing_lockdown" in by_week[18]


def test_the_check_command_names_each_failing_panel_and_exits_1(tmp_path: Path) -> None:
    """`pipeline grafana check` on a warehouse whose `arrivals` view is gone: the panels that
    read it fail, each on its own line, the rest still run, and the command exits 1."""
    env = {"PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'wh'}"}

    def pipeline(*args: str) -> subprocess.CompletedProcess[str]:
        return pipeline_cli(*args, env=env)

    assert pipeline("migrate").returncode == 0
    assert pipeline("sql", "DROP VIEW arrivals").returncode == 0
    result = pipeline("grafana", "check", "--from", "2026-01-01", "--to", "2026-02-01")
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert all("arrivals" in line for line in failed), failed
    assert [line.split(" [")[0].split(" / ")[-1] for line in failed] == [
        "Freshness by source",
        "Ingest delay p95 by source (event time to written)",
        "Events per minute by source (event time)",
    ]
    ok = [line for line in result.stdout.splitlines() if line.startswith("ok")]
    assert len(ok) > 30
    assert result.stdout.rstrip().endswith(f"{len(ok)} of {len(ok) + 3} queries ok")
