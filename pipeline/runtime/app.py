"""The Faust app: one agent wiring sources -> classify -> aggregate -> the warehouse.

`ingest` reads every raw topic (one per source, plus the roster) in batches, parses and
classifies each event with its source's parser, folds sign-ins (aggregate/signins.py),
writes the batch to ClickHouse (sinks/writer.py: a record the engine refuses becomes a dead
letter, the rest is stored), and sends what could not be stored to the dead-letter topic.
Only then are the batch's messages acked, so an offset is committed only once its effect is
in the warehouse.

Nothing here assumes one worker: raw topics have several partitions, and every warehouse
write is idempotent, so any number of workers may share the topics. The worker keeps no
state of its own: every number is derived from the warehouse's rows, in event time.

Beside the agent: its metrics and health (runtime/metrics.py, served when
PIPELINE_METRICS_PORT is set), and the watchdog (runtime/watchdog.py), which stops a worker
whose stream has stalled so that its supervisor starts it again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

import faust
from faust.types import EventT, StreamT

from pipeline.aggregate.batch import Batch, BatchRules, RawMessage
from pipeline.runtime.continuity import Continuity, DroppedMessages
from pipeline.runtime.metrics import HealthServer, WorkerMetrics
from pipeline.runtime.watchdog import Activity, Watchdog
from pipeline.settings import Kafka, Settings
from pipeline.sinks.warehouse import Warehouse
from pipeline.sinks.writer import engine_reason, error_kind, write_messages
from pipeline.sources.registry import PARSER_FAILURES

log = logging.getLogger("pipeline.worker")

# Back-off while the warehouse cannot take a write: the batch waits, nothing is acked.
_RETRY_FIRST, _RETRY_MAX = 0.5, 30.0
# Seconds the readiness probe of an idle warehouse (SELECT 1) may take.
_PROBE_TIMEOUT = 10.0


class Ingested:
    """Running totals of this worker, for its log."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.dead_letters = 0
        self.batches = 0


def faust_app(settings: Settings, bootstrap: str, app_id: str | None = None) -> faust.App:
    """A Faust app configured from the settings (the worker's, and the benchmark's baseline)."""
    app_id = app_id or settings.app_id
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=[f"kafka://{host.strip()}" for host in bootstrap.split(",")],
        broker_credentials=broker_credentials(settings.kafka),
        store="memory://",
        datadir=str(settings.state_dir / app_id),
        web_enabled=False,
        autodiscover=False,
        topic_partitions=settings.topics.partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka.session_timeout,
        broker_heartbeat_interval=max(0.5, settings.kafka.session_timeout / 10),
        broker_rebalance_timeout=max(10.0, settings.kafka.session_timeout * 2),
    )


def build_app(
    settings: Settings,
    warehouse: Warehouse,
    bootstrap: str,
    metrics_socket: socket.socket | None = None,
) -> faust.App:
    """A Faust app reading the configured topics and writing to `warehouse`, with its
    watchdog; with `metrics_socket` (runtime/metrics.py: `listen`), its /metrics, /healthz
    and /readyz there."""
    topics = settings.topics
    app = faust_app(settings, bootstrap)
    inputs = settings.input_topics()
    raw = app.topic(*inputs, key_serializer="raw", value_serializer="raw")
    dead_letters = app.topic(topics.dead_letter, key_serializer="raw", value_serializer="raw")
    rules = BatchRules.from_settings(settings)
    totals = Ingested()
    continuity = Continuity(bootstrap, settings.app_id, settings.kafka)
    metrics = WorkerMetrics()
    activity = Activity()

    @app.agent(raw, name="ingest")
    async def ingest(stream: StreamT) -> None:
        # noack_take: the batch is acked here, after its writes. (take_events acks in a
        # `finally`, so a worker stopped mid-write would commit what it never wrote.)
        async for events in stream.noack_take(settings.batch_size, settings.batch_seconds):
            with _stop_on_error("ingest"):
                await _ingest(events)
            await _ack(stream, events)
            activity.done()

    async def _ingest(events: list[EventT]) -> None:
        messages = [_raw_message(event) for event in events]
        activity.took(messages)
        metrics.took(len(messages))
        await _every_message_seen(messages)
        # Each partition's end as the consumer last fetched it: the lag at this write.
        ends = await app.consumer.highwaters(*{event.message.tp for event in events})
        end_offsets = {(tp.topic, tp.partition): end for tp, end in ends.items()}
        batches = await _until_written(
            partial(write_messages, warehouse, messages, rules, end_offsets),
            app,
            activity,
            metrics,
        )
        sent = [
            await dead_letters.send(
                key=dead.message.key, value=dead.topic_value(), headers=dead.headers()
            )
            for batch in batches
            for dead in batch.dead_letters
        ]
        # Delivered before the batch is acked: a crash now replays the batch instead.
        await asyncio.gather(*sent)
        for batch in batches:
            totals.received.update(batch.received)
            totals.dead_letters += len(batch.dead_letters)
        totals.batches += 1

    async def _every_message_seen(messages: list[RawMessage]) -> None:
        """Stop (before acknowledging) when the stream skipped messages Kafka holds."""
        for jump in await continuity.gaps(messages, app.consumer_generation_id):
            topic, partition, expected, got = jump
            held = await continuity.dropped(jump)
            if held is not None:
                raise DroppedMessages(
                    f"{topic}[{partition}] went from offset {expected - 1} to {got}, but Kafka "
                    f"holds offset {held}: the stream dropped messages (a Faust recovery race); "
                    "stopping before acknowledging them, so that a restart reads them again"
                )
            log.info(
                "%s[%s]: offsets %s to %s hold no message", topic, partition, expected, got - 1
            )

    @app.timer(interval=1.0)
    async def heartbeat() -> None:
        assigned = frozenset(
            (tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in inputs
        )
        activity.heartbeat(assigned)

    @app.task
    async def watch_and_serve() -> None:
        Watchdog(
            activity,
            continuity,
            metrics,
            # Through the writer's own thread: the embedded engine is not to be used from two.
            lambda: _WRITER.submit(warehouse.query, "SELECT 1").result(_PROBE_TIMEOUT),
            lambda: app.should_stop,
            settings.watchdog_seconds,
        ).start()
        if metrics_socket is not None:
            checks = activity.checks()
            checks["stopping"] = lambda: "the worker is stopping" if app.should_stop else None
            server = HealthServer(metrics_socket, metrics.registry, checks)
            await server.start()
            log.info("metrics, health and readiness on %s", server.url)

    @app.task
    async def log_tasks_on_sigusr1() -> None:
        # `kill -USR1 <worker>` logs what every task of the worker waits on: for a worker that
        # is alive but makes no progress.
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _log_tasks)

    @app.timer(interval=10.0)
    async def report_progress() -> None:
        if totals.batches:
            failures = ", ".join(f"{s} {k} {n:,}" for (s, k), n in PARSER_FAILURES.items())
            log.info(
                "ingested %s events (%s), %s dead letters%s",
                f"{sum(totals.received.values()):,}",
                ", ".join(f"{k} {v:,}" for k, v in sorted(totals.received.items())),
                f"{totals.dead_letters:,}",
                f" (parser failures among them: {failures})" if failures else "",
            )

    return app


def _log_tasks() -> None:
    for task in asyncio.all_tasks():
        stack = io.StringIO()
        task.print_stack(file=stack)
        log.warning("task %s:\n%s", task.get_name(), stack.getvalue())


async def _ack(stream: StreamT, events: list[EventT]) -> None:
    for event in events:
        await stream.ack(event)


@contextmanager
def _stop_on_error(agent: str) -> Iterator[None]:
    """Stop the worker at once, without acking, when a batch fails for any reason other
    than a warehouse that is away (which is retried): Faust would otherwise log the error,
    ack the batch and restart the agent, losing it. Failing loudly keeps it for the next
    start."""
    try:
        yield
    except StopRequested:
        # A graceful stop would ack the batch in hand; leaving now keeps it for a restart.
        log.warning("stopping as asked, with a batch not yet written: nothing of it is committed")
        logging.shutdown()
        os._exit(0)
    except (WriteFailed, DroppedMessages) as exc:
        log.critical("agent %s: %s; stopping without committing its batch", agent, exc)
        logging.shutdown()
        os._exit(70)
    except Exception:
        log.critical("agent %s failed; stopping without committing its batch", agent, exc_info=True)
        logging.shutdown()
        os._exit(70)


def _raw_message(event: EventT) -> RawMessage:
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset, event.key, event.value)


# One thread runs every warehouse write: the engine works outside the GIL there while the
# event loop goes on filling the next batch, and writes stay in order, one at a time.
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-writer")


class WriteFailed(RuntimeError):
    """A write that retrying cannot mend (see sinks/writer.py: `fatal`)."""


class StopRequested(Exception):
    """The worker was asked to stop while a batch waited for the warehouse."""


async def _until_written(
    write: Callable[[], list[Batch]],
    app: faust.App,
    activity: Activity,
    metrics: WorkerMetrics,
) -> list[Batch]:
    """Run a warehouse write until it succeeds, backing off while the warehouse is away or
    busy. Never gives up on a transient error (giving up would ack events whose rows were not
    written), but a stop request ends the wait at once, with nothing acknowledged, and an
    error no retry can mend stops the worker. Each attempt is counted and timed, and tells
    the worker's readiness whether the warehouse takes writes."""
    delay = _RETRY_FIRST
    loop = asyncio.get_running_loop()
    while True:
        activity.writing = True
        started = time.monotonic()
        try:
            batches = await loop.run_in_executor(_WRITER, write)
        except Exception as exc:
            if error_kind(exc) != "transient":
                raise WriteFailed(
                    f"the warehouse cannot take this batch: {engine_reason(exc)}"
                ) from exc
            log.warning(
                "warehouse write failed (%s); retrying in %.1f s", engine_reason(exc), delay
            )
            activity.write_problem = f"the last write failed ({type(exc).__name__}); retrying"
            metrics.retries.inc()
        else:
            metrics.wrote(batches, time.monotonic() - started)
            activity.write_problem = activity.warehouse = None
            return batches
        finally:
            activity.writing, activity.last_write = False, time.monotonic()
        await app.sleep(delay)  # mode's sleep: it ends early when the app is stopping
        if app.should_stop:
            raise StopRequested
        delay = min(delay * 2, _RETRY_MAX)


def broker_credentials(kafka: Kafka) -> faust.SASLCredentials | faust.SSLCredentials | None:
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=kafka.ssl_context(),
        )
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(kafka.ssl_context())
    return None
