"""`pipeline worker`: the Faust worker against the configured Kafka and warehouse."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import faust

from pipeline.plan import load_plan
from pipeline.runtime.app import build_app
from pipeline.runtime.broker import EmbeddedBroker, create_topics
from pipeline.runtime.metrics import MetricsError, listen
from pipeline.runtime.process import ChildService, stop_process
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse


def prepare_warehouse(warehouse: Warehouse, settings: Settings) -> list[str]:
    """Apply pending migrations, the retention setting and the rollout plan; return what
    changed, for a person."""
    applied = [f"applied {name}" for name in warehouse.migrate()]
    applied += warehouse.apply_retention(settings.retention_days)
    warehouse.load_plan(load_plan(settings.plan_file))
    return applied


def migrate_warehouse(settings: Settings) -> list[str]:
    """`pipeline migrate` on the configured warehouse, for the tools that start workers."""
    with Warehouse.from_settings(settings) as warehouse:
        return prepare_warehouse(warehouse, settings)


def pipeline_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes, internal ones included."""
    return [*settings.input_topics(), settings.topics.dead_letter]


@contextmanager
def kafka_bootstrap(settings: Settings) -> Iterator[str]:
    """The configured Kafka, or the embedded broker for as long as the block runs."""
    if settings.kafka.bootstrap:
        yield settings.kafka.bootstrap
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM / SIGINT; offsets are committed only after warehouse writes. Exit 70
    when it stops itself (a batch it cannot finish, a stalled stream), to be started again."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python's admin chatter
    try:
        metrics_socket = listen(settings.metrics)  # first: a port in use is said at once
    except MetricsError as exc:
        print(f"pipeline worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with kafka_bootstrap(settings) as bootstrap, Warehouse.from_settings(settings) as warehouse:
        if not settings.kafka.bootstrap:
            logging.getLogger("pipeline.worker").warning(
                "PIPELINE_KAFKA_BOOTSTRAP is unset: started the embedded broker at %s "
                "(in memory; it stops with this worker)",
                bootstrap,
            )
        create_topics(
            bootstrap, pipeline_topics(settings), settings.topics.partitions, settings.kafka
        )
        warehouse.require_current_schema()
        app = build_app(settings, warehouse, bootstrap, metrics_socket)
        worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()


class WorkerProcess(ChildService):
    """`pipeline worker` in a child process, with its output in a log file. The demo,
    the benchmark and the tests run the worker this way: the embedded warehouse is open
    to one process at a time, and a child can be killed like a real worker."""

    def __init__(self, env: dict[str, str], log: Path, command: list[str] | None = None) -> None:
        self._env = {**os.environ, **env}
        self._log_path = log
        # Another command only for a test's fault injection: `pipeline worker` with a patch.
        self._command = command or [sys.executable, "-m", "pipeline.cli", "worker"]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """None while it runs; negative: the signal that ended it."""
        return None if self._process is None else self._process.poll()

    def peak_rss_mb(self) -> float:
        """The worker's peak resident memory so far (Linux VmHWM)."""
        return self._status_mb("VmHWM")

    def rss_mb(self) -> float:
        """The worker's resident memory now (Linux VmRSS)."""
        return self._status_mb("VmRSS")

    def _status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} in /proc: not Linux?")

    def wait(self, timeout: float) -> int:
        """Its exit code, once it has stopped on its own (TimeoutExpired after `timeout`)."""
        assert self._process is not None, "start() first"
        return self._process.wait(timeout)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a graceful stop: in-flight batch written, offsets committed)."""
        return stop_process(self._process, timeout) or 0

    def kill(self) -> None:
        """SIGKILL: the crash of a machine, as far as the worker can tell."""
        stop_process(self._process, timeout=60, kill=True)

    def log_tail(self, lines: int = 25) -> str:
        if not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
