"""The warehouse's read-only reader: the ClickHouse user that Grafana's datasource and people's
ad-hoc SQL log in as, and the settings profile that bounds what it may run.

`reader_statements` is the SQL that creates the reader on a ClickHouse server, or brings an
existing one up to date (limits, password, grant); `grant_reader` runs it. The user gets
SELECT on one database and nothing else, and its password reaches the server only as a
salted SHA-256 computed here: the plaintext is in no SQL text, so in no query log either.

Why `readonly = 2` and not 1: Grafana's ClickHouse plugin (through clickhouse-go) sends
`max_execution_time` with every query, and a `readonly = 1` user may change no setting, so
every panel would fail with "Cannot modify 'max_execution_time' setting in readonly mode".
`readonly = 2` allows reads and setting changes (never writes, DDL or a change of `readonly`
itself), so each limit here is also a constraint: the reader may lower it, never raise it
or turn it off.

The embedded engine (chDB) has no users or grants: the statements are for a server, and
`grant_reader` says so on chDB instead of running them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from clickhouse_connect.driver.exceptions import ClickHouseError
from pydantic import SecretStr

from pipeline.settings import Grafana
from pipeline.sinks.cluster import on_cluster
from pipeline.sinks.warehouse import Warehouse, WarehouseError, embedded_path

PROFILE = "passwordless_reader"

# The reader's settings, and the one source of its constraints. A number is a ceiling: the
# profile sets it and constrains it to MIN 1 MAX it, because 0 means "no limit" for each of
# these. Text is fixed (CONST).
SETTINGS: dict[str, int | str] = {
    # Reads and setting changes only (see the docstring); MIN 1 MAX 2 refuses 0, and the
    # engine itself refuses any change of `readonly` to a readonly = 2 user.
    "readonly": 2,
    # Seconds. Grafana's datasource times a query out after 60 s by default and clickhouse-go
    # then sends max_execution_time = 65 (the time left plus 5 s), which must fit under the
    # ceiling; 120 leaves room for a datasource timeout raised to 115 s and for ad-hoc SQL.
    # This, not the row count below, is what stops a runaway query.
    "max_execution_time": 120,
    # Rows read from tables, all of a query's reads together. The views behind the panels
    # aggregate sign_in_parts from its first row whatever time range is picked, and the
    # heaviest panel (the phase gates) reads that table four times (EXPLAIN ESTIMATE): at two
    # billion rows in it (some eight years of 50,000 people signing in 20 times a working
    # day, if a sign-in is one row) that panel reads eight billion. So this is no tight
    # bound, only a backstop against a cross join or a scan of numbers(), sized to keep
    # every panel working on a warehouse of that size; tests/test_access.py fails when a
    # panel reads more than five times sign_in_parts.
    "max_rows_to_read": 10_000_000_000,
    # Rows in an answer (not in subqueries). A panel returns about 1,000 points per series
    # (Grafana's max data points) times a few dozen series; ad-hoc SQL gets a million rows.
    "max_result_rows": 1_000_000,
    # Bytes per query, and for all of the reader's queries at once: a dashboard runs its
    # panels in parallel, and none of them may take the memory the worker's inserts need.
    "max_memory_usage": 4 * 2**30,
    "max_memory_usage_for_user": 8 * 2**30,
    # Over a limit, fail: "break" would show a truncated answer as if it were the whole one.
    "read_overflow_mode": "throw",
    "result_overflow_mode": "throw",
    "timeout_overflow_mode": "throw",
}

# Plain identifiers only: such a name needs no escaping inside backquotes.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_WORD = re.compile(r"[a-z_]+")
_SALT = re.compile(r"[0-9A-Fa-f]{16,128}")
_HEX = re.compile(r"[0-9A-Fa-f]{16,}")


@dataclass(frozen=True)
class Constraint:
    """One setting of the profile: its value and what the reader may change it to."""

    name: str
    value: int | str
    min: int | None  # None for both: the value is fixed (CONST)
    max: int | None

    def sql(self) -> str:
        """The setting as CREATE SETTINGS PROFILE writes it."""
        setting = f"{_identifier(self.name, 'setting')} = {_literal(self.value)}"
        if self.max is None:
            return f"{setting} CONST"
        return f"{setting} MIN {self.min} MAX {self.max}"


def constraints() -> list[Constraint]:
    """The profile's settings, derived from SETTINGS."""
    return [
        Constraint(name, value, 1, value)
        if isinstance(value, int)
        else Constraint(name, value, None, None)
        for name, value in SETTINGS.items()
    ]


def password_hash(password: str, salt: str) -> str:
    """What `IDENTIFIED WITH sha256_hash BY '<hash>' SALT '<salt>'` stores: ClickHouse checks a
    login by SHA-256 of the password followed by the salt, as bytes (UTF-8 here)."""
    return hashlib.sha256((password + salt).encode()).hexdigest()


def reader_statements(
    user: str,
    password: SecretStr | str,
    database: str,
    *,
    salt: str | None = None,
    cluster: str | None = None,
) -> list[str]:
    """The statements that create the reader (or update it: each run sets its limits,
    password and grant again), in order. `salt` is random unless given (for tests). On a
    cluster (PIPELINE_CLICKHOUSE_CLUSTER) they run on every node, and the profile reads with
    `distributed_product_mode = 'global'`: the views filter a Distributed table by a subquery
    over another (sinks/cluster.py)."""
    quoted_user = _identifier(user, "user")
    quoted_database = _identifier(database, "database")
    secret = password.get_secret_value() if isinstance(password, SecretStr) else password
    if not secret:
        raise ValueError(
            f"the reader {user} has an empty password: set PIPELINE_GRAFANA_CLICKHOUSE_PASSWORD"
        )
    # The server makes a 64-hex-digit salt for the passwords it hashes itself; so does this.
    salt = secrets.token_hex(32).upper() if salt is None else salt
    if not _SALT.fullmatch(salt):
        raise ValueError("a salt is 16 to 128 hex digits")
    profile = _identifier(PROFILE, "profile")
    limits = ", ".join(constraint.sql() for constraint in constraints())
    on = ""
    if cluster is not None:
        on = f" {on_cluster(cluster)}"
        limits += ", distributed_product_mode = 'global' CONST"
    # CREATE … IF NOT EXISTS leaves an existing one as it is, so an ALTER follows each. The
    # user is created with its password, never without one, not even for a moment. ALTER
    # SETTINGS PROFILE … SETTINGS and ALTER USER … SETTINGS PROFILE replace the whole list.
    user_definition = (
        f"IDENTIFIED WITH sha256_hash BY '{password_hash(secret, salt)}' SALT '{salt}' "
        f"DEFAULT DATABASE {quoted_database} SETTINGS PROFILE {profile}"
    )
    return [
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {profile}{on} SETTINGS {limits}",
        f"ALTER SETTINGS PROFILE {profile}{on} SETTINGS {limits}",
        f"CREATE USER IF NOT EXISTS {quoted_user}{on} {user_definition}",
        f"ALTER USER {quoted_user}{on} {user_definition}",
        # WITH REPLACE OPTION: SELECT on this database becomes the user's only privilege (a
        # grant left from an earlier database goes), in one statement. CREATE OR REPLACE
        # USER would drop the grant and leave Grafana without access until it is given back.
        f"GRANT{on} SELECT ON {quoted_database}.* TO {quoted_user} WITH REPLACE OPTION",
    ]


class ReaderUnsupported(WarehouseError):
    """The warehouse has no access control (the embedded engine)."""


def grant_reader(warehouse: Warehouse, user: str, password: SecretStr | str, database: str) -> str:
    """Create or update the reader on the warehouse's server; a line that says what it may do.
    The password is in no message: the statements carry its salted hash only, and an error
    from the server is reported without them."""
    statements = reader_statements(user, password, database, cluster=warehouse.cluster)
    path = embedded_path(warehouse.location)
    if path is not None:
        raise ReaderUnsupported(
            f"the embedded warehouse {path} (chDB) has no users, profiles or grants, so the "
            f"read-only user {user} cannot be created there: its statements are for a "
            "ClickHouse server. Point PIPELINE_CLICKHOUSE_DSN at the server Grafana reads."
        )
    # clickhouse-connect logs in as "default" when the DSN names no user.
    own = urlsplit(warehouse.location).username or "default"
    if own == user:
        raise WarehouseError(
            f"the reader {user} is the user the pipeline writes as ({warehouse.location}): its "
            "profile would make the pipeline read-only. Give the reader another name "
            "(PIPELINE_GRAFANA_CLICKHOUSE_USER)."
        )
    for statement in statements:
        try:
            warehouse.client.command(statement)
        except ClickHouseError as exc:
            # The statement's first words name the step; a server message that quotes the
            # statement (a syntax error does) loses the hash and the salt.
            step = " ".join(statement.split()[:3])
            detail = _HEX.sub("***", " ".join(str(exc).split()))
            raise WarehouseError(
                f"cannot create the read-only user {user} on {warehouse.location} ({step} "
                f"failed): {detail}. The pipeline's own user needs the rights to manage "
                f"users and settings profiles, and SELECT on {database}.* WITH GRANT OPTION."
            ) from None
    return f"reader {user}: SELECT on {database}.* only, {describe_limits()}"


def ensure_reader(warehouse: Warehouse, grafana: Grafana) -> str:
    """`pipeline migrate`'s step for the reader Grafana logs in as (PIPELINE_GRAFANA_CLICKHOUSE_*):
    created or updated on a server; on the embedded engine, or without a password, a line that
    says why there is none."""
    if embedded_path(warehouse.location) is not None:
        return (
            f"read-only user {grafana.clickhouse_user}: none, the embedded engine has no users "
            "(on a ClickHouse server, `pipeline migrate` creates it)"
        )
    if not grafana.clickhouse_password.get_secret_value():
        return (
            f"read-only user {grafana.clickhouse_user}: not created, "
            "PIPELINE_GRAFANA_CLICKHOUSE_PASSWORD is unset"
        )
    return grant_reader(
        warehouse, grafana.clickhouse_user, grafana.clickhouse_password, grafana.clickhouse_database
    )


def describe_limits() -> str:
    """The profile's limits in words, for a person."""
    return (
        f"read-only (readonly = {SETTINGS['readonly']}), at most "
        f"{SETTINGS['max_execution_time']} s, {SETTINGS['max_rows_to_read']:,} rows read, "
        f"{SETTINGS['max_result_rows']:,} rows returned and "
        f"{_gib(SETTINGS['max_memory_usage'])} GiB per query "
        f"({_gib(SETTINGS['max_memory_usage_for_user'])} GiB for all at once): "
        f"profile {PROFILE}"
    )


def _identifier(name: str, what: str) -> str:
    """`name` backquoted, if it is a plain identifier (letters, digits, _; up to 64)."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"the {what} name {name!r} is not a plain identifier: use letters, digits and "
            "_ (not first a digit), at most 64 characters"
        )
    return f"`{name}`"


def _literal(value: int | str) -> str:
    """A setting's value as SQL: an integer, or a lower-case word in quotes."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"a setting's value is an integer or a word, got {value!r}")
    if isinstance(value, int):
        return str(value)
    if not _WORD.fullmatch(value):
        raise ValueError(f"a setting's text value is a lower-case word, got {value!r}")
    return f"'{value}'"


def _gib(value: int | str) -> str:
    return f"{int(value) / 2**30:g}"
