"""Helpers of the tests that run the whole pipeline through the real broker: a simulated
rollout produced to the raw topics, `pipeline worker` child processes, and their progress."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from pipeline.model import Source
from pipeline.plan import load_plan
from pipeline.report.weekly import weekly_metrics
from pipeline.runtime.broker import BufferedProducer, create_topics
from pipeline.runtime.lag import wait_until_caught_up
from pipeline.runtime.worker import WorkerProcess, migrate_warehouse
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse

GROUP = "passwordless-pipeline"
# The simulated rollout streamed through the broker (tests/conftest.py: `rollout`).
USERS, WEEKS = 120, 30


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


def worker_env(bootstrap: str, dsn: str, **more: str) -> dict[str, str]:
    """A worker's settings: this broker and warehouse, a Faust data directory of its own (tests
    may run side by side), and a short session timeout so a killed worker's partitions move on
    quickly."""
    return {
        "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
        "PIPELINE_CLICKHOUSE_DSN": dsn,
        "PIPELINE_STATE_DIR": tempfile.mkdtemp(prefix="faust-"),
        "PIPELINE_KAFKA_SESSION_TIMEOUT": "6",
        **more,
    }


def catch_up(
    bootstrap: str,
    at_least: int,
    alive: Callable[[], bool],
    group: str = GROUP,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 420,
) -> None:
    """Wait until the group has committed at least `at_least` messages and all there are."""
    settings = Settings()
    wait_until_caught_up(
        bootstrap,
        group,
        settings.kafka,
        settings.topics.inputs(),
        at_least=at_least,
        timeout=timeout,
        alive=alive,
        progress=progress,
    )


def run_worker(bootstrap: str, dsn: str, log: Path, at_least: int, **env: str) -> None:
    """One worker from start to caught up, then a graceful stop (migrating first)."""
    migrate_warehouse(Settings(clickhouse_dsn=dsn))
    with WorkerProcess(worker_env(bootstrap, dsn, **env), log) as worker:
        try:
            catch_up(bootstrap, at_least, worker.alive, env.get("PIPELINE_APP_ID", GROUP))
        except Exception:
            print(worker.log_tail(60))
            raise
        assert worker.stop() == 0, worker.log_tail()


def metrics_of(dsn: str) -> dict:
    with Warehouse(dsn) as opened:
        return weekly_metrics(opened, load_plan())


def truth_of(rollout: Path) -> dict:
    return orjson.loads((rollout / "truth.json").read_bytes())


def stored_rows(dsn: str) -> tuple[int, ...]:
    """Events, enrollments, tickets and sign-ins as the metrics see them (deduplicated)."""
    with Warehouse(dsn) as opened:
        tables = ("auth_events FINAL", "enrollment_events FINAL", "tickets FINAL", "sign_ins")
        return tuple(opened.query(f"SELECT count() FROM {table}")[0][0] for table in tables)


async def read_dead_letters(bootstrap: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """What the dead-letter topic holds: (value, headers), up to `count` of them."""
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
