"""The whole pipeline through the real broker and the real ClickHouse engine.

A simulated rollout is produced to the raw topics without keys (as a log shipper that does
not key by user would), so one sign-in's records spread over partitions and batches. The
worker (`pipeline worker`, a child process) writes to an embedded warehouse; the weekly
metrics read back from it must equal the simulator's truth file exactly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
from streaming import (
    WEEKS,
    catch_up,
    metrics_of,
    produce,
    read_dead_letters,
    run_worker,
    stored_rows,
    truth_of,
    worker_env,
)

from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse

TESTS_DIR = Path(__file__).parent


MALFORMED = {
    "raw.okta": [b'{"uuid": "9f1", "published": "2026-03-', b"\xff\xfe not utf-8"],
    "raw.entra": [b'{"id": 42, "createdDateTime": []}', b'"a string"'],
    "raw.duo": [b"null"],
    "raw.tickets": [b'{"sys_id": "x"}'],
    "raw.roster": [b'{"user": "no.department@example.com"}'],
}


def test_metrics_equal_the_truth_bad_events_are_dead_letters_and_a_replay_changes_nothing(
    rollout: Path, broker: str, tmp_path: Path
) -> None:
    warehouse = f"chdb://{tmp_path / 'wh'}"
    log = tmp_path / "worker.log"
    # Every raw event twice, at different offsets (a shipper re-sending what it sent), and
    # malformed events on every raw topic among them.
    sent = produce(broker, rollout, MALFORMED) + produce(broker, rollout)
    run_worker(broker, warehouse, log, sent)
    truth = truth_of(rollout)
    assert len(truth["weeks"]) == WEEKS
    assert metrics_of(warehouse) == truth
    printed = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "metrics", "--format", "json"],
        env={**os.environ, "PIPELINE_CLICKHOUSE_DSN": warehouse},
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert orjson.loads(printed.stdout) == truth
    rows = stored_rows(warehouse)

    expected = {(topic, line) for topic, lines in MALFORMED.items() for line in lines}
    letters = asyncio.run(read_dead_letters(broker, len(expected)))
    assert {(h["dead_letter.topic"], value) for value, h in letters} == expected
    for _, headers in letters:
        assert headers["dead_letter.reason"]
        assert int(headers["dead_letter.offset"]) >= 0
    with Warehouse(warehouse) as opened:
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
    run_worker(broker, warehouse, log, sent, PIPELINE_APP_ID="replay-from-the-start")
    assert metrics_of(warehouse) == truth
    assert stored_rows(warehouse) == rows


def test_two_workers_sharing_the_topics_end_with_the_numbers_of_one(
    rollout: Path, broker: str, tmp_path: Path
) -> None:
    """Two Faust workers in one consumer group split the partitions between them. The
    embedded warehouse is open to one process only, so both run in one process sharing it
    (tests/two_workers.py); against a ClickHouse server they would be two processes."""
    warehouse = f"chdb://{tmp_path / 'wh'}"
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
