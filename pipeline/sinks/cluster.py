"""The migrations on a ClickHouse cluster (PIPELINE_CLICKHOUSE_CLUSTER): each single-server
statement of schemas/clickhouse/ made into the statements that lay the same schema out over
the cluster's shards and replicas. Pure: statements in, statements out.

The layout keeps every name the writer and the views use:
- A table the worker writes in volume (`SHARDED`) becomes `<name>_local`, a Replicated table
  on every node, and `<name>`, a Distributed table over them whose sharding key is the
  table's own dedup key: the copies of one event (a replay, a re-sent batch) land on one
  shard, where the table's merge or FINAL folds them, as on one server. Writes go through
  the Distributed table and reads too, so `auth_events FINAL` and the views work unchanged.
- A small table (`EVERYWHERE`: the roster, the plan, the migrations' own record) is one
  Replicated table with one copy on every node of every shard, under its own name: the views'
  joins with it are local wherever they run, and a write on any node reaches all of them.
- `ALTER` goes to the Replicated tables; when it changes columns, the Distributed table over
  them is made again from them (`CREATE OR REPLACE … AS <name>_local`). `DROP` drops both.
- Views are created on every node, over those names, each in its last definition only and
  after the tables (`cluster_views`): a view replaced by a later migration may not be one the
  engine can create over Distributed tables (0002's `weekly_metrics` is not: its correlated
  subquery), and a view holds no data, so every migration run makes them all again.

Replicated tables live at `/clickhouse/tables/{uuid}/{shard}` with replica `{replica}` (the
sharded ones) or `/clickhouse/tables/{uuid}/all` with replica `{shard}-{replica}` (one copy
per node): `{uuid}` is the table's own UUID, which an `ON CLUSTER` query gives every node
alike (https://clickhouse.com/docs/engines/table-engines/mergetree-family/replication), so a
table made again (0010's `CREATE OR REPLACE`) gets a path of its own. The cluster's nodes
define the `shard` and `replica` macros, as replication needs anyway. Distributed tables:
https://clickhouse.com/docs/engines/table-engines/special/distributed.

What the rest of the pipeline must do on a cluster (README, "Running in production"): write
with `distributed_foreground_insert = 1`, so an insert returns once the shards hold it (only
then is its offset committed); read with `distributed_product_mode = 'global'`, since views
filter a Distributed table by a subquery over another one.

A statement this module does not know how to lay out (a new table, a materialized view)
raises ClusterLayoutError, so that a new migration says how it runs on a cluster before it
runs on one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Tables written per event, with their sharding key: the columns of their dedup key (their
# ORDER BY, less what a copy of the same record may differ in, such as a sign-in part's day).
SHARDED = {
    "auth_events": "cityHash64(source, event_id)",
    "sign_in_parts": "cityHash64(source, sign_in_id)",
    "enrollment_events": "cityHash64(source, event_id)",
    "tickets": "cityHash64(system, event_id)",
    "dead_letters": "cityHash64(topic, partition, offset)",
    "ingest_batches": "cityHash64(topic, partition)",
}
# Small tables, one whole copy on every node.
EVERYWHERE = frozenset(
    {
        "roster",
        "plan_phases",
        "plan_targets",
        "app_tiers",
        "enrollment_state",
        "schema_migrations",
    }
)
LOCAL = "_local"

_CLUSTER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
_CREATE_TABLE = re.compile(
    r"^CREATE\s+(?P<replace>OR\s+REPLACE\s+)?TABLE\s+(?P<exists>IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>\w+)(?=\s*\()",
    re.IGNORECASE,
)
_CREATE_VIEW = re.compile(
    r"^CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>\w+)(?=\s+AS\b)",
    re.IGNORECASE,
)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(?P<name>\w+)(?=\s)", re.IGNORECASE)
_DROP = re.compile(r"^DROP\s+TABLE\s+(?P<exists>IF\s+EXISTS\s+)?(?P<name>\w+)\s*$", re.IGNORECASE)
_ENGINE = re.compile(
    r"\bENGINE\s*=\s*(?P<engine>\w*MergeTree)\b(?:\s*\((?P<args>[^()]*)\))?", re.IGNORECASE
)
_AS_SELECT = re.compile(r"\bAS\s+SELECT\b", re.IGNORECASE)
# What a view reads: a name after FROM or JOIN, or one called with parameters.
_READS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)|\b(\w+)\s*\(\s*\w+\s*=", re.IGNORECASE)
_FROM = re.compile(r"\bFROM\s+(?P<name>\w+)\b", re.IGNORECASE)
_CHANGES_COLUMNS = re.compile(r"\b(?:ADD|MODIFY|DROP|RENAME|CLEAR)\s+COLUMN\b", re.IGNORECASE)
_UNREPLICATED_WINDOW = re.compile(r"\bnon_replicated_deduplication_window\b")


class ClusterLayoutError(ValueError):
    """A statement with no known layout on a cluster; the message names it."""


def cluster_statements(statements: Iterable[str], cluster: str) -> list[str]:
    """The statements that apply `statements` (one migration's, in order) to the tables of
    `cluster`; its views are left to `cluster_views`."""
    laid_out: list[str] = []
    for statement in statements:
        sql = _without_comment_lines(statement)
        if not _view(sql):
            laid_out += _statement(sql, cluster)
    return laid_out


def cluster_views(migrations: Iterable[Iterable[str]], cluster: str) -> list[str]:
    """Every view of `migrations` (every migration's statements, in version order: those
    already applied too) in its last definition, on `cluster`, each after the views it
    reads (those are found after FROM and JOIN, or called with parameters)."""
    last: dict[str, str] = {}
    for statements in migrations:
        for statement in statements:
            sql = _without_comment_lines(statement)
            if (match := _view(sql)) is not None:
                last.pop(match["name"], None)  # a later definition takes the later place
                last[match["name"]] = _after_name(sql, match, on_cluster(cluster))
    reads = {name: _reads(sql) & set(last) - {name} for name, sql in last.items()}
    ordered: list[str] = []
    while len(ordered) < len(last):
        ready = [name for name in last if name not in ordered and reads[name] <= set(ordered)]
        if not ready:
            stuck = sorted(set(last) - set(ordered))
            raise ClusterLayoutError(f"views that read one another in a circle: {stuck}")
        ordered.append(ready[0])
    return [last[name] for name in ordered]


def on_cluster(cluster: str) -> str:
    if not _CLUSTER.fullmatch(cluster):
        raise ClusterLayoutError(f"{cluster!r} is not a plain cluster name")
    return f"ON CLUSTER `{cluster}`"


def _view(sql: str) -> re.Match[str] | None:
    if re.match(r"^CREATE\s+(?:OR\s+REPLACE\s+)?MATERIALIZED\b", sql, re.IGNORECASE):
        raise _unknown(sql, "a materialized view needs its source and target laid out")
    return _CREATE_VIEW.match(sql)


def _reads(sql: str) -> set[str]:
    return {found[1] or found[2] for found in _READS.finditer(sql)}


def _statement(sql: str, cluster: str) -> list[str]:
    on = on_cluster(cluster)
    if match := _CREATE_TABLE.match(sql):
        return _create_table(sql, match, cluster)
    if match := _ALTER.match(sql):
        name = _known(match["name"], sql)
        if name not in SHARDED:
            return [_after_name(sql, match, on)]
        altered = _after_name(sql, match, on, rename=name + LOCAL)
        if not _CHANGES_COLUMNS.search(sql):
            return [altered]
        return [altered, _distributed(name, cluster, "CREATE OR REPLACE TABLE")]
    if match := _DROP.match(sql):
        name = _known(match["name"], sql)
        names = [name, name + LOCAL] if name in SHARDED else [name]
        return [f"DROP TABLE IF EXISTS {each} {on} SYNC" for each in names]
    raise _unknown(sql, "no layout on a cluster is known for this kind of statement")


def _create_table(sql: str, match: re.Match[str], cluster: str) -> list[str]:
    name = _known(match["name"], sql)
    engine = _ENGINE.search(sql)
    if engine is None:
        raise _unknown(sql, "a table on a cluster needs a MergeTree-family engine")
    sharded = name in SHARDED
    if sharded:
        path, replica = "'/clickhouse/tables/{uuid}/{shard}'", "'{replica}'"
    else:
        path, replica = "'/clickhouse/tables/{uuid}/all'", "'{shard}-{replica}'"
    arguments = ", ".join(
        [path, replica, *([engine["args"].strip()] if (engine["args"] or "").strip() else [])]
    )
    body = (
        sql[: engine.start()]
        + f"ENGINE = Replicated{engine['engine']}({arguments})"
        + sql[engine.end() :]
    )
    # Replicated tables deduplicate inserts by their own window setting.
    body = _UNREPLICATED_WINDOW.sub("replicated_deduplication_window", body)
    local = name + LOCAL if sharded else name
    if sharded and (select := _AS_SELECT.search(body)):
        # A copy made on each node reads that node's own rows, not the whole cluster's.
        head, query = body[: select.start()], body[select.start() :]

        def local_source(found: re.Match[str]) -> str:
            if found["name"] != name:
                raise _unknown(sql, f"a copy on a cluster may read only {name} itself")
            return f"FROM {local}"

        body = head + _FROM.sub(local_source, query)
    created = _after_name(body, match, f"ON CLUSTER `{cluster}`", rename=local)
    if not sharded:
        return [created]
    verb = "CREATE OR REPLACE TABLE" if match["replace"] else "CREATE TABLE IF NOT EXISTS"
    return [created, _distributed(name, cluster, verb)]


def _distributed(name: str, cluster: str, verb: str) -> str:
    return (
        f"{verb} {name} ON CLUSTER `{cluster}` AS {name}{LOCAL} "
        f"ENGINE = Distributed('{cluster}', currentDatabase(), '{name}{LOCAL}', {SHARDED[name]})"
    )


def _after_name(sql: str, match: re.Match[str], clause: str, rename: str | None = None) -> str:
    """`sql` with its table or view name (renamed) followed by `clause`."""
    start, end = match.span("name")
    return f"{sql[:start]}{rename or match['name']} {clause}{sql[end:]}"


def _known(name: str, sql: str) -> str:
    if name not in SHARDED and name not in EVERYWHERE:
        raise _unknown(
            sql,
            f"table {name} is neither sharded nor on every node: add it to SHARDED (with its "
            "sharding key) or EVERYWHERE in pipeline/sinks/cluster.py",
        )
    return name


def _unknown(sql: str, why: str) -> ClusterLayoutError:
    return ClusterLayoutError(f"{' '.join(sql.split()[:6])} …: {why}")


def _without_comment_lines(sql: str) -> str:
    """The statement without its whole-line `--` comments (a comment may name an engine)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return "\n".join(lines).strip()
