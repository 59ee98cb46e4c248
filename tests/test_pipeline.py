"""The whole pipeline through the real broker and the real ClickHouse engine.

A simulated rollout is produced to the raw topics without keys (as a log shipper that does
not key by user would), so one sign-in's records spread over partitions and batches. The
worker (`pipeline worker`, a child process) writes to an embedded warehouse; the weekly
metrics read back from it must equal the simulator's truth file exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from pipeline.broker import BufferedProducer, EmbeddedBroker, create_topics
from pipeline.lag import wait_until_caught_up
from pipeline.model import Source
from pipeline.plan import load_plan
from pipeline.report import weekly_metrics
from pipeline.settings import Settings
from pipeline.simulate.run import simulate
from pipeline.sinks.warehouse import Warehouse
from pipeline.worker import WorkerProcess

USERS, WEEKS = 120, 30
_GROUP = "passwordless-pipeline"
TESTS_DIR = Path(__file__).parent


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rollout")
    simulate(users=USERS, weeks=WEEKS, seed=23, out=out)
    return out


@pytest.fixture
def broker() -> Iterator[str]:
    """A broker of the test's own: topics, offsets and groups start empty."""
    with EmbeddedBroker() as started:
        yield started.bootstrap


def produce(bootstrap: str, rollout: Path, extra: dict[str, list[bytes]] | None = None) -> int:
    """The rollout's raw files to their topics (no keys), plus `extra` lines per topic."""
    topics = Settings().topics
    create_topics(bootstrap, [*topics.inputs(), topics.dead_letter], topics.partitions)
    producer = BufferedProducer(bootstrap)
    sent = 0
    files = {topics.raw(source): f"{source.value}.ndjson" for source in Source}
    files[topics.roster] = "roster.ndjson"
    for topic, name in files.items():
        lines = (rollout / name).read_bytes().splitlines()
        lines += (extra or {}).get(topic, [])
        for line in lines:
            producer.send(topic, None, line)
        sent += len(lines)
    producer.close()
    return sent


def worker_env(bootstrap: str, warehouse: Path, **more: str) -> dict[str, str]:
    return {
        "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
        "PIPELINE_CLICKHOUSE_DSN": f"chdb://{warehouse}",
        "PIPELINE_KAFKA_SESSION_TIMEOUT": "6",
        **more,
    }


def catch_up(
    bootstrap: str,
    at_least: int,
    alive: Callable[[], bool],
    group: str = _GROUP,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    settings = Settings()
    wait_until_caught_up(
        bootstrap,
        group,
        settings.kafka,
        [*settings.topics.inputs(), settings.topics.enrollments],
        at_least=at_least,
        timeout=420,
        alive=alive,
        progress=progress,
    )


def run_worker(bootstrap: str, warehouse: Path, at_least: int, **env: str) -> None:
    """One worker from start to caught up, then a graceful stop."""
    log = warehouse.parent / "worker.log"
    with WorkerProcess(worker_env(bootstrap, warehouse, **env), log) as worker:
        try:
            catch_up(bootstrap, at_least, worker.alive, env.get("PIPELINE_APP_ID", _GROUP))
        except Exception:
            print(worker.log_tail(60))
            raise
        assert worker.stop() == 0, worker.log_tail()


def metrics_of(warehouse: Path) -> dict:
    with Warehouse(f"chdb://{warehouse}") as opened:
        return weekly_metrics(opened, load_plan())


def truth_of(rollout: Path) -> dict:
    return orjson.loads((rollout / "truth.json").read_bytes())


def stored_rows(warehouse: Path) -> tuple[int, ...]:
    with Warehouse(f"chdb://{warehouse}") as opened:
        tables = ("auth_events FINAL", "enrollment_events FINAL", "tickets FINAL", "sign_ins")
        return tuple(opened.query(f"SELECT count() FROM {table}")[0][0] for table in tables)


MALFORMED = {
    "raw.okta": [b'{"uuid": "9f1", "published": "2026-03-', b"\xff\xfe not utf-8"],
    "raw.entra": [b'{"id": 42, "createdDateTime": []}', b"[]"],
    "raw.duo": [b"null"],
    "raw.tickets": [b'{"sys_id": "x"}'],
    "raw.roster": [b'{"user": "no.department@example.com"}'],
}


def test_metrics_equal_the_truth_bad_events_are_dead_letters_and_a_replay_changes_nothing(
    rollout: Path, broker: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh"
    # Every raw event twice, at different offsets (a shipper re-sending what it sent), and
    # malformed events on every raw topic among them.
    sent = produce(broker, rollout, MALFORMED) + produce(broker, rollout)
    run_worker(broker, warehouse, sent)
    truth = truth_of(rollout)
    assert len(truth["weeks"]) == WEEKS
    assert metrics_of(warehouse) == truth
    printed = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "metrics", "--format", "json"],
        env={**os.environ, "PIPELINE_CLICKHOUSE_DSN": f"chdb://{warehouse}"},
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert orjson.loads(printed.stdout) == truth
    rows = stored_rows(warehouse)

    expected = {(topic, line) for topic, lines in MALFORMED.items() for line in lines}
    letters = asyncio.run(_read_dead_letters(broker, len(expected)))
    assert {(h["dead_letter.topic"], value) for value, h in letters} == expected
    for _, headers in letters:
        assert headers["dead_letter.reason"]
        assert int(headers["dead_letter.offset"]) >= 0
    with Warehouse(f"chdb://{warehouse}") as opened:
        stored = opened.query("SELECT topic, reason FROM dead_letters FINAL")
        progress = opened.query("SELECT topic, partition, lag, end_offset FROM ingest_progress")
        written = opened.query("SELECT sum(messages) FROM ingest_batches")[0][0]
    assert len(stored) == len(expected)
    assert all(reason for _, reason in stored)
    # Pipeline health: each raw partition's last batch reached the partition's end (lag 0)
    topics = Settings().topics
    assert {(t, p) for t, p, _, _ in progress} == {
        (t, p) for t in topics.inputs() for p in range(topics.partitions)
    }
    assert [(t, p, lag) for t, p, lag, end in progress if lag != 0 or end is None] == []
    assert written >= sent

    # Every topic replayed from its start by a new consumer group.
    run_worker(broker, warehouse, sent, PIPELINE_APP_ID="replay-from-the-start")
    assert metrics_of(warehouse) == truth
    assert stored_rows(warehouse) == rows


def test_a_worker_killed_mid_stream_and_restarted_ends_with_the_same_numbers(
    rollout: Path, broker: str, tmp_path: Path
) -> None:
    """With pseudonymization on: the numbers are the truth's, and neither the warehouse nor
    the worker's log holds a login or the key."""
    warehouse = tmp_path / "wh"
    sent = produce(broker, rollout)
    key = "a test key of at least 16 bytes"
    env = worker_env(broker, warehouse, PIPELINE_PSEUDONYMIZE_KEY=key)
    killed_at = []
    with WorkerProcess(env, tmp_path / "worker.log") as worker:

        def kill_midway(committed: int, end: int) -> None:
            if committed >= sent // 3 and not killed_at:
                worker.kill()
                killed_at.append(committed)

        with pytest.raises(RuntimeError, match="stopped before it caught up"):
            catch_up(broker, sent, worker.alive, progress=kill_midway)
    assert killed_at and killed_at[0] < sent
    run_worker(broker, warehouse, sent, PIPELINE_PSEUDONYMIZE_KEY=key)
    assert metrics_of(warehouse) == truth_of(rollout)

    logins = [json.loads(line)["user"] for line in (rollout / "roster.ndjson").open()]
    log = (tmp_path / "worker.log").read_text()
    assert "ingested" in log and key not in log
    assert [login for login in logins if login.lower() in log.lower()] == []
    with Warehouse(f"chdb://{warehouse}") as opened:
        users = opened.query(
            "SELECT groupUniqArray(user) FROM (SELECT user FROM auth_events UNION ALL "
            "SELECT user FROM roster UNION ALL SELECT user FROM enrollment_state)"
        )[0][0]
    assert users and all(user.startswith("u_") for user in users if user)


def test_two_workers_sharing_the_topics_end_with_the_numbers_of_one(
    rollout: Path, broker: str, tmp_path: Path
) -> None:
    """Two Faust workers in one consumer group split the partitions between them. The
    embedded warehouse is open to one process only, so both run in one process sharing it
    (tests/two_workers.py); against a ClickHouse server they would be two processes."""
    warehouse = tmp_path / "wh"
    sent = produce(broker, rollout)
    log = (tmp_path / "two.log").open("wb")
    assignments = tmp_path / "assignments.json"
    process = subprocess.Popen(
        [sys.executable, str(TESTS_DIR / "two_workers.py"), str(assignments)],
        env={**os.environ, **worker_env(broker, warehouse)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        catch_up(broker, sent, lambda: process.poll() is None)
        held = orjson.loads(assignments.read_bytes())
    finally:
        process.terminate()
        process.wait(60)
    first, second = (set(held[number]) for number in ("0", "1"))
    topics = Settings().topics
    assert first and second and not first & second
    assert len(first | second) == len(topics.inputs()) * topics.partitions
    assert metrics_of(warehouse) == truth_of(rollout)


async def _read_dead_letters(bootstrap: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    consumer = AIOKafkaConsumer(
        Settings().topics.dead_letter, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, str]]] = []
    try:
        for _ in range(50):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = {key: value.decode() for key, value in record.headers}
                    found.append((record.value, headers))
            if len(found) >= count:
                break
    finally:
        await consumer.stop()
    return found
