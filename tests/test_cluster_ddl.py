"""The migrations on a ClickHouse cluster (pipeline/sinks/cluster.py), checked through the
engine's own parser, as the read-only user's statements are (tests/test_access.py), and run
on the real engine as a one-node cluster (tests/one_node_cluster.py): the layout, written
through the Distributed tables by the worker's own writer, gives the simulator's truth."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from pipeline.simulate.run import simulate
from pipeline.sinks.cluster import (
    EVERYWHERE,
    SHARDED,
    ClusterLayoutError,
    cluster_statements,
    cluster_views,
)
from pipeline.sinks.warehouse import _migration_files, _statements

TESTS = Path(__file__).parent
_VIEW = re.compile(r"^CREATE OR REPLACE VIEW (\w+)", re.MULTILINE)
CLUSTER = "pipeline_cluster"


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What tests/one_node_cluster.py found (in a child: one chDB engine, with its config)."""
    work = tmp_path_factory.mktemp("cluster")
    simulation = work / "sim"
    simulate(users=60, weeks=10, seed=11, out=simulation)
    done = subprocess.run(
        [sys.executable, str(TESTS / "one_node_cluster.py"), str(work), str(simulation), CLUSTER],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = orjson.loads((work / "result.json").read_bytes())
    result["truth"] = orjson.loads((simulation / "truth.json").read_bytes())
    return result


def test_every_statement_parses_and_runs_on_the_cluster(laid_out: dict) -> None:
    statements, formatted = laid_out["statements"], laid_out["formatted"]
    assert len(formatted) == len(statements) > 0
    for text in formatted:
        assert f"ON CLUSTER {CLUSTER}" in text, text[:200]
    creates = [text for text in formatted if text.startswith("CREATE") and " TABLE " in text]
    for text in creates:
        engine = re.search(r"ENGINE = (\w+)", text)
        assert engine and engine[1].startswith(("Replicated", "Distributed")), text[:300]
    assert not any("non_replicated_deduplication_window" in text for text in formatted)


def test_written_tables_are_sharded_and_small_ones_on_every_node(laid_out: dict) -> None:
    engines = laid_out["engines"]
    for table in SHARDED:
        if table in engines or f"{table}_local" in engines:
            assert engines[table] == "Distributed"
            assert engines[f"{table}_local"].endswith("MergeTree")
    for table in EVERYWHERE & set(engines):
        assert engines[table].endswith("MergeTree") and f"{table}_local" not in engines
    assert "enrollment_state" not in engines  # dropped by 0007, on every node
    formatted = "\n".join(laid_out["formatted"])
    for table, key in SHARDED.items():
        # One shard holds every copy of an event: the sharding key is its dedup key.
        assert f"Distributed('{CLUSTER}', currentDatabase(), '{table}_local', {key})" in formatted
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')"
        in formatted
    )
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/all', '{shard}-{replica}', "
        "ingested_at)"
    ) in formatted


def test_the_metrics_read_through_the_distributed_tables_equal_the_truth(laid_out: dict) -> None:
    assert laid_out["auth_events_local"] > 0  # the rows are in the local tables ...
    assert laid_out["metrics"] == laid_out["truth"]  # ... and the views read them whole


def test_a_column_change_makes_the_distributed_table_again() -> None:
    laid = cluster_statements(
        ["ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS item UInt32 AFTER offset"], "c"
    )
    assert laid == [
        "ALTER TABLE dead_letters_local ON CLUSTER `c` ADD COLUMN IF NOT EXISTS item UInt32 "
        "AFTER offset",
        "CREATE OR REPLACE TABLE dead_letters ON CLUSTER `c` AS dead_letters_local "
        "ENGINE = Distributed('c', currentDatabase(), 'dead_letters_local', "
        "cityHash64(topic, partition, offset))",
    ]
    assert cluster_statements(["ALTER TABLE auth_events MATERIALIZE INDEX i"], "c") == [
        "ALTER TABLE auth_events_local ON CLUSTER `c` MATERIALIZE INDEX i"
    ]


def test_the_migrations_own_record_is_on_every_node() -> None:
    (laid,) = cluster_statements(
        [
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String) "
            "ENGINE = MergeTree ORDER BY version"
        ],
        "c",
    )
    assert laid.startswith("CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER `c` (")
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{uuid}/all', '{shard}-{replica}')" in laid
    )


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("CREATE TABLE IF NOT EXISTS newcomer (x UInt8) ENGINE = MergeTree ORDER BY x", "newcomer"),
        ("CREATE MATERIALIZED VIEW mv TO auth_events AS SELECT 1", "materialized view"),
        ("CREATE TABLE IF NOT EXISTS roster (x UInt8) ENGINE = Memory", "MergeTree"),
        ("INSERT INTO roster VALUES (1)", "kind of statement"),
        (
            "CREATE OR REPLACE TABLE auth_events (x UInt8) ENGINE = MergeTree ORDER BY x "
            "AS SELECT x FROM tickets",
            "only auth_events itself",
        ),
    ],
)
def test_a_statement_with_no_known_layout_is_refused_by_name(statement: str, reason: str) -> None:
    with pytest.raises(ClusterLayoutError, match=reason):
        cluster_statements([statement], "c")


def test_views_come_last_each_in_its_last_definition_after_the_views_it_reads() -> None:
    first = [
        "CREATE OR REPLACE VIEW b AS SELECT 1 AS x",
        "CREATE OR REPLACE VIEW a AS SELECT x FROM b",
        "CREATE TABLE IF NOT EXISTS roster (x UInt8) ENGINE = MergeTree ORDER BY x",
    ]
    later = [
        "CREATE OR REPLACE VIEW b AS SELECT x FROM c_between(d = 1)",
        "CREATE OR REPLACE VIEW c_between AS SELECT {d:UInt8} AS x",
    ]
    assert [s.split()[5] for s in cluster_statements(first, "c")] == ["roster"]
    assert cluster_views([first, later], "c") == [
        "CREATE OR REPLACE VIEW c_between ON CLUSTER `c` AS SELECT {d:UInt8} AS x",
        "CREATE OR REPLACE VIEW b ON CLUSTER `c` AS SELECT x FROM c_between(d = 1)",
        "CREATE OR REPLACE VIEW a ON CLUSTER `c` AS SELECT x FROM b",
    ]
    circle = ["CREATE VIEW a AS SELECT * FROM b", "CREATE VIEW b AS SELECT * FROM a"]
    with pytest.raises(ClusterLayoutError, match="in a circle"):
        cluster_views([circle], "c")


def test_a_cluster_name_that_is_not_plain_is_refused() -> None:
    with pytest.raises(ClusterLayoutError, match="plain cluster name"):
        cluster_statements(["DROP TABLE IF EXISTS roster"], "c`; DROP TABLE x")


def test_every_migration_statement_has_a_layout() -> None:
    """Each statement of every migration (not only those the engine ran above)."""
    migrations = [_statements(path.read_text()) for _, path in _migration_files()]
    views = {name for statements in migrations for s in statements for name in _VIEW.findall(s)}
    for statements in migrations:
        others = [s for s in statements if not _VIEW.search(s)]
        assert len(cluster_statements(statements, CLUSTER)) >= len(others)
    assert {s.split()[4] for s in cluster_views(migrations, CLUSTER)} == views
