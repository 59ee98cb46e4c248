"""The worker's watchdog: a worker that is alive but makes no progress stops itself.

Seen once (issue 6): a worker alive and idle for 7 minutes while its partitions held 14,000
messages. Whatever the cause (a fetcher that stopped asking, a partition paused and never
resumed, an event loop blocked by a call that never returns), the cure that works is a
restart: a new consumer resumes from the group's committed offsets, and every write is
idempotent. So a worker that sees itself stalled exits 70, the code of every stop that leaves
work for the next start (app.py), and its supervisor (Kubernetes, compose's `restart`,
systemd) starts it again.

The watchdog is a thread of its own, so that it sees a blocked event loop too. Every
`interval` seconds it
- checks that the event loop ran in the last `limit` seconds (a timer of the app beats);
- asks Kafka, for the partitions assigned to this worker, the group's committed offset, the
  next offset the stream must deliver and the partition's end (`Continuity.positions`): the
  consumer lag of /metrics, and the readiness of the broker;
- stops the worker when the agent has waited on the stream for longer than `limit` while, for
  `limit` seconds of it, Kafka held a message at the next offset of one of its partitions.
  An agent busy with a batch (a slow write, a warehouse away for an hour) is not waiting on
  the stream, so only a stream that delivers nothing counts;
- keeps the warehouse's readiness: a write that fails makes it unready until one succeeds;
  with no write for an interval, `SELECT 1` through the writer's own thread answers instead.
Nothing is lost by the stop: a batch in hand is not acknowledged, and what was acknowledged
but not yet committed is read again into idempotent writes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pipeline.aggregate.batch import RawMessage
from pipeline.runtime.continuity import Continuity, Position
from pipeline.runtime.metrics import Check, WorkerMetrics

log = logging.getLogger("pipeline.worker")

STOPPED_ITSELF = 70  # as for a batch the worker cannot finish (app.py)
# The longest pause between two questions to Kafka (the lag on /metrics is this fresh).
LONGEST_INTERVAL = 15.0
NOT_ASKED = "not checked yet"

Partition = tuple[str, int]


@dataclass
class Activity:
    """What the worker is doing: written on the event loop, read by the watchdog thread and
    the readiness checks. Each field is replaced whole, never changed in place, so a reader
    in another thread sees one consistent value."""

    beat: float = field(default_factory=time.monotonic)
    # Since when the agent waits on the stream for a batch; None while it handles one.
    waiting_since: float | None = field(default_factory=time.monotonic)
    assigned: frozenset[Partition] = frozenset()
    # One past the last offset the stream delivered, per partition, since the assignment.
    delivered: Mapping[Partition, int] = field(default_factory=dict)
    writing: bool = False
    last_write: float = 0.0  # when the last write attempt ended
    # Why the last write failed; None once one succeeds. Until then no probe says ready.
    write_problem: str | None = None
    broker: str | None = NOT_ASKED
    warehouse: str | None = NOT_ASKED

    def took(self, messages: list[RawMessage]) -> None:
        """The stream delivered a batch: the agent handles it."""
        ends = {(m.topic, m.partition): m.offset + 1 for m in messages}
        self.delivered = {
            **self.delivered,
            **{tp: max(end, self.delivered.get(tp, 0)) for tp, end in ends.items()},
        }
        self.waiting_since = None

    def done(self) -> None:
        """The batch is acknowledged: the agent waits on the stream again."""
        self.waiting_since = time.monotonic()

    def heartbeat(self, assigned: frozenset[Partition]) -> None:
        """The event loop runs; `assigned`: the partitions it holds now. A new assignment
        restarts the clock of a waiting agent (joining a group takes its time)."""
        now = time.monotonic()
        self.beat = now
        if assigned != self.assigned:
            self.assigned, self.delivered = assigned, {}
            if self.waiting_since is not None:
                self.waiting_since = now

    def checks(self) -> dict[str, Check]:
        """The worker's readiness: broker reachable, warehouse writable, partitions assigned."""
        return {
            "broker": lambda: self.broker,
            "warehouse": lambda: self.write_problem or self.warehouse,
            "partitions": lambda: (
                None
                if self.assigned
                else "no partition of the topics it reads is assigned to this worker (more "
                "workers than partitions, or a rebalance under way)"
            ),
        }


class Watchdog:
    """The thread described in the module's docstring. `limit` 0: it never stops the
    worker, and still keeps the lag and the readiness."""

    def __init__(
        self,
        activity: Activity,
        continuity: Continuity,
        metrics: WorkerMetrics,
        warehouse_probe: Callable[[], object],
        stopping: Callable[[], bool],
        limit: float,
    ) -> None:
        self.activity = activity
        self._continuity = continuity
        self._metrics = metrics
        self._probe_warehouse = warehouse_probe
        self._stopping = stopping
        self.limit = limit
        self.interval = min(LONGEST_INTERVAL, max(1.0, limit / 3)) if limit else LONGEST_INTERVAL
        # (since when Kafka holds messages for a waiting agent, the wait it was seen in)
        self._backlog: tuple[float, float] | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                reason = self.check()
            except Exception:  # the watchdog's own failure must not pass for a stall
                log.exception("watchdog: a check failed")
                continue
            if reason is not None:
                log.critical(
                    "watchdog: %s; stopping (exit %s) so that the supervisor starts this worker "
                    "again, which resumes from the committed offsets: nothing unwritten was "
                    "acknowledged",
                    reason,
                    STOPPED_ITSELF,
                )
                logging.shutdown()
                os._exit(STOPPED_ITSELF)

    def check(self) -> str | None:
        """One round; the reason to stop the worker, or None."""
        activity = self.activity
        if self._stopping():
            return None
        now = time.monotonic()
        if self.limit and now - activity.beat > self.limit:
            return f"the event loop has not run for {now - activity.beat:.0f} s"
        waiting = activity.waiting_since
        positions = self._positions(sorted(activity.assigned), activity.delivered)
        self._warehouse(now)
        if not self.limit or positions is None or waiting is None:
            self._backlog = None
            return None
        held = {tp: p for tp, p in positions.items() if p.held is not None}
        if not held or activity.waiting_since != waiting:
            self._backlog = None
            return None
        if self._backlog is None or self._backlog[1] != waiting:
            self._backlog = (now, waiting)
        since = self._backlog[0]
        if now - since < self.limit or now - waiting < self.limit:
            return None
        return (
            f"the stream delivered nothing for {now - waiting:.0f} s while Kafka held messages "
            f"past this worker's position for {now - since:.0f} s: {_described(held)}"
        )

    def _positions(
        self, assigned: list[Partition], delivered: Mapping[Partition, int]
    ) -> dict[Partition, Position] | None:
        if not assigned:
            self._metrics.partitions({})
            return None
        try:
            positions = self._continuity.positions(assigned, delivered)
        except Exception as exc:  # no answer: not a stall, but not ready either
            problem = f"Kafka did not answer where this worker stands ({type(exc).__name__})"
            if self.activity.broker != problem:
                log.warning("watchdog: %s", problem)
            self.activity.broker = problem
            return None
        self.activity.broker = None
        self._metrics.partitions({tp: p.lag for tp, p in positions.items()})
        return positions

    def _warehouse(self, now: float) -> None:
        activity = self.activity
        if activity.writing or now - activity.last_write < self.interval:
            return  # a write under way, or just done, says more than a probe
        try:
            self._probe_warehouse()
        except Exception as exc:
            activity.warehouse = f"the warehouse does not answer ({type(exc).__name__})"
        else:
            activity.warehouse = None


def _described(held: Mapping[Partition, Position]) -> str:
    shown = [
        f"{topic}[{partition}] at offset {p.next:,} (end {p.end:,})"
        for (topic, partition), p in sorted(held.items())
    ]
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return ", ".join(shown[:3]) + more
