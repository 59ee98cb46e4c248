"""The warehouse: migrations, the embedded engine's one-process lock, the SQL commands."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from commands import pipeline_cli
from warehouse_fill import fill, migrated, simulation

from pipeline.aggregate.signins import SIGN_IN_PART_COLUMNS
from pipeline.plan import load_plan
from pipeline.report.weekly import weekly_metrics
from pipeline.sinks import warehouse as warehouse_module
from pipeline.sinks.warehouse import Warehouse, WarehouseBusy, WarehouseError, redact


def test_migrate_applies_each_version_once_and_records_it(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'wh'}"
    with Warehouse(dsn) as warehouse:
        first = warehouse.migrate()
        assert first == [path.name for path in sorted(warehouse_module.MIGRATIONS.glob("*.sql"))]
        assert warehouse.migrate() == []
        versions = warehouse.query("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [name for _, name in versions] == first
        tables = {row[0] for row in warehouse.query("SHOW TABLES")}
    assert {"auth_events", "sign_in_parts", "sign_ins", "weekly_metrics", "phase_gates"} <= tables


def test_a_migration_edited_after_it_ran_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(warehouse_module.MIGRATIONS, copy)
    monkeypatch.setattr(warehouse_module, "MIGRATIONS", copy)
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as warehouse:
        warehouse.migrate()
        views = copy / "0002_views.sql"
        views.write_text(views.read_text() + "\n-- an edit\n")
        with pytest.raises(WarehouseError, match=r"0002_views\.sql changed after it was applied"):
            warehouse.migrate()


def test_a_second_process_is_told_the_embedded_warehouse_is_busy(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'wh'}"
    with Warehouse(dsn):
        result = pipeline_cli("sql", "SELECT 1", env={"PIPELINE_CLICKHOUSE_DSN": dsn}, timeout=120)
        with pytest.raises(WarehouseBusy):
            Warehouse(dsn)  # a second handle in this process is refused the same way
    assert result.returncode == 2
    assert "is open in another process" in result.stderr
    assert "Traceback" not in result.stderr
    with Warehouse(dsn) as reopened:  # and once closed, it opens again
        assert reopened.query("SELECT 1") == [(1,)]


def test_redact_hides_the_password_only() -> None:
    assert redact("http://reader:s3cret@ch.example.com:8123/rollout") == (
        "http://reader:***@ch.example.com:8123/rollout"
    )
    assert redact("chdb:///var/wh") == "chdb:///var/wh"


def test_sql_binds_parameters_and_migrate_reports(tmp_path: Path) -> None:
    env = {"PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'wh'}"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return pipeline_cli(*args, env=env, timeout=120)

    migrated = cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied 0001_tables.sql" in migrated.stdout
    assert "applied" not in cli("migrate").stdout
    hostile = "x'); DROP TABLE roster; --"
    shown = cli(
        "sql", "SELECT {who:String} AS who, count() AS n FROM roster", "--param", f"who={hostile}"
    )
    assert shown.returncode == 0, shown.stderr
    assert hostile in shown.stdout and "(1 rows)" in shown.stdout
    query = "SELECT phase, metric FROM plan_targets ORDER BY phase"
    as_json = cli("sql", query, "--format", "json")
    assert as_json.stdout.splitlines()[0] == '{"phase":2,"metric":"enrollment_rate"}'
    refused = cli("sql", "SELECT no_such_column FROM roster")
    assert refused.returncode == 1 and "refused the query" in refused.stderr


# The views of 0002-0006, whose answers a migration must keep.
PLAIN_VIEWS = [
    view
    for path in sorted(warehouse_module.MIGRATIONS.glob("000*.sql"))
    for view in re.findall(r"^CREATE OR REPLACE VIEW (\w+) AS$", path.read_text(), re.MULTILINE)
]


def answers(warehouse: Warehouse) -> dict[str, Any]:
    """Every plain view's rows, in an order of their own, floats to 12 places (a sum may be
    added up in another order), and the weekly report's metrics."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 12)
        if isinstance(value, list | tuple):
            return tuple(rounded(item) for item in value)
        return value

    found: dict[str, Any] = {
        view: sorted(
            (
                rounded(row)
                for row in warehouse.query("SELECT * FROM {view:Identifier}", {"view": view})
            ),
            key=repr,
        )
        for view in set(PLAIN_VIEWS)
    }
    found["weekly metrics"] = weekly_metrics(warehouse, load_plan())
    return found


def test_migrating_a_filled_warehouse_keeps_every_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse that ran migrations 0001-0009 only, filled through the batch builder from a
    simulated rollout, with two more sign-ins whose parts were written apart; then 0010 and up:
    sign_in_parts is keyed by day, and every view of 0002-0006 and the weekly metrics answer
    as before. 0010's statements run again change nothing."""
    copy = tmp_path / "migrations"
    copy.mkdir()
    later = []
    for path in sorted(warehouse_module.MIGRATIONS.glob("*.sql")):
        if int(path.name[:4]) <= 9:
            shutil.copy(path, copy)
        else:
            later.append(path)
    monkeypatch.setattr(warehouse_module, "MIGRATIONS", copy)
    out = simulation(tmp_path, users=60, weeks=8, seed=3)
    at = datetime.combine(load_plan().week_start(3), datetime.min.time(), UTC) + timedelta(hours=9)
    parts = [
        ("okta", "session-1", "ana@example.com", at, ["e1"], ["password"], ["password"], 1, 0,
         (at, 0), (at, "Salesforce")),
        ("okta", "session-1", "ana@example.com", at, ["e2"], ["push"], ["push"], 0, 0,
         (at, 0), (datetime(2299, 12, 31, tzinfo=UTC), "")),
        ("entra", "id-2", "bo@example.com", at, ["id-2"], ["windows_hello"], ["windowsHello"], 0,
         1, (at, 1), (at, "Outlook")),
    ]  # fmt: skip
    with migrated(tmp_path / "wh") as warehouse:
        fill(warehouse, out)
        for part in parts:  # one insert each: three parts stored apart
            warehouse.insert("sign_in_parts", [part], SIGN_IN_PART_COLUMNS)
        before = answers(warehouse)
        assert len(before["sign_ins"]) > 1000 and len(before["weekly metrics"]["weeks"]) == 8
        for path in later:
            shutil.copy(path, copy)
        assert warehouse.migrate() == [path.name for path in later]
        assert answers(warehouse) == before
        for statement in warehouse_module._statements(later[0].read_text()):
            warehouse.client.command(statement)
        assert answers(warehouse) == before
        (order,) = warehouse.query(
            "SELECT sorting_key FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'sign_in_parts'"
        )[0]
        assert order == "day, source, sign_in_id"
