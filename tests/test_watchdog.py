"""The watchdog (pipeline/runtime/watchdog.py): a worker whose stream stalls while Kafka holds
messages for it stops itself (exit 70), its supervisor starts it again, and the new worker
catches up with every event stored once. A worker with nothing to read, or one busy with a
batch, is left alone.

The stall is the one seen in issue 6 (alive, idle, its partitions holding messages), made on
purpose: `pipeline worker` with a timer that pauses every partition of its consumer once a
marker file exists, so the stream delivers nothing while the broker keeps filling up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from streaming import catch_up, metrics_of, produce, stored_rows, truth_of, worker_env

from pipeline.runtime.continuity import Continuity
from pipeline.runtime.lag import WorkerExited
from pipeline.runtime.metrics import WorkerMetrics
from pipeline.runtime.watchdog import STOPPED_ITSELF, Activity, Watchdog
from pipeline.runtime.worker import WorkerProcess, migrate_warehouse
from pipeline.settings import Kafka, Settings
from pipeline.simulate.run import simulate

LIMIT = 6  # PIPELINE_WATCHDOG_SECONDS of these workers
# `pipeline worker`, whose consumer stops fetching while the file named by argv[1] exists.
STALLING_WORKER = [
    sys.executable,
    "-c",
    "import sys\n"
    "from pathlib import Path\n"
    "import pipeline.runtime.worker as worker\n"
    "build = worker.build_app\n"
    "def stalling(*args):\n"
    "    app = build(*args)\n"
    "    @app.timer(interval=0.2)\n"
    "    async def stall_when_told():\n"
    "        if Path(sys.argv[1]).exists():\n"
    "            app.consumer.pause_partitions(app.consumer.assignment())\n"
    "    return app\n"
    "worker.build_app = stalling\n"
    "from pipeline.cli import main\n"
    "sys.exit(main(['worker']))\n",
]


def halves(rollout: Path, out: Path) -> tuple[Path, Path]:
    """The rollout's raw files cut in two, each half in a directory of its own."""
    first, second = out / "first", out / "second"
    for part in (first, second):
        part.mkdir(parents=True)
    for path in rollout.glob("*.ndjson"):
        lines = path.read_bytes().splitlines(keepends=True)
        (first / path.name).write_bytes(b"".join(lines[: len(lines) // 2]))
        (second / path.name).write_bytes(b"".join(lines[len(lines) // 2 :]))
    return first, second


def test_a_stalled_stream_stops_the_worker_and_its_restart_catches_up_storing_each_event_once(
    broker: str, tmp_path: Path
) -> None:
    rollout = tmp_path / "rollout"
    simulate(users=40, weeks=8, seed=5, out=rollout)
    first, second = halves(rollout, tmp_path)
    dsn = f"chdb://{tmp_path / 'wh'}"
    migrate_warehouse(Settings(clickhouse_dsn=dsn))
    marker = tmp_path / "stall"
    env = worker_env(broker, dsn, PIPELINE_WATCHDOG_SECONDS=str(LIMIT))
    log = tmp_path / "worker.log"
    sent = produce(broker, first)
    stalling = WorkerProcess(env, log, command=[*STALLING_WORKER, str(marker)]).start()
    try:
        catch_up(broker, sent, stalling.alive, timeout=240)
        # Nothing to read for three times the limit: no reason to stop.
        time.sleep(3 * LIMIT)
        assert stalling.alive(), stalling.log_tail(40)
        marker.touch()  # the stream stalls ...
        sent += produce(broker, second)  # ... while Kafka holds the second half
        assert stalling.wait(timeout=120) == STOPPED_ITSELF, stalling.log_tail(40)
    finally:
        stalling.stop()
    text = log.read_text()
    assert "watchdog: the stream delivered nothing for" in text
    assert "while Kafka held messages past this worker's position" in text
    assert "raw." in text.split("watchdog:")[-1]
    assert "Traceback" not in text

    # The supervisor starts it again (the same command: the stall is gone with the marker).
    marker.unlink()
    restarts = 0
    while True:
        with WorkerProcess(env, log, command=[*STALLING_WORKER, str(marker)]) as worker:
            try:
                catch_up(broker, sent, worker.alive, timeout=240)
            except WorkerExited:
                assert worker.exit_code == STOPPED_ITSELF, worker.log_tail(40)
                restarts += 1
                assert restarts < 3, worker.log_tail(40)
                continue
            assert worker.stop() == 0, worker.log_tail(40)
            break
    assert metrics_of(dsn) == truth_of(rollout)
    events = sum(
        len((rollout / f"{name}.ndjson").read_bytes().splitlines())
        for name in ("okta", "entra", "ping", "duo")
    )
    auth, enrollments, tickets, _ = stored_rows(dsn)
    assert auth + enrollments == events  # every event once (the simulator's ids are unique)
    assert tickets == len((rollout / "tickets.ndjson").read_bytes().splitlines())


def watchdog(activity: Activity, limit: float, bootstrap: str = "127.0.0.1:1") -> Watchdog:
    quick = Kafka(connect_timeout=1)
    return Watchdog(
        activity,
        Continuity(bootstrap, "watchdog-test", quick),
        WorkerMetrics(),
        lambda: None,
        lambda: False,
        limit,
    )


def test_an_event_loop_that_stopped_beating_is_a_reason_to_stop() -> None:
    activity = Activity()
    activity.beat -= 2 * LIMIT
    assert "the event loop has not run for 12 s" in (watchdog(activity, LIMIT).check() or "")
    assert watchdog(activity, 0).check() is None  # 0: never stops


def test_a_broker_that_does_not_answer_is_no_stall_but_not_ready(tmp_path: Path) -> None:
    activity = Activity(assigned=frozenset({("raw.okta", 0)}))
    activity.waiting_since = time.monotonic() - 10 * LIMIT  # a long wait ...
    dog = watchdog(activity, LIMIT)  # ... on a broker that is not there
    assert dog.check() is None
    assert "Kafka did not answer" in (activity.checks()["broker"]() or "")
    assert activity.checks()["warehouse"]() is None  # its probe answered
