"""The warehouse over HTTP (tests/clickhouse_http.py: a ClickHouse HTTP interface served by a
child process, the real engine behind it) works as the embedded one: the same migrations,
rows and metrics, exactly-once batches, server-bound parameters, the engine's errors, and an
outage the warehouse comes back from with its data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from clickhouse_http import ClickHouseHttp
from warehouse_fill import fill, migrated, simulation

from pipeline.aggregate.batch import TABLE_COLUMNS, Batch, BatchRules, RawMessage, build_batch
from pipeline.plan import load_plan
from pipeline.report.weekly import weekly_metrics
from pipeline.settings import Settings
from pipeline.sinks.warehouse import MIGRATIONS, Warehouse, WarehouseError

# Every row of a table, as a count and a hash, without the columns stamped at write time;
# FINAL where the engine merges rows (a background merge does not change the answer).
DIGEST = (
    "SELECT count(), sum(cityHash64(*)) FROM (SELECT * EXCEPT (ingested_at, received_at, "
    "written_at) FROM {table:Identifier} %s)"
)


@dataclass
class Served:
    server: ClickHouseHttp
    warehouse: Warehouse
    applied: list[str]  # what the first migrate() applied


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulation(tmp_path_factory.mktemp("clickhouse_http"), users=60, weeks=12, seed=5)


@pytest.fixture(scope="module")
def embedded(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The metrics and table digests of the simulation written to an embedded warehouse."""
    warehouse = migrated(tmp_path_factory.mktemp("embedded") / "wh")
    try:  # the engine holds one directory per process: the next module opens its own
        fill(warehouse, sim)
        return {"metrics": weekly_metrics(warehouse, load_plan()), "digests": digests(warehouse)}
    finally:
        warehouse.close()


@pytest.fixture(scope="module")
def served(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The simulation written through a warehouse over HTTP."""
    with ClickHouseHttp(tmp_path_factory.mktemp("served") / "ch") as server:
        warehouse = Warehouse(server.dsn)
        try:
            applied = warehouse.migrate()
            warehouse.load_plan(load_plan())
            fill(warehouse, sim)
            yield Served(server, warehouse, applied)
        finally:
            warehouse.close()


def digests(warehouse: Warehouse) -> dict[str, tuple[int, int]]:
    engines = dict(
        warehouse.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()")
    )
    return {
        table: warehouse.query(
            DIGEST % ("" if engines[table] == "MergeTree" else "FINAL"), {"table": table}
        )[0]
        for table in TABLE_COLUMNS
    }


def test_migrate_applies_every_migration_once(served: Served) -> None:
    names = [path.name for path in sorted(MIGRATIONS.glob("*.sql"))]
    assert len(names) >= 6 and served.applied == names
    assert served.warehouse.migrate() == []  # the checksums read back over HTTP match
    assert served.warehouse.query("SELECT name FROM schema_migrations ORDER BY version") == [
        (name,) for name in names
    ]


def test_the_same_rows_and_metrics_as_the_embedded_warehouse_and_the_truth(
    served: Served, embedded: dict[str, Any], sim: Path
) -> None:
    stored = digests(served.warehouse)
    assert stored == embedded["digests"]
    lines = (sim / "roster.ndjson").read_bytes().splitlines()
    roster = {orjson.loads(line)["user"] for line in lines}
    assert stored["auth_events"][0] > 1000 and stored["roster"][0] == len(roster) >= 60
    metrics = weekly_metrics(served.warehouse, load_plan())
    assert metrics == embedded["metrics"]
    assert metrics == orjson.loads((sim / "truth.json").read_bytes())
    assert len(metrics["weeks"]) == 12


def test_a_batch_written_twice_with_its_token_is_stored_once(served: Served, sim: Path) -> None:
    # In a database of its own (`database` on the DSN), where no other batch wrote: the
    # pipeline's tables as migrated, empty
    served.warehouse.client.command("CREATE DATABASE IF NOT EXISTS exactly_once")
    for table in TABLE_COLUMNS:
        served.warehouse.client.command(f"CREATE TABLE exactly_once.{table} AS {table}")
    warehouse = Warehouse(f"{served.server.dsn}/exactly_once")
    try:
        # No merge may fold rows away between the counts: only a token may drop them.
        warehouse.client.command("SYSTEM STOP MERGES auth_events")
        first, second = batches(sim, 400)
        rows = len(first.rows["auth_events"])
        more = len(second.rows["auth_events"])
        assert rows > 100 and more > 100
        count = "SELECT count() FROM auth_events"
        warehouse.write(first)
        assert warehouse.query(count) == [(rows,)]
        warehouse.write(first)
        assert warehouse.query(count) == [(rows,)]
        # The token decides, not the data: other rows under the first batch's token are
        # dropped too (the same rows again would be, by their hash, even without a token)
        warehouse.insert(
            "auth_events",
            second.rows["auth_events"],
            TABLE_COLUMNS["auth_events"],
            {"insert_deduplication_token": first.dedup_token("auth_events")},
        )
        assert warehouse.query(count) == [(rows,)]
        warehouse.write(second)
        assert warehouse.query(count) == [(rows + more,)]
        # The rows went to the DSN's database, not the default one
        (elsewhere,) = served.warehouse.query("SELECT count() FROM exactly_once.auth_events")
        assert elsewhere == (rows + more,)
    finally:
        warehouse.close()


def batches(sim: Path, size: int) -> list[Batch]:
    """The first okta lines as consecutive batches of `size` messages, as the worker builds
    them from partition 0."""
    lines = (sim / "okta.ndjson").read_bytes().splitlines()[: 2 * size]
    topic = Settings().topics.okta
    rules = BatchRules.from_settings(Settings())
    messages = [RawMessage(topic, 0, offset, None, line) for offset, line in enumerate(lines)]
    end = {(topic, 0): len(lines)}
    return [build_batch(messages[start : start + size], rules, end) for start in (0, size)]


@pytest.mark.parametrize("value", ["a'b\\\\c", "tab\there\nnew line", "{x:String} ☃ ' \\' \\"])
def test_parameters_are_bound_by_the_server(served: Served, value: str) -> None:
    assert served.warehouse.query("SELECT {x:String}, length({x:String})", {"x": value}) == [
        (value, len(value.encode()))
    ]


def test_an_empty_answer_is_described_by_the_engine(served: Served) -> None:
    assert served.warehouse.query_types("SELECT user, time FROM auth_events WHERE 0") == (
        ["user", "time"],
        ["String", "DateTime64(6, 'UTC')"],
        [],
    )


def test_an_engine_error_is_a_database_error_with_the_engines_message(served: Served) -> None:
    with pytest.raises(DatabaseError, match=r"Code: 60\. DB::Exception: .*'no_such_table'") as err:
        served.warehouse.query("SELECT * FROM no_such_table")
    assert err.value.code == 60
    with pytest.raises(DatabaseError, match="Syntax error") as err:
        served.warehouse.client.command("SELEKT 1")
    assert err.value.code == 62


def test_the_warehouse_comes_back_after_an_outage_with_every_row(served: Served) -> None:
    before = digests(served.warehouse)
    assert before["auth_events"][0] > 1000
    for kill in (False, True):  # stopped (SIGTERM), then crashed (SIGKILL)
        served.server.stop(kill=kill)
        try:
            with pytest.raises(OperationalError, match="Connection refused"):
                served.warehouse.query("SELECT 1")
            with pytest.raises(WarehouseError, match=r"cannot connect .* Connection refused"):
                Warehouse(served.server.dsn)
        finally:
            served.server.start()
        assert served.warehouse.query("SELECT 1") == [(1,)]  # the same client, reconnected
    assert digests(served.warehouse) == before
    with Warehouse(served.server.dsn) as again:
        assert again.query("SELECT count() FROM auth_events FINAL") == [before["auth_events"][:1]]
