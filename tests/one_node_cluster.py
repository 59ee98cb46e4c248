"""The cluster layout of the migrations (pipeline/sinks/cluster.py) on the real engine, as a
one-node cluster: a child process of tests/test_cluster_ddl.py.

    python tests/one_node_cluster.py WORK SIMULATION CLUSTER

chDB reads a config (WORK/config.xml) that defines CLUSTER as one shard on this node and
the `shard` and `replica` macros. The cluster statements of every migration are read by the
engine's parser (formatQuery) as they are, then run with the two parts a single engine cannot
run taken out: `ON CLUSTER` (distributed DDL needs Keeper and a server's DDL worker) and the
`Replicated` prefix of the engines (replication needs Keeper). What runs is the layout itself:
`<name>_local` tables, Distributed tables over them, views over those. The simulation is then
written through the Distributed tables by the worker's own batch builder and writer, with the
settings a cluster asks for, and the weekly metrics are read back through the views.

Writes WORK/result.json: the formatted statements, the tables' engines, the metrics.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import orjson
from clickhouse_connect.driver._chdbclient import ChdbClient
from warehouse_fill import fill

from pipeline.plan import load_plan
from pipeline.report.weekly import weekly_metrics
from pipeline.sinks.cluster import cluster_statements, cluster_views
from pipeline.sinks.warehouse import Warehouse, _migration_files, _statements

# The port this node says it serves: a shard at localhost on it is this node (is_local).
NODE_PORT = 59123
CONFIG = """<clickhouse>
  <tcp_port>{port}</tcp_port>
  <remote_servers>
    <{cluster}>
      <shard><replica><host>localhost</host><port>{port}</port></replica></shard>
    </{cluster}>
  </remote_servers>
  <macros><shard>01</shard><replica>node-1</replica></macros>
</clickhouse>
"""
# What a cluster's writer and reader run with (README, "Running in production").
SETTINGS = {"distributed_foreground_insert": 1, "distributed_product_mode": "global"}
_REPLICATED = re.compile(r"\bReplicated(\w*MergeTree)\('[^']*', '[^']*'(?:, )?")


def migration_statements(cluster: str) -> list[str]:
    """Every migration's statements laid out on `cluster`, in order, then the views."""
    migrations = [_statements(path.read_text()) for _, path in _migration_files()]
    tables = [laid for each in migrations for laid in cluster_statements(each, cluster)]
    return tables + cluster_views(migrations, cluster)


def one_node(statement: str, cluster: str) -> str:
    """The statement with what only a cluster with Keeper runs taken out."""
    return _REPLICATED.sub(r"\1(", statement.replace(f" ON CLUSTER `{cluster}`", ""))


def main(work: Path, simulation: Path, cluster: str) -> None:
    config = work / "config.xml"
    config.write_text(CONFIG.format(port=NODE_PORT, cluster=cluster))
    client = ChdbClient(
        path=str(work / "data"), settings=SETTINGS, chdb_options={"config-file": str(config)}
    )
    statements = migration_statements(cluster)
    formatted = [
        client.query("SELECT formatQuery({q:String})", parameters={"q": s}).result_rows[0][0]
        for s in statements
    ]
    for statement in statements:
        client.command(one_node(statement, cluster))
    # a chdb:// DSN cannot carry chDB's config file; it writes as on a cluster
    warehouse = Warehouse.over(client, "one-node", cluster)
    plan = load_plan()
    warehouse.load_plan(plan)
    fill(warehouse, simulation)
    engines = dict(
        client.query(
            "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    )
    local_rows = client.query("SELECT count() FROM auth_events_local").result_rows[0][0]
    (work / "result.json").write_bytes(
        orjson.dumps(
            {
                "statements": statements,
                "formatted": formatted,
                "engines": engines,
                "auth_events_local": local_rows,
                "metrics": json.loads(orjson.dumps(weekly_metrics(warehouse, plan))),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
