"""The ClickHouse warehouse: connection, versioned migrations, idempotent batch writes.

One client API serves a ClickHouse server (`http(s)://user:pass@host:8123/db`) and the
embedded engine (`chdb:///path`, clickhouse-connect's chDB backend). The embedded engine
is locked by the one process that opens it: `WarehouseBusy` says so in words.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.insert import InsertContext
from pydantic import SecretStr

from pipeline.aggregate.batch import TABLE_COLUMNS, Batch
from pipeline.plan import RolloutPlan
from pipeline.settings import REPO_ROOT, Settings
from pipeline.sinks.cluster import cluster_statements, cluster_views

MIGRATIONS = REPO_ROOT / "schemas" / "clickhouse"
# Tables of events about people, and the time their retention counts from
# (PIPELINE_RETENTION_DAYS). Enrollment events and the roster are state the metrics need
# whatever their age (who is enrolled, who works here), so they are kept.
RETAINED = {
    "auth_events": "time",
    "sign_in_parts": "time",
    "tickets": "time",
    "dead_letters": "received_at",
}
# Tables partitioned by the month of this column (schemas/clickhouse/0001_tables.sql,
# 0010_sign_ins_by_day.sql: the month of each part's day).
MONTH_PARTITIONED = {"auth_events": "time", "sign_in_parts": "time"}
# Every table with a `user` column: what `pipeline forget-user` deletes from.
USER_TABLES = (
    "auth_events",
    "sign_in_parts",
    "enrollment_events",
    "tickets",
    "roster",
)
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# A statement ends with ";" at the end of a line (no statement here has one inside a line).
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")


class WarehouseError(RuntimeError):
    """The warehouse cannot be used; the message says why and what to do."""


class WarehouseBusy(WarehouseError):
    pass


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def embedded_path(dsn: str) -> Path | None:
    """The data directory of an embedded (chDB) DSN; None for a server."""
    if not dsn.startswith("chdb://"):
        return None
    return Path(dsn.removeprefix("chdb://"))


class Warehouse:
    """A connected warehouse. Use as a context manager, or call `close()`."""

    def __init__(self, dsn: SecretStr | str, cluster: str | None = None) -> None:
        secret = dsn.get_secret_value() if isinstance(dsn, SecretStr) else dsn
        location = redact(secret)
        self._attach(_connect(secret, location), location, cluster)

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        """The warehouse of PIPELINE_CLICKHOUSE_DSN, on PIPELINE_CLICKHOUSE_CLUSTER if set."""
        return cls(settings.clickhouse_dsn, settings.clickhouse_cluster)

    @classmethod
    def over(cls, client: Client, location: str, cluster: str | None = None) -> Warehouse:
        """A warehouse over a connection opened elsewhere (an embedded engine started with
        options a chdb:// DSN cannot carry, such as a config file)."""
        warehouse = cls.__new__(cls)
        warehouse._attach(client, location, cluster)
        return warehouse

    def _attach(self, client: Client, location: str, cluster: str | None) -> None:
        self.location = location
        self.client = client
        self._insert_contexts: dict[tuple[str, tuple[str, ...]], InsertContext] = {}
        # PIPELINE_CLICKHOUSE_CLUSTER: the migrations laid out over it (sinks/cluster.py)
        self.cluster = cluster
        if cluster:
            # The views filter a Distributed table by a subquery over another one.
            self.client.set_client_setting("distributed_product_mode", "global")

    # -- schema ------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not applied yet, in version order; return their names.
        A migration changed after it ran is an error: write a new one instead. Safe to run
        twice, and concurrently: every statement is idempotent (IF NOT EXISTS, OR REPLACE),
        and a version recorded twice is the same version."""
        record = (
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
            "checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY version"
        )
        for statement in self._laid_out([record]):
            self.client.command(statement)
        applied = self._applied()
        done = []
        every: list[list[str]] = []  # each migration's statements, applied or not
        for version, path in _migration_files():
            sql = path.read_text()
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            statements = _statements(sql)
            every.append(statements)
            if version in applied:
                if applied[version][1] != checksum:
                    raise WarehouseError(
                        f"migration {path.name} changed after it was applied to "
                        f"{self.location}; add a new migration file instead"
                    )
                continue
            for statement in self._laid_out(statements):
                self.client.command(statement)
            self.client.insert(
                "schema_migrations",
                [(version, path.name, checksum)],
                column_names=["version", "name", "checksum"],
            )
            done.append(path.name)
        if self.cluster:
            # Views hold no data: on a cluster each run makes every one again, in its last
            # definition (an earlier one may not run over Distributed tables).
            for statement in cluster_views(every, self.cluster):
                self.client.command(statement)
        return done

    def _laid_out(self, statements: list[str]) -> list[str]:
        """A migration's statements as this warehouse runs them (on its cluster, if any)."""
        return cluster_statements(statements, self.cluster) if self.cluster else statements

    def _applied(self) -> dict[int, tuple[str, str]]:
        return {
            version: (name, checksum)
            for version, name, checksum in self.client.query(
                "SELECT version, name, checksum FROM schema_migrations"
            ).result_rows
        }

    def require_current_schema(self) -> None:
        """Raise, in words, unless every migration of this version has been applied (by
        `pipeline migrate`, a one-off job: workers do not migrate)."""
        exists = self.query(
            "SELECT count() FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'schema_migrations'"
        )[0][0]
        applied = self._applied() if exists else {}
        missing = [path.name for version, path in _migration_files() if version not in applied]
        if missing:
            raise WarehouseError(
                f"the warehouse {self.location} lacks migration(s) {', '.join(missing)}: "
                "run `pipeline migrate` (once, before starting workers)"
            )

    def load_plan(self, plan: RolloutPlan) -> None:
        """Replace the plan tables with this plan (phase gates compare against it). Each
        table is filled aside and swapped in whole (EXCHANGE TABLES), so a reader never sees
        it empty or half-loaded, and two loads at once each swap in a whole plan."""
        phases, targets = [], []
        for phase in plan.phases:
            first, last = phase.weeks
            start = plan.week_start(first)
            end = plan.week_start(last) + timedelta(days=7) if last is not None else None
            phases.append((phase.phase, phase.name, first, last, start, end))
            targets += [(phase.phase, target.metric, target.min) for target in phase.targets]
        tiers = [(app, "high_risk") for app in plan.high_risk_apps]
        tiers += [(app, "legacy") for app in plan.legacy_apps]
        for table, columns, rows in (
            ("plan_phases", ["phase", "name", "first_week", "last_week", "start", "end"], phases),
            ("plan_targets", ["phase", "metric", "target"], targets),
            ("app_tiers", ["app", "tier"], tiers),
        ):
            staging = f"{table}_load_{uuid.uuid4().hex}"
            self.client.command(f"CREATE TABLE {staging} AS {table}")
            try:
                if rows:
                    self.client.insert(staging, rows, column_names=columns)
                self.client.command(f"EXCHANGE TABLES {staging} AND {table}")
            finally:
                self.client.command(f"DROP TABLE IF EXISTS {staging}")

    def apply_retention(self, days: int | None) -> list[str]:
        """Set (or, with None, remove) the TTL of the RETAINED tables where it differs; return
        what changed. Only a change is applied: a new TTL makes ClickHouse rewrite old parts,
        which is not work for every worker start."""
        changed = []
        for table, column in RETAINED.items():
            (create,) = self.query(
                "SELECT create_table_query FROM system.tables "
                "WHERE database = currentDatabase() AND name = {table:String}",
                {"table": table},
            )[0]
            if days is not None:
                # As ClickHouse writes it back; `days` is a validated int, not an event value.
                ttl = f"toDateTime({column}) + toIntervalDay({int(days)})"
                if f" TTL {ttl}" not in create:
                    self.client.command(f"ALTER TABLE {table} MODIFY TTL {ttl}")
                    changed.append(f"{table}: rows older than {days} days are deleted")
            elif " TTL " in create:
                self.client.command(f"ALTER TABLE {table} REMOVE TTL")
                changed.append(f"{table}: kept without limit")
        return changed

    def forget_user(self, user: str, login: str | None = None) -> dict[str, int]:
        """Delete every row of one user (stored as `user`: the login or its pseudonym), and the
        dead letters whose kept bytes name the `login`; rows deleted per table."""
        where = {table: "user = {user:String}" for table in USER_TABLES}
        if login:  # a dead letter's head of bytes (kept only without pseudonyms) may name them
            where["dead_letters"] = "positionCaseInsensitive(raw, {login:String}) > 0"
        parameters = {"user": user, "login": login or ""}
        deleted = {}
        for table, condition in where.items():
            (count,) = self.query(f"SELECT count() FROM {table} WHERE {condition}", parameters)[0]
            if count:
                self.client.command(
                    f"DELETE FROM {table} WHERE {condition}",
                    parameters=parameters,
                    settings={"mutations_sync": 2},
                )
            deleted[table] = count
        return deleted

    def empty(self) -> None:
        """Delete every row the pipeline wrote (the demo starts from nothing)."""
        for table in TABLE_COLUMNS:
            self.client.command(f"TRUNCATE TABLE IF EXISTS {table}")

    # -- data --------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Insert a batch's rows, table by table. Each insert carries a token made of the
        batch's offset ranges, so a batch written again after a crash is dropped whole;
        rows keyed by event id make any other overlap harmless too."""
        for table, columns in TABLE_COLUMNS.items():
            rows = batch.rows[table]
            if rows:
                settings = {"insert_deduplication_token": batch.dedup_token(table)}
                if self.cluster:
                    # Through a Distributed table: return once the shards hold the rows.
                    settings["distributed_foreground_insert"] = "1"
                if table in MONTH_PARTITIONED:
                    # A backfill's batch may span years; the engine refuses over 100 months
                    # per insert by default. The accepted event window bounds them instead.
                    at = columns.index(MONTH_PARTITIONED[table])
                    months = len({(row[at].year, row[at].month) for row in rows})
                    settings["max_partitions_per_insert_block"] = str(max(100, months))
                self.insert(table, rows, columns, settings)

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        settings: dict[str, str] | None = None,
    ) -> None:
        # A context per table saves the column-type lookup each insert would otherwise make.
        context = self._insert_contexts.get((table, tuple(columns)))
        if context is None:
            context = self.client.create_insert_context(table, column_names=list(columns))
            self._insert_contexts[(table, tuple(columns))] = context
        context.settings = settings or {}
        self.client.insert(data=rows, context=context)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        """Rows of a query; values are bound by the server, never pasted into the SQL."""
        return self.client.query(sql, parameters=parameters).result_rows

    def query_columns(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple]]:
        result = self.client.query(sql, parameters=parameters)
        return list(result.column_names), result.result_rows

    def query_types(self, sql: str) -> tuple[list[str], list[str], list[tuple]]:
        """Column names, ClickHouse type names and rows (types are known for no rows too)."""
        result = self.client.query(sql)
        if result.column_names:
            types = [kind.name for kind in result.column_types]
            return list(result.column_names), types, result.result_rows
        # An empty answer carries no columns here: ClickHouse describes the query instead.
        described = self.client.query(f"DESCRIBE ({sql})").result_rows
        return [row[0] for row in described], [row[1] for row in described], []

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _connect(dsn: str, location: str) -> Client:
    path = embedded_path(dsn)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        if _locked_by_another_process(path):
            raise WarehouseBusy(
                f"the embedded warehouse {path} is open in another process (a running "
                "`pipeline worker` or `pipeline demo`?). The embedded engine serves one "
                "process at a time: stop that process, or point PIPELINE_CLICKHOUSE_DSN at "
                "a ClickHouse server for concurrent readers."
            )
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except (ClickHouseError, OSError) as exc:
        # The driver's message can quote the DSN: say it again without the password.
        detail = str(exc).replace(dsn, location)
        raise WarehouseError(f"cannot connect to the warehouse {location}: {detail}") from None


def _locked_by_another_process(path: Path) -> bool:
    """ClickHouse holds an exclusive flock on <data dir>/status while it runs."""
    status = path / "status"
    if not status.exists():
        return False
    with status.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _migration_files() -> list[tuple[int, Path]]:
    files = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise WarehouseError(f"{path.name}: migration files are named NNNN_name.sql")
        files.append((int(match.group(1)), path))
    return files


def _statements(sql: str) -> list[str]:
    """The statements of a migration file, comments-only chunks dropped."""
    chunks = (chunk.strip() for chunk in _STATEMENT_END.split(sql))
    return [
        chunk
        for chunk in chunks
        if any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines())
    ]
