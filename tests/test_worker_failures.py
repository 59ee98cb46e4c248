"""The worker's failure modes, through the real broker and the real engine: what the engine
refuses, what a parser raises, a backfill of years in one batch, a stop while the warehouse is
away, and migrations and workers started at once. None may stall the worker or lose an event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import clickhouse_connect
from clickhouse_http import ClickHouseHttp
from streaming import GROUP, catch_up, worker_env
from warehouse_fill import migrated

from pipeline.aggregate.batch import BatchRules, RawMessage, build_batch
from pipeline.runtime.broker import BufferedProducer, create_topics, free_port
from pipeline.runtime.lag import GroupLag
from pipeline.runtime.worker import WorkerProcess, migrate_warehouse
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse
from pipeline.sinks.writer import error_kind

FIXTURES = Path(__file__).parent / "fixtures"
TOPICS = Settings().topics
ONE_OF_EACH = {
    TOPICS.okta: "okta/oie_password_success.json",
    TOPICS.entra: "entra/eh_signin_passkey_synced.json",
    TOPICS.ping: "ping/p1_assertion_synced_passkey.json",
    TOPICS.duo: "duo/auth_push_success.json",
    TOPICS.tickets: "tickets/servicenow_incident_full.json",
}
REFUSED_ID = "refused-by-the-engine"
# `pipeline worker` with a parser bug: the Entra parser raises on records marked "parser-bug".
BUGGY_WORKER = [
    sys.executable,
    "-c",
    "import sys\n"
    "import pipeline.sources.entra as entra\n"
    "decode = entra.decode\n"
    "def buggy(raw, into):\n"
    "    if b'parser-bug' in bytes(raw):\n"
    "        return 1 // 0\n"
    "    return decode(raw, into)\n"
    "entra.decode = buggy\n"
    "from pipeline.cli import main\n"
    "sys.exit(main(['worker']))\n",
]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def okta_at(uuid: str, published: datetime) -> bytes:
    event = fixture(ONE_OF_EACH[TOPICS.okta]) | {"uuid": uuid, "published": published.isoformat()}
    return json.dumps(event).encode()


def send(bootstrap: str, messages: list[tuple[str, bytes]]) -> None:
    create_topics(bootstrap, [*TOPICS.inputs(), TOPICS.dead_letter], TOPICS.partitions)
    producer = BufferedProducer(bootstrap)
    for topic, value in messages:
        producer.send(topic, None, value)
    producer.close()


def test_one_insert_of_a_batch_spanning_110_months_is_stored(tmp_path: Path) -> None:
    # The engine refuses over 100 partitions (months) per insert by default (Code 252)
    months = [datetime(2010 + m // 12, m % 12 + 1, 3, 12, tzinfo=UTC) for m in range(110)]
    messages = [
        RawMessage(TOPICS.okta, 0, n, None, okta_at(f"backfill-{n}", at))
        for n, at in enumerate(months)
    ]
    batch = build_batch(messages, BatchRules.from_settings(Settings()))
    assert len(batch.rows["auth_events"]) == 110 and not batch.dead_letters
    warehouse = migrated(tmp_path / "wh")
    try:
        warehouse.write(batch)  # one insert per table
        assert warehouse.query("SELECT uniqExact(toYYYYMM(time)) FROM auth_events") == [(110,)]
    finally:
        warehouse.close()


def test_write_errors_are_told_apart_as_the_engine_and_the_client_raise_them(
    tmp_path: Path,
) -> None:
    def raised(write: Callable[[], object]) -> Exception:
        try:
            write()
        except Exception as exc:  # what the engine or the client raised, as the worker sees it
            return exc
        raise AssertionError("no error")

    warehouse = migrated(tmp_path / "wh")
    try:
        client = warehouse.client
        client.command(
            "CREATE TABLE t (x UInt8, d DateTime, CONSTRAINT c CHECK x != 7) "
            "ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY x"
        )
        at = datetime(2020, 1, 1)
        months = [(1, datetime(2000 + m // 12, m % 12 + 1, 1)) for m in range(101)]
        kinds = {
            "constraint": raised(lambda: client.insert("t", [(7, at)], column_names=["x", "d"])),
            "out of range": raised(
                lambda: client.insert("t", [(300, at)], column_names=["x", "d"])
            ),
            "months": raised(lambda: client.insert("t", months, column_names=["x", "d"])),
            "no table": raised(lambda: client.insert("nowhere", [(1,)], column_names=["x"])),
        }
    finally:
        warehouse.close()
    # a server that is not there, as the HTTP client meets it
    kinds["away"] = raised(lambda: clickhouse_connect.get_client(port=free_port()))
    assert {name: error_kind(exc) for name, exc in kinds.items()} == {
        "constraint": "refused",
        "out of range": "refused",
        "months": "refused",
        "no table": "fatal",
        "away": "transient",
    }


def test_refused_records_and_parser_bugs_are_dead_letters_and_a_years_long_batch_is_stored(
    broker: str, tmp_path: Path
) -> None:
    dsn = f"chdb://{tmp_path / 'wh'}"
    settings = Settings(clickhouse_dsn=dsn)
    migrate_warehouse(settings)
    with Warehouse(dsn) as warehouse:  # an operator's rule the data can break
        warehouse.client.command(
            f"ALTER TABLE auth_events ADD CONSTRAINT no_refused CHECK event_id != '{REFUSED_ID}'"
        )
    # 110 months of one backfill, one message each, produced before the worker starts: one batch
    months = [datetime(2010 + m // 12, m % 12 + 1, 3, 12, tzinfo=UTC) for m in range(110)]
    backfill = [(TOPICS.okta, okta_at(f"backfill-{n}", at)) for n, at in enumerate(months)]
    good = [(topic, (FIXTURES / name).read_bytes()) for topic, name in ONE_OF_EACH.items()]
    buggy = fixture(ONE_OF_EACH[TOPICS.entra])
    buggy["correlationId"] = "parser-bug"
    poison = [
        (TOPICS.entra, json.dumps(buggy).encode()),
        (TOPICS.okta, okta_at(REFUSED_ID, months[-1])),
    ]
    messages = backfill + poison + good
    send(broker, messages)
    log = tmp_path / "worker.log"
    env = worker_env(broker, dsn)
    with WorkerProcess(env, log, command=BUGGY_WORKER) as worker:
        try:
            catch_up(broker, len(messages), worker.alive, timeout=240)
        except Exception:
            print(worker.log_tail(60))
            raise
        assert worker.alive()
        assert worker.stop() == 0, worker.log_tail()
    text = log.read_text()
    assert "the entra parser raised ZeroDivisionError" in text
    assert text.count("logged once per kind") == 1
    assert "Traceback" not in text
    with Warehouse(dsn) as warehouse:
        letters = warehouse.query("SELECT topic, reason FROM dead_letters FINAL ORDER BY topic")
        assert [topic for topic, _ in letters] == [TOPICS.entra, TOPICS.okta]
        assert letters[0][1].startswith("the entra parser failed: ZeroDivisionError at <string>")
        assert "the warehouse refused it" in letters[1][1]
        assert "VIOLATED_CONSTRAINT" in letters[1][1]
        stored = dict(warehouse.query("SELECT source, count() FROM auth_events FINAL GROUP BY 1"))
        assert stored == {"okta": 111, "entra": 1, "ping": 1, "duo": 1}
        assert warehouse.query("SELECT count() FROM tickets FINAL") == [(1,)]
        (spread,) = warehouse.query(
            "SELECT uniqExact(toYYYYMM(time)) FROM auth_events WHERE event_id LIKE 'backfill-%'"
        )[0]
        assert spread == 110
        # in = stored + dead letters, in messages
        (written,) = warehouse.query("SELECT sum(messages) FROM ingest_batches")[0]
        assert written == len(messages)


def test_a_worker_waiting_for_the_warehouse_stops_on_sigterm_and_acks_nothing_unwritten(
    broker: str, tmp_path: Path
) -> None:
    server = ClickHouseHttp(tmp_path / "clickhouse").start()
    try:
        migrate_warehouse(Settings(clickhouse_dsn=server.dsn))
        at = datetime(2026, 3, 2, tzinfo=UTC)
        messages = [(TOPICS.okta, okta_at(f"wait-{n}", at)) for n in range(51)]
        send(broker, messages[:1])
        log = tmp_path / "worker.log"
        env = worker_env(broker, server.dsn)
        with WorkerProcess(env, log) as worker:
            catch_up(broker, 1, worker.alive, timeout=240)  # up, and its first write done
            server.stop()  # then the warehouse goes away, and events come
            send(broker, messages[1:])
            deadline = time.monotonic() + 180
            while "warehouse write failed" not in log.read_text(errors="replace"):
                assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
                time.sleep(0.2)
            asked = time.monotonic()
            assert worker.stop(timeout=30) == 0, worker.log_tail()
            stopped_in = time.monotonic() - asked
        assert stopped_in < 15, stopped_in
        assert "nothing of it is committed" in log.read_text()
        committed = GroupLag(broker, GROUP, Settings().kafka).committed([TOPICS.okta])
        assert sum(committed.values()) == 1, committed
        # The warehouse comes back and a new worker stores every event once.
        server.start()
        with WorkerProcess(env, log) as worker:
            catch_up(broker, len(messages), worker.alive, timeout=240)
        with Warehouse(server.dsn) as warehouse:
            assert warehouse.query("SELECT count() FROM auth_events FINAL") == [(51,)]
    finally:
        server.stop()


def test_migrations_run_twice_at_once_and_workers_start_together_on_a_fresh_warehouse(
    broker: str, tmp_path: Path
) -> None:
    server = ClickHouseHttp(tmp_path / "clickhouse").start()
    seen: list[int] = []
    done = threading.Event()

    def watch_the_plan() -> None:
        with Warehouse(server.dsn) as warehouse:
            while not done.is_set():
                try:
                    seen.append(warehouse.query("SELECT count() FROM plan_phases")[0][0])
                except Exception:  # not created yet
                    if seen:
                        raise
                time.sleep(0.01)

    watcher = threading.Thread(target=watch_the_plan)
    try:
        worker = WorkerProcess(worker_env(broker, server.dsn), tmp_path / "early.log")
        with worker:  # before any migration: it says so and stops
            assert worker.wait(timeout=120) == 2
        assert "run `pipeline migrate`" in (tmp_path / "early.log").read_text()
        watcher.start()
        for _ in range(2):  # twice at once, twice over: the second pair reloads the plan
            pair = [
                subprocess.Popen(
                    [sys.executable, "-m", "pipeline.cli", "migrate"],
                    env={**os.environ, **worker_env(broker, server.dsn)},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for _ in range(2)
            ]
            for process in pair:
                _, err = process.communicate(timeout=180)
                assert process.returncode == 0, err.decode()
        done.set()
        watcher.join()
        first = next(n for n in seen if n)
        assert first == 6 and all(n == first for n in seen[seen.index(first) :]), set(seen)
        messages = [(topic, (FIXTURES / name).read_bytes()) for topic, name in ONE_OF_EACH.items()]
        send(broker, messages)
        workers = [
            WorkerProcess(worker_env(broker, server.dsn), tmp_path / f"worker-{n}.log")
            for n in range(2)
        ]
        with workers[0], workers[1]:
            catch_up(broker, len(messages), lambda: all(w.alive() for w in workers), timeout=240)
            assert all(w.alive() for w in workers)
        with Warehouse(server.dsn) as warehouse:
            assert warehouse.query("SELECT count() FROM auth_events FINAL") == [(4,)]
    finally:
        done.set()
        server.stop()
