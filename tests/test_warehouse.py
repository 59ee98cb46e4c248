"""The warehouse: migrations, the embedded engine's one-process lock, the SQL commands."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from commands import pipeline_cli

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
