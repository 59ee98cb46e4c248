"""Crashes and outages. A worker SIGKILLed at random points of a simulated rollout, again and
again, and then cut off from its ClickHouse server for a while, ends with the simulator's
truth: nothing lost, nothing counted twice. At each kill and at the end of the outage, no
partition's committed offset is past what the warehouse holds.

The warehouse is a ClickHouse HTTP interface (tests/clickhouse_http.py, the real engine behind
it) so that it can go away and come back, as a server does. The worker runs with
pseudonymization on and a password in its DSN: its log must hold neither, nor any login.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clickhouse_http import ClickHouseHttp
from streaming import GROUP, catch_up, metrics_of, produce, stored_rows, truth_of, worker_env

from pipeline.aggregate.privacy import Pseudonymizer
from pipeline.model import Source
from pipeline.runtime.lag import GroupLag, WorkerExited
from pipeline.runtime.worker import WorkerProcess, migrate_warehouse
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse
from pipeline.sources._common import normalize_user
from pipeline.sources.registry import parse

KILLS = 3
STOPPED_ITSELF = 70  # pipeline/runtime/app.py: a batch it cannot finish is left for the next start
OUTAGE_SECONDS = 12.0
KEY = "a test key of at least 16 bytes"
CLICKHOUSE_PASSWORD = "clickhouse-test-password-51d2"

Offsets = dict[tuple[str, int], int]
# What a log line quoting a value would set apart as one word: ids, pseudonyms, logins.
_WORD = re.compile(r"[\w.@-]+")


def row_values(rollout: Path, key: str) -> tuple[set[str], set[str]]:
    """What the worker's rows of this rollout hold that names someone or something: the
    pseudonyms of every user (roster and events, as Pseudonymizer makes them with `key`),
    and each raw event's own id (the words of it, 16 characters or more, for ids made of
    several), all lower-case."""
    pseudonym = Pseudonymizer(key.encode())
    logins = {json.loads(line)["user"] for line in (rollout / "roster.ndjson").open()}
    ids: set[str] = set()
    for source in Source:
        for line in (rollout / f"{source.value}.ndjson").read_bytes().splitlines():
            event = parse(source, line)
            ids.update(w.lower() for w in _WORD.findall(event.event_id) if len(w) >= 16)
            if event.user:
                logins.add(event.user)
    pseudonyms = {pseudonym(user) for login in logins if (user := normalize_user(login))}
    return pseudonyms, ids


def found_in_log(text: str, values: set[str]) -> set[str]:
    """The values (lower-case words) that occur as words of the log, whatever their case."""
    return {word for word in map(str.lower, _WORD.findall(text)) if word in values}


def raw_committed(lag: GroupLag) -> Offsets:
    """The group's committed offset of each raw partition."""
    topics = Settings().topics.inputs()
    return {(tp.topic, tp.partition): offset for tp, offset in lag.committed(topics).items()}


def written_offsets(warehouse: Warehouse) -> Offsets:
    """Per raw partition, the offset after the last message of any batch the warehouse holds."""
    rows = warehouse.query(
        "SELECT topic, partition, max(last_offset) + 1 FROM ingest_batches GROUP BY ALL"
    )
    return {(topic, partition): end for topic, partition, end in rows}


def committed_but_not_written(committed: Offsets, written: Offsets) -> Offsets:
    return {tp: offset for tp, offset in committed.items() if offset > written.get(tp, 0)}


class Outage:
    """Takes the ClickHouse server away once the group has committed `at` messages, and brings
    it back `seconds` later; meanwhile it keeps what the group had committed, and at the end,
    with the server still down, compares each partition's committed offset with what the
    engine's own files hold (called with the lag poller's progress, about once a second)."""

    def __init__(self, server: ClickHouseHttp, lag: GroupLag, at: int, seconds: float) -> None:
        self.server, self.lag, self.at, self.seconds = server, lag, at, seconds
        self.started: float | None = None
        self.ended = False
        self.committed_while_away: list[tuple[float, int, int]] = []
        self.unwritten: Offsets | None = None

    def progress(self, committed: int, end: int) -> None:
        if self.started is None:
            if self.at <= committed < end:
                self.server.stop()
                self.started = time.monotonic()
            return
        if self.ended:
            return
        away = time.monotonic() - self.started
        self.committed_while_away.append((away, committed, end))
        if away >= self.seconds:
            offsets = raw_committed(self.lag)
            with Warehouse(f"chdb://{self.server.data}") as files:  # the server is down
                self.unwritten = committed_but_not_written(offsets, written_offsets(files))
            self.server.start()
            self.ended = True


class Supervisor:
    """Runs `pipeline worker` until the group has caught up, as systemd or Kubernetes would: a
    worker that stops itself (exit 70: it will not go on without losing something) is started
    again. A worker this test kills (SIGKILL) ends the run."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.worker: WorkerProcess | None = None
        self.restarts = 0

    def run(self, broker: str, sent: int, progress: Callable[[int, int], None]) -> None:
        while True:
            with WorkerProcess(self.env, self.log) as worker:
                self.worker = worker
                try:
                    catch_up(broker, sent, worker.alive, progress=progress, timeout=240)
                except WorkerExited:
                    if worker.exit_code == STOPPED_ITSELF:
                        self.restarts += 1
                        continue
                    raise
                except TimeoutError:
                    os.kill(worker.pid, signal.SIGUSR1)  # it logs what each task waits on
                    time.sleep(2)
                    print(worker.log_tail(300))
                    raise
                assert worker.stop() == 0, worker.log_tail()
                return

    def kill(self) -> None:
        assert self.worker is not None
        self.worker.kill()


def test_killed_at_random_points_and_cut_off_from_clickhouse_it_ends_with_the_truth(
    rollout: Path, broker: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PIPELINE_TEST_CHAOS_SEED", random.randrange(2**32)))
    chance = random.Random(seed)
    replay = f"replay with PIPELINE_TEST_CHAOS_SEED={seed}"
    print(replay)  # shown with any failure, a timeout included
    pseudonyms, event_ids = row_values(rollout, KEY)
    server = ClickHouseHttp(tmp_path / "clickhouse").start()
    lag = GroupLag(broker, GROUP, Settings().kafka)
    try:
        sent = produce(broker, rollout)
        dsn = f"http://pipeline:{CLICKHOUSE_PASSWORD}@127.0.0.1:{server.port}"
        migrate_warehouse(Settings(clickhouse_dsn=dsn))  # `pipeline migrate`, before any worker
        # Small batches: a kill lands in the middle of a write, an ack or a send as often as
        # between batches.
        env = worker_env(broker, dsn, PIPELINE_PSEUDONYMIZE_KEY=KEY, PIPELINE_BATCH_SIZE="500")
        log = tmp_path / "worker.log"
        supervisor = Supervisor(env, log)

        killed_at: list[int] = []
        for point in sorted(chance.uniform(0.05, 0.5) for _ in range(KILLS)):

            def kill_past(committed: int, end: int, point: float = point) -> None:
                if committed >= point * sent and len(killed_at) < KILLS:
                    time.sleep(chance.uniform(0.0, 0.6))  # anywhere in a batch
                    supervisor.kill()
                    killed_at.append(committed)

            with pytest.raises(WorkerExited):
                supervisor.run(broker, sent, kill_past)
            with Warehouse(dsn) as warehouse:
                written = written_offsets(warehouse)
            assert committed_but_not_written(raw_committed(lag), written) == {}, replay
        assert len(killed_at) == KILLS, replay

        outage = Outage(server, lag, int(chance.uniform(0.55, 0.7) * sent), OUTAGE_SECONDS)
        supervisor.run(broker, sent, outage.progress)
        assert outage.ended, replay
        # With the warehouse away, no raw partition's commit passed what it holds (checked on
        # the engine's own files at the outage's end) and the group stayed behind. (Offsets
        # acknowledged before the outage may still be committed during it: Faust commits one
        # consecutive run of acknowledged offsets per partition and interval.)
        assert outage.unwritten == {}, replay
        away = outage.committed_while_away
        assert len(away) >= 5 and all(committed < end for _, committed, end in away), away

        truth = truth_of(rollout)
        assert metrics_of(dsn) == truth, replay
        with Warehouse(dsn) as warehouse:
            rows = warehouse.query("SELECT count() FROM auth_events")[0][0]
            users = warehouse.query(
                "SELECT groupUniqArray(user) FROM (SELECT user FROM auth_events UNION ALL "
                "SELECT user FROM roster UNION ALL SELECT user FROM enrollment_events)"
            )[0][0]
        assert users and all(user.startswith("u_") for user in users if user)
        events, _, _, sign_ins = stored_rows(dsn)
        print(
            f"seed {seed}: {sent:,} events; killed after {killed_at} committed; "
            f"{OUTAGE_SECONDS:.0f} s outage at {outage.at:,}; {supervisor.restarts} workers "
            f"stopped themselves; auth_events {events:,} ({rows - events:,} replayed rows "
            f"absorbed), sign-ins {sign_ins:,}"
        )
    finally:
        lag.close()
        server.stop()

    text = log.read_text()
    assert text.count("warehouse write failed") >= 1, "the outage went unnoticed"
    assert KEY not in text and CLICKHOUSE_PASSWORD not in text
    logins = [json.loads(line)["user"].lower() for line in (rollout / "roster.ndjson").open()]
    assert [login for login in logins if login in text.lower()] == []
    # Nor a row: the worker runs pseudonymized, so a row it logged would show a pseudonym or
    # an event's id, not a login. The pseudonyms looked for are those the warehouse holds.
    assert set(filter(None, users)) <= pseudonyms, "the test's pseudonyms are not the worker's"
    assert found_in_log(text, pseudonyms) == set(), "the worker's log holds a user's pseudonym"
    assert found_in_log(text, event_ids) == set(), "the worker's log holds an event's id"
