"""Pseudonymized storage (PIPELINE_PSEUDONYMIZE_KEY): the warehouse holds no login, name, IP
or ticket text, and every metric still equals the simulator's truth."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from commands import pipeline_cli
from warehouse_fill import fill, migrated, simulation

from pipeline.aggregate.batch import TABLE_COLUMNS, BatchRules
from pipeline.aggregate.privacy import Pseudonymizer
from pipeline.model import AuthEvent, HelpdeskTicket
from pipeline.plan import load_plan, save_plan
from pipeline.report.weekly import weekly_metrics
from pipeline.settings import Settings
from pipeline.sinks.warehouse import RETAINED, USER_TABLES
from pipeline.sources.registry import PARSERS

KEY = b"test-only key, 32 bytes long...."
FIXTURES = Path(__file__).parent / "fixtures"


def test_a_pseudonym_is_stable_keyed_and_tells_nothing() -> None:
    one, other = Pseudonymizer(KEY), Pseudonymizer(KEY[::-1])
    assert one("ana@example.com") == Pseudonymizer(KEY)("ana@example.com")
    assert one("ana@example.com") != one("bob@example.com")
    assert one("ana@example.com") != other("ana@example.com")
    assert re.fullmatch(r"u_[0-9a-f]{32}", one("ana@example.com"))
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(b"short")


def test_an_event_keeps_its_facts_and_loses_who_and_where() -> None:
    pseudonymize = Pseudonymizer(KEY)
    okta = (FIXTURES / "okta" / "oie_password_success.json").read_bytes()
    event = PARSERS["okta"](okta)
    assert isinstance(event, AuthEvent) and event.user and event.src_ip
    hidden = pseudonymize.event(event)
    assert hidden.user == pseudonymize(event.user) and hidden.src_ip is None
    assert hidden.model_dump(exclude={"user", "src_ip"}) == event.model_dump(
        exclude={"user", "src_ip"}
    )
    ticket = PARSERS["tickets"](
        (FIXTURES / "tickets" / "servicenow_incident_full.json").read_bytes()
    )
    assert isinstance(ticket, HelpdeskTicket) and ticket.summary
    hidden_ticket = pseudonymize.event(ticket)
    assert hidden_ticket.summary == "" and hidden_ticket.scenario == ticket.scenario


def test_the_key_comes_from_the_environment_or_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings().pseudonymization_key() is None
    secret = tmp_path / "key"
    secret.write_bytes(KEY + b"\n")
    monkeypatch.setenv("PIPELINE_PSEUDONYMIZE_KEY_FILE", str(secret))
    assert Settings().pseudonymization_key() == KEY
    assert BatchRules.from_settings(Settings()).pseudonymize is not None
    monkeypatch.setenv("PIPELINE_PSEUDONYMIZE_KEY", "from the variable, 16+ bytes")
    assert Settings().pseudonymization_key() == b"from the variable, 16+ bytes"
    assert "16+" not in repr(Settings())


def test_a_pseudonymized_warehouse_holds_no_identifier_and_the_same_metrics(
    tmp_path: Path,
) -> None:
    out = simulation(tmp_path, users=150, weeks=30, seed=11)
    roster = [json.loads(line) for line in (out / "roster.ndjson").read_text().splitlines()]
    rules = BatchRules.from_settings(Settings())
    rules = BatchRules(rules.sources, rules.duo_fronted_apps, rules.limits, Pseudonymizer(KEY))
    # a dead letter that names someone: its bytes stay on the topic, not in the warehouse
    leak = {"okta": [b'{"actor": {"alternateId": "' + roster[0]["user"].encode() + b'"']}
    warehouse = migrated(tmp_path / "wh")
    try:
        fill(warehouse, out, extra=leak, rules=rules)
        assert weekly_metrics(warehouse, load_plan()) == json.loads(
            (out / "truth.json").read_text()
        )
        names = {u["user"].lower() for u in roster} | {u["display_name"] for u in roster}
        names |= {u["user"].split("@")[0] for u in roster}  # the local part alone, too
        # toString(tuple(*)) is the whole row as text, strings quoted and escaped
        needles = sorted(names | {n.replace("'", "\\'") for n in names})
        scanned = 0
        for table in TABLE_COLUMNS:
            scanned += warehouse.query(f"SELECT count() FROM {table}")[0][0]
            for start in range(0, len(needles), 200):
                hits = warehouse.query(
                    f"SELECT toString(tuple(*)) FROM {table} WHERE "
                    "multiSearchAnyCaseInsensitive(toString(tuple(*)), {n:Array(String)}) LIMIT 3",
                    {"n": needles[start : start + 200]},
                )
                assert hits == [], (table, hits)
        assert scanned > 10_000
        (letters,) = warehouse.query("SELECT count(), sum(length(raw)) FROM dead_letters")
        assert letters == (1, 0)
        (users,) = warehouse.query("SELECT uniqExact(user) FROM roster FINAL")[0]
        assert users == len(roster)
        assert warehouse.query("SELECT count() FROM auth_events WHERE src_ip IS NOT NULL") == [(0,)]
    finally:
        warehouse.close()


def test_forget_user_deletes_one_users_rows_by_login_and_retention_deletes_old_rows(
    tmp_path: Path,
) -> None:
    # Retention counts from the engine's clock (its TTL), so this rollout ends there, last week,
    # whatever the date: not on the example plan's fixed dates.
    warehouse = migrated(tmp_path / "wh")
    try:
        engine_now = warehouse.query("SELECT now64(6, 'UTC')")[0][0].replace(tzinfo=UTC)
        python_now = datetime.now(UTC)
    finally:
        warehouse.close()
    plan_file = tmp_path / "plan.yaml"
    save_plan(load_plan().ending_before(engine_now.date(), 30), plan_file)
    out = simulation(tmp_path, users=60, weeks=30, seed=12, plan_file=plan_file)
    login = json.loads((out / "roster.ndjson").read_text().splitlines()[3])["user"]
    env = {
        "PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'wh'}",
        "PIPELINE_PSEUDONYMIZE_KEY": KEY.decode(),
    }
    pseudonym = Pseudonymizer(KEY)(login.lower())
    counts = "SELECT count(), countIf(user = {u:String}) FROM {t:Identifier}"

    warehouse = migrated(tmp_path / "wh")
    try:
        rules = BatchRules.from_settings(Settings(pseudonymize_key=KEY.decode()))
        # under faketime the engine keeps the real clock: its "now" is not ahead for the limits
        ahead = max(engine_now - python_now, timedelta(0)) + rules.limits.max_future
        rules = dataclasses.replace(
            rules, limits=dataclasses.replace(rules.limits, max_future=ahead)
        )
        fill(warehouse, out, rules=rules)
        before = {t: warehouse.query(counts, {"u": pseudonym, "t": t})[0] for t in USER_TABLES}
    finally:
        warehouse.close()
    assert before["roster"][1] == 1 and before["auth_events"][1] > 0

    forgotten = pipeline_cli("forget-user", login.upper(), env=env)
    assert forgotten.returncode == 0, forgotten.stderr
    assert f"auth_events: {before['auth_events'][1]:,} rows deleted" in forgotten.stdout
    assert login not in forgotten.stdout + forgotten.stderr

    warehouse = migrated(tmp_path / "wh")
    try:
        after = {t: warehouse.query(counts, {"u": pseudonym, "t": t})[0] for t in USER_TABLES}
        for table in USER_TABLES:
            assert after[table] == (before[table][0] - before[table][1], 0), table

        # Retention: sign-ins, tickets and dead letters older than 120 days go at the next
        # merge; enrollment history and the roster stay (the metrics need them).
        enrollments = warehouse.query("SELECT count() FROM enrollment_events")
        sign_ins = warehouse.query("SELECT count() FROM auth_events")[0][0]
        assert len(warehouse.apply_retention(120)) == len(RETAINED)
        assert warehouse.apply_retention(120) == []  # already so: nothing to rewrite
        for table in RETAINED:
            warehouse.client.command(f"OPTIMIZE TABLE {table} FINAL")
        for table, column in RETAINED.items():
            older = warehouse.query(
                f"SELECT count() FROM {table} WHERE {column} < now64(6) - toIntervalDay(121)"
            )
            assert older == [(0,)], table
        assert 0 < warehouse.query("SELECT count() FROM auth_events")[0][0] < sign_ins
        assert warehouse.query("SELECT count() FROM enrollment_events") == enrollments
        assert warehouse.apply_retention(None) == [f"{t}: kept without limit" for t in RETAINED]
    finally:
        warehouse.close()


def test_forget_user_without_pseudonyms_leaves_no_trace_in_any_table(tmp_path: Path) -> None:
    out = simulation(tmp_path, users=40, weeks=6, seed=13)
    login = json.loads((out / "roster.ndjson").read_text().splitlines()[2])["user"]
    # a dead letter that names them: without pseudonyms its head of bytes is kept
    leak = {"okta": [b'{"actor": {"alternateId": "' + login.upper().encode() + b'"']}
    warehouse = migrated(tmp_path / "wh")
    try:
        fill(warehouse, out, extra=leak)
        assert warehouse.query("SELECT count() FROM dead_letters") == [(1,)]
    finally:
        warehouse.close()
    env = {"PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'wh'}"}
    forgotten = pipeline_cli("forget-user", login, env=env)
    assert forgotten.returncode == 0, forgotten.stderr
    assert "dead_letters: 1 rows deleted" in forgotten.stdout
    warehouse = migrated(tmp_path / "wh")
    try:
        for table in TABLE_COLUMNS:
            hits = warehouse.query(
                f"SELECT count() FROM {table} "
                "WHERE positionCaseInsensitive(toString(tuple(*)), {u:String}) > 0",
                {"u": login},
            )
            assert hits == [(0,)], table
        assert warehouse.query("SELECT count() FROM auth_events")[0][0] > 0  # others stay
    finally:
        warehouse.close()
