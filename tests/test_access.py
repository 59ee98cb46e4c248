"""The read-only reader (pipeline/sinks/access.py) on the real engine.

The embedded engine has no users or grants, so the reader is checked in two halves: its
statements by ClickHouse's own parser (formatQuery), and its profile by loading the same
settings and constraints into the engine from a users.xml (chDB's config file) and switching
a connection to that profile. On that connection every Grafana query runs over a filled
warehouse, and writes, raised limits and removed limits are refused.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_http import ClickHouseHttp
from commands import pipeline_cli
from pydantic import SecretStr
from warehouse_fill import fill, migrated, simulation

from pipeline.grafana import check
from pipeline.grafana.alerts import rule_groups
from pipeline.grafana.dashboards import dashboards
from pipeline.grafana.macros import render_query
from pipeline.sinks import access
from pipeline.sinks.warehouse import Warehouse, WarehouseError

USERS, WEEKS, SEED = 80, 12, 7
# Quotes, a backslash, a newline, a comment and a semicolon: hashed, never pasted.
PASSWORD = 'it\'s \\ "not"\n-- pasted; DROP USER default'
# Pieces of PASSWORD no message has any other reason to hold: the last two survive any
# quoting or escaping of the whole (repr, JSON, SQL), and each end of the password is there
# when the other is cut off. Not "it's" (the engine's errors say "it's necessary to have"),
# nor "DROP USER default" (a name refused below is "x; DROP USER default").
PASSWORD_PIECES = ("it's \\", '\\ "not"', '"not"', "-- pasted", "pasted; DROP")
SALT = "0123456789ABCDEF" * 4
IDENTIFIED = re.compile(r"BY '([0-9a-f]{64})' SALT '([0-9A-Fa-f]+)'")
READONLY, CONSTRAINT_VIOLATION = 164, 452
# The most times one dashboard query may read sign_in_parts: what max_rows_to_read is
# sized on (access.SETTINGS), for a warehouse of up to SIGN_IN_PARTS rows in that table.
SCANS, SIGN_IN_PARTS = 5, 2_000_000_000


def hashes_and_salts(statements: Sequence[str]) -> list[str]:
    """The salted hashes and salts that `statements` (access.reader_statements) carry."""
    found = [secret for statement in statements for secret in IDENTIFIED.findall(statement)]
    assert found, "no IDENTIFIED … BY … SALT … in the statements"
    return [value for pair in found for value in pair]


def leaks(message: str, statements: Sequence[str] = ()) -> list[str]:
    """What of the password, or of the salted hash and the salt that `statements` carry, is in
    `message`: PASSWORD or a piece of it, and 16 hex digits in a row of a hash or a salt
    (grant_reader masks any such run), whatever their case."""
    found = [piece for piece in (PASSWORD, *PASSWORD_PIECES) if piece in message]
    text = message.lower()
    for secret in hashes_and_salts(statements) if statements else ():
        runs = {secret[i : i + 16].lower() for i in range(len(secret) - 15)}
        found += sorted(run for run in runs if run in text)[:1]
    return found


def recording_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements grant_reader makes from here on (with their random salt), as it makes
    them: access.reader_statements, recorded."""
    made: list[str] = []
    real = access.reader_statements

    def record(*args: object, **kwargs: object) -> list[str]:
        statements = real(*args, **kwargs)  # type: ignore[arg-type]
        made.extend(statements)
        return statements

    monkeypatch.setattr(access, "reader_statements", record)
    return made


@dataclass
class Reader:
    warehouse: Warehouse  # over a connection opened here (chDB engine options of the test's)
    path: Path
    config: Path
    end: datetime
    rows: dict[str, int]  # rows per table, as filled


def engine_config(base: Path) -> Path:
    """chDB's config: the default user (the writer) and the reader's profile, its values and
    constraints rendered from access.constraints(), as a server's users.xml would hold it."""
    root = ET.Element("clickhouse")
    profiles = ET.SubElement(root, "profiles")
    ET.SubElement(profiles, "default")
    profile = ET.SubElement(profiles, access.PROFILE)
    limits = ET.Element("constraints")
    for constraint in access.constraints():
        ET.SubElement(profile, constraint.name).text = str(constraint.value)
        bound = ET.SubElement(limits, constraint.name)
        if constraint.max is None:
            ET.SubElement(bound, "const")
        else:
            ET.SubElement(bound, "min").text = str(constraint.min)
            ET.SubElement(bound, "max").text = str(constraint.max)
    profile.append(limits)
    default = ET.SubElement(ET.SubElement(root, "users"), "default")
    ET.SubElement(default, "no_password")
    ET.SubElement(default, "profile").text = "default"
    ET.SubElement(ET.SubElement(default, "networks"), "ip").text = "::/0"
    ET.SubElement(ET.SubElement(root, "quotas"), "default")
    users = base / "users.xml"
    ET.ElementTree(root).write(users)
    config = base / "config.xml"
    # With a query log, as a server keeps one (chDB keeps none unless its config says so).
    config.write_text(
        f"<clickhouse><user_directories><users_xml><path>{users}</path></users_xml>"
        "</user_directories><query_log><database>system</database><table>query_log</table>"
        "</query_log></clickhouse>"
    )
    return config


def open_reader(path: Path, config: Path) -> Client:
    """A connection to the engine at `path` switched to the reader's profile. chDB applies the
    profile's constraints on SET profile but keeps its own values for the settings, so those
    are set too (within the constraints, as the reader could)."""
    client = clickhouse_connect.get_client(
        dsn=f"chdb://{path}", chdb_options={"config-file": str(config)}
    )
    client.command(f"SET profile = '{access.PROFILE}'")
    for name, value in access.SETTINGS.items():
        client.set_client_setting(name, value)
    return client


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    base = tmp_path_factory.mktemp("access")
    out = simulation(base, users=USERS, weeks=WEEKS, seed=SEED)
    path = base / "wh"
    writer = migrated(path)
    try:
        fill(writer, out)
        end = check.data_end(writer)
        rows = dict(
            writer.query(
                "SELECT name, total_rows FROM system.tables "
                "WHERE database = currentDatabase() AND total_rows IS NOT NULL"
            )
        )
    finally:  # the engine starts again below, with the reader's profile in its config
        writer.close()
    config = engine_config(base)
    client = open_reader(path, config)
    try:
        yield Reader(Warehouse.over(client, f"chdb://{path}"), path, config, end, rows)
    finally:
        client.close()


def code_of(statement: str, client: Client) -> int | None:
    """The error code of running `statement` (a SETTINGS clause in the SQL, not the driver's
    settings, so the engine alone decides); None when it runs. A SELECT runs as a query: after
    an error in mid-answer, chDB gives the next query on a handle used by command() nothing."""
    try:
        if statement.startswith("SELECT"):
            client.query(statement)
        else:
            client.command(statement)
    except DatabaseError as exc:
        return exc.code
    return None


def formatted(reader: Reader, statement: str) -> str:
    """The statement as ClickHouse's parser reads it (an error if it does not parse)."""
    return reader.warehouse.query("SELECT formatQuery({q:String})", {"q": statement})[0][0]


# -- the statements ------------------------------------------------------------------------------


def test_every_statement_parses_and_carries_the_salted_hash_not_the_password(
    reader: Reader,
) -> None:
    statements = access.reader_statements("grafana_reader", PASSWORD, "default", salt=SALT)
    # The hash as the engine computes it: SHA-256 of the password's bytes followed by the salt.
    (digest,) = reader.warehouse.query(
        "SELECT lower(hex(SHA256(concat({p:String}, {s:String}))))", {"p": PASSWORD, "s": SALT}
    )[0]
    parsed = [formatted(reader, statement) for statement in statements]
    for text in statements + parsed:
        for piece in (PASSWORD, "it's", "pasted", "DROP USER"):
            assert piece not in text
    profile, alter_profile, user, alter_user, grant = parsed
    limits = ", ".join(c.sql().replace("`", "") for c in access.constraints())
    assert profile == f"CREATE SETTINGS PROFILE IF NOT EXISTS `{access.PROFILE}` SETTINGS {limits}"
    assert alter_profile.endswith(f"DROP ALL SETTINGS, DROP ALL PROFILES, ADD SETTINGS {limits}")
    identified = f"IDENTIFIED WITH sha256_hash BY '{digest}' SALT '{SALT}' DEFAULT DATABASE default"
    assert user == (
        f"CREATE USER IF NOT EXISTS grafana_reader {identified} SETTINGS PROFILE `{access.PROFILE}`"
    )
    assert alter_user == (
        f"ALTER USER grafana_reader {identified} "
        f"DROP ALL SETTINGS, DROP ALL PROFILES, ADD PROFILE `{access.PROFILE}`"
    )
    assert grant == "GRANT SELECT ON default.* TO grafana_reader WITH REPLACE OPTION"


def test_on_a_cluster_every_statement_runs_on_every_node_and_reads_distributed_globally(
    reader: Reader,
) -> None:
    single = access.reader_statements("grafana_reader", PASSWORD, "default", salt=SALT)
    clustered = access.reader_statements(
        "grafana_reader", PASSWORD, "default", salt=SALT, cluster="pipeline-cluster"
    )
    parsed = [formatted(reader, statement) for statement in clustered]
    for text in parsed:
        assert " ON CLUSTER `pipeline-cluster` " in text, text
    profile, alter_profile = parsed[:2]
    for text in (profile, alter_profile):
        assert text.endswith("distributed_product_mode = 'global' CONST"), text
    # the same statements otherwise
    for one, on_cluster in zip(single, clustered, strict=True):
        assert (
            on_cluster.replace(" ON CLUSTER `pipeline-cluster`", "").replace(
                ", distributed_product_mode = 'global' CONST", ""
            )
            == one
        )


def test_the_profile_has_every_limit_bounded_and_the_rest_fixed() -> None:
    by_name = {c.name: c for c in access.constraints()}
    assert set(by_name) == set(access.SETTINGS)
    assert by_name["readonly"].value == 2
    for name in ("max_execution_time", "max_rows_to_read", "max_result_rows", "max_memory_usage"):
        limit = by_name[name]
        # 0 is "no limit" for each: the floor refuses it, the ceiling refuses a raise
        assert (limit.min, limit.max) == (1, limit.value), name
    for name in ("read_overflow_mode", "result_overflow_mode", "timeout_overflow_mode"):
        assert (by_name[name].value, by_name[name].max) == ("throw", None), name
    # Grafana's default 60 s query timeout reaches ClickHouse as max_execution_time = 65
    assert access.SETTINGS["max_execution_time"] >= 65
    assert access.SETTINGS["max_rows_to_read"] >= SCANS * SIGN_IN_PARTS


def test_a_run_with_a_new_password_updates_the_user() -> None:
    first = access.reader_statements("grafana_reader", SecretStr("first"), "default")
    second = access.reader_statements("grafana_reader", SecretStr("second"), "default")
    # the profile and the grant are the same; the user gets a new hash, with a new salt
    assert first[:2] == second[:2] and first[4] == second[4]
    assert first[3].startswith("ALTER USER `grafana_reader` IDENTIFIED WITH sha256_hash BY '")
    salts = [statements[3].split("SALT '")[1].split("'")[0] for statements in (first, second)]
    assert len(salts[0]) == 64 and salts[0] != salts[1]  # as random as the server's own
    for password, salt, statements in zip(("first", "second"), salts, (first, second), strict=True):
        # ALTER USER (not only CREATE USER IF NOT EXISTS) carries the new password's hash
        assert f"BY '{access.password_hash(password, salt)}' SALT '{salt}'" in statements[3]
        assert statements[2].replace("CREATE USER IF NOT EXISTS", "ALTER USER") == statements[3]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "grafana reader",
        "grafana`reader",
        "grafana;reader",
        "x; DROP USER default",
        "1reader",
        "réader",
        "a" * 65,
        "grafana_reader\n",
    ],
)
def test_a_name_that_is_not_an_identifier_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain identifier") as user:
        access.reader_statements(name, PASSWORD, "default", salt=SALT)
    with pytest.raises(ValueError, match="not a plain identifier") as database:
        access.reader_statements("grafana_reader", PASSWORD, name, salt=SALT)
    # what the statements would have carried, had the names been plain
    carried = access.reader_statements("grafana_reader", PASSWORD, "default", salt=SALT)
    for message in (str(user.value), str(database.value)):
        assert "database" in message or "user" in message
        assert leaks(message, carried) == []


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="PIPELINE_GRAFANA_CLICKHOUSE_PASSWORD"):
        access.reader_statements("grafana_reader", SecretStr(""), "default")


def test_the_query_log_keeps_the_statements_without_the_hash_or_the_salt(reader: Reader) -> None:
    """The engine logs each statement as it runs it (here: refused, chDB has no access
    storage), with the password clause cut to `IDENTIFIED WITH sha256_password`."""
    statements = access.reader_statements("query_log_reader", PASSWORD, "default", salt=SALT)
    client = clickhouse_connect.get_client(  # the writer's session: no profile
        dsn=f"chdb://{reader.path}", chdb_options={"config-file": str(reader.config)}
    )
    try:
        for statement in statements:
            with pytest.raises(DatabaseError):
                client.command(statement, settings={"log_comment": "reader statement"})
        client.command("SYSTEM FLUSH LOGS")
        logged = client.query(
            "SELECT query FROM system.query_log WHERE log_comment = 'reader statement' "
            "AND type = 'ExceptionBeforeStart' ORDER BY event_time_microseconds"
        ).result_rows
    finally:
        client.close()
    texts = [text for (text,) in logged]
    assert len(texts) == len(statements), texts
    masked = "IDENTIFIED WITH sha256_password DEFAULT DATABASE default"
    assert [text.startswith(("CREATE USER", "ALTER USER")) for text in texts] == [
        statement.startswith(("CREATE USER", "ALTER USER")) for statement in statements
    ]
    assert [masked in text for text in texts] == ["IDENTIFIED" in s for s in statements]
    for text in texts:
        assert leaks(text, statements) == [], text


# -- the profile on the engine ---------------------------------------------------------------------


def test_the_profile_is_in_effect_on_the_readers_connection(reader: Reader) -> None:
    names = list(access.SETTINGS)
    values = reader.warehouse.query(
        "SELECT " + ", ".join(f"getSetting({{n{i}:String}})" for i in range(len(names))),
        {f"n{i}": name for i, name in enumerate(names)},
    )[0]
    assert dict(zip(names, values, strict=True)) == access.SETTINGS


def test_the_reader_runs_every_grafana_query(reader: Reader) -> None:
    found = check.queries(dashboards(), rule_groups())
    outcomes = check.run(
        reader.warehouse, found, start=reader.end - timedelta(days=90), end=reader.end
    )
    assert [o.line() for o in outcomes if not o.ok] == []
    assert len(outcomes) == len(found) > 35
    assert sum(o.rows for o in outcomes) > 0


def test_no_grafana_query_reads_sign_in_parts_more_than_max_rows_to_read_allows(
    reader: Reader,
) -> None:
    end = reader.end
    reads: dict[str, int] = {}
    for query in check.queries(dashboards(), rule_groups()):
        begin = end - (query.window or timedelta(days=365))
        sql = render_query(
            query.sql,
            start=begin,
            end=end,
            interval_s=max(1.0, (end - begin).total_seconds() / check.MAX_DATA_POINTS),
            variables=None if query.shape == "alert" else check.DEFAULT_VARIABLES,
        )
        estimate = reader.warehouse.query(f"EXPLAIN ESTIMATE {sql}")
        reads[query.where] = sum(row[3] for row in estimate)  # database, table, parts, rows
    heaviest = max(reads.values())
    # the heaviest reads all of sign_in_parts at least once (whatever the time range) ...
    assert heaviest >= reader.rows["sign_in_parts"]
    # ... and, with the small tables it joins, no more than SCANS times
    assert heaviest <= SCANS * reader.rows["sign_in_parts"], reads


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO plan_targets SELECT * FROM plan_targets",
        "ALTER TABLE plan_targets ADD COLUMN note String",
        "ALTER TABLE roster DELETE WHERE 1",
        "DELETE FROM roster WHERE 1",
        "CREATE TABLE reader_scratch (x UInt8) ENGINE = Memory",
        "CREATE VIEW reader_view AS SELECT 1",
        "DROP TABLE plan_targets",
        "TRUNCATE TABLE sign_in_parts",
        "RENAME TABLE roster TO roster_old",
    ],
)
def test_a_write_fails_as_readonly(reader: Reader, statement: str) -> None:
    assert code_of(statement, reader.warehouse.client) == READONLY
    tables = dict(
        reader.warehouse.query(
            "SELECT name, total_rows FROM system.tables "
            "WHERE database = currentDatabase() AND total_rows IS NOT NULL"
        )
    )
    assert tables == reader.rows
    columns = reader.warehouse.query(
        "SELECT name FROM system.columns "
        "WHERE database = currentDatabase() AND table = 'plan_targets'"
    )
    assert [c for (c,) in columns] == ["phase", "metric", "target"]


def test_the_reader_cannot_raise_or_remove_a_limit(reader: Reader) -> None:
    client = reader.warehouse.client
    for limit in access.constraints():
        name = limit.name
        if limit.max is None:
            refused = [f"'{'break' if limit.value == 'throw' else 'throw'}'"]
        else:
            refused = [str(limit.max + 1), "0"]
        for value in refused:
            # the engine refuses a change of readonly itself before any constraint is read
            expected = READONLY if name == "readonly" else CONSTRAINT_VIOLATION
            assert code_of(f"SELECT 1 SETTINGS {name} = {value}", client) == expected, name
            assert code_of(f"SET {name} = {value}", client) == expected, name
    # what Grafana sends fits, and the refused SETs left the profile as it was
    grafana = "SELECT getSetting('max_execution_time') SETTINGS max_execution_time = 65"
    assert reader.warehouse.query(grafana) == [(65,)]
    assert reader.warehouse.query("SELECT getSetting('max_rows_to_read')") == [
        (access.SETTINGS["max_rows_to_read"],)
    ]


def test_a_lowered_limit_holds(reader: Reader) -> None:
    client = reader.warehouse.client
    assert len(reader.warehouse.query("SELECT number FROM numbers(10)")) == 10
    assert code_of("SELECT number FROM numbers(10) SETTINGS max_result_rows = 5", client) == 396
    rows = reader.rows["sign_in_parts"]
    # NOT ignore(*) reads every row (count() alone is answered from the parts' metadata)
    every_row = "SELECT count() AS n FROM sign_in_parts WHERE NOT ignore(*)"
    assert reader.warehouse.query(every_row) == [(rows,)]
    lowered = f"{every_row} SETTINGS max_rows_to_read = {rows // 2}"
    assert code_of(lowered, client) == 158  # TOO_MANY_ROWS


def test_switching_profile_does_not_shed_the_constraints(reader: Reader) -> None:
    client = open_reader(reader.path, reader.config)  # its own session: this one changes it
    try:
        client.command("SET profile = 'default'")
        assert code_of("SET max_rows_to_read = 0", client) == CONSTRAINT_VIOLATION
        assert code_of("SET readonly = 0", client) == READONLY
        assert code_of("DROP TABLE plan_targets", client) == READONLY
    finally:
        client.close()


# -- grant_reader --------------------------------------------------------------------------------


def test_grant_reader_refuses_the_embedded_engine_without_the_password(
    reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = recording_statements(monkeypatch)
    with pytest.raises(access.ReaderUnsupported) as refused:
        access.grant_reader(reader.warehouse, "grafana_reader", SecretStr(PASSWORD), "default")
    assert isinstance(refused.value, WarehouseError)
    message = str(refused.value)
    assert "chDB" in message and "server" in message and "grafana_reader" in message
    assert leaks(message, made) == []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHttp]:
    """A ClickHouse HTTP interface (the real engine behind it, with its access control off):
    the path grant_reader takes to a server, up to the server's answer."""
    with ClickHouseHttp(tmp_path_factory.mktemp("server") / "data") as started:
        yield started


class ServerWithRightsUpTo:
    """The client of a warehouse on the stand-in server, as a server would answer one with
    the rights to run the reader's statements before `step` (those are answered as done,
    unsent): the statement of `step` reaches the engine, which refuses it (chDB has no
    access storage). With `unknown`, a word of the statement is one the server does not
    know, as on a server of another version: it answers with a syntax error quoting the
    statement from that word on (the hash and the salt follow it)."""

    def __init__(self, client: Client, step: str, unknown: tuple[str, str] | None) -> None:
        self._client, self._step, self._unknown = client, step, unknown
        self.sent: list[str] = []

    def command(self, statement: str, *args: object, **kwargs: object) -> object:
        if not statement.startswith(self._step):
            return None
        if self._unknown is not None:
            statement = statement.replace(*self._unknown)
        self.sent.append(statement)
        return self._client.command(statement, *args, **kwargs)

    def close(self) -> None:
        self._client.close()


# Each step grant_reader names, the statement it runs, and the word a server may not know.
SERVER_STEPS = {
    "CREATE SETTINGS PROFILE": ("CREATE SETTINGS PROFILE", None),
    "ALTER SETTINGS PROFILE": ("ALTER SETTINGS PROFILE", None),
    "CREATE USER IF": ("CREATE USER", None),
    "ALTER USER `grafana_reader`": ("ALTER USER", None),
    "GRANT SELECT ON": ("GRANT", None),
    "CREATE USER IF (syntax error)": ("CREATE USER", ("sha256_hash", "sha256_hashed")),
    "ALTER USER `grafana_reader` (syntax error)": ("ALTER USER", (" SALT '", " SALTED '")),
}


@pytest.mark.parametrize("failing", list(SERVER_STEPS))
def test_grant_reader_reports_a_server_error_without_the_password_or_hash(
    server: ClickHouseHttp, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    starts, unknown = SERVER_STEPS[failing]
    made = recording_statements(monkeypatch)
    with Warehouse(f"http://pipeline:writer-secret@127.0.0.1:{server.port}") as warehouse:
        client = ServerWithRightsUpTo(warehouse.client, starts, unknown)
        monkeypatch.setattr(warehouse, "client", client)
        with pytest.raises(WarehouseError) as failed:
            access.grant_reader(warehouse, "grafana_reader", PASSWORD, "default")
    message = str(failed.value)
    (sent,) = client.sent  # the engine refused the first statement it got
    # The message names the step and the rights, and keeps the engine's reason.
    step = failing.removesuffix(" (syntax error)")
    assert "cannot create the read-only user grafana_reader on http://" in message
    assert f"({step} failed)" in message
    assert "manage users and settings profiles" in message
    assert ("Syntax error" if unknown else "Code: ") in message
    assert leaks(message, made) == []
    assert "writer-secret" not in message
    if unknown is not None:  # the engine's own answer did quote the hash and the salt
        assert leaks(_engine_error(server, sent), made) != []


def _engine_error(server: ClickHouseHttp, statement: str) -> str:
    """The stand-in server's (the engine's) own answer to `statement`."""
    with Warehouse(server.dsn) as warehouse:
        try:
            warehouse.client.command(statement)
        except DatabaseError as exc:
            return str(exc)
    raise AssertionError(f"the engine ran {statement[:40]}…")


def test_grant_reader_refuses_to_make_the_pipelines_own_user_the_reader(
    server: ClickHouseHttp,
) -> None:
    for dsn, user in [
        (f"http://pipeline:writer-secret@127.0.0.1:{server.port}", "pipeline"),
        (server.dsn, "default"),  # no user in the DSN: clickhouse-connect logs in as default
    ]:
        with (
            Warehouse(dsn) as warehouse,
            pytest.raises(WarehouseError, match="would make the pipeline read-only"),
        ):
            access.grant_reader(warehouse, user, PASSWORD, "default")


def test_migrate_says_why_there_is_no_reader(tmp_path: Path) -> None:
    env = {
        "PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'wh'}",
        "PIPELINE_GRAFANA_CLICKHOUSE_PASSWORD": PASSWORD,
    }
    ran = pipeline_cli("migrate", env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "read-only user grafana_reader: none, the embedded engine has no users" in ran.stdout
    assert PASSWORD not in ran.stdout + ran.stderr
