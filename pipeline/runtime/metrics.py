"""Metrics and health of the long-running processes: the worker, the receiver, the collectors.

Each process keeps its metrics in a registry of its own (prometheus-client,
https://prometheus.github.io/client_python/) and serves, on PIPELINE_METRICS_HOST and
PIPELINE_METRICS_PORT (a port of its own: the receiver's public one carries no metrics):
- `GET /metrics`: the Prometheus text format, the process's `process_*` figures included;
- `GET /healthz`: 200 while the process is alive (on the process's event loop, so a loop that
  no longer runs answers nothing, and a liveness probe restarts it);
- `GET /readyz`: 200 when every readiness check of the process passes, else 503; the body
  names each check and what is wrong (`{"ready": false, "checks": {"warehouse": "…"}}`).
  Kubernetes' probes take any 2xx-3xx as success and anything else as failure
  (https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/).

Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/): the
`pipeline_` prefix, `_total` on counters, base units (`_seconds`). Labels carry only what
the pipeline names itself: sources, topics, partitions, routes, collector names, reasons from
a fixed list. Never a user, an event's content, a header or a secret; a check's text says
what failed in words and exception type names, never a value the process was given.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.settings import Metrics as MetricsSettings

if TYPE_CHECKING:
    from pipeline.aggregate.batch import Batch

# A readiness check: None when it passes, else what is wrong, in words.
Check = Callable[[], str | None]

# Messages per batch the worker takes (PIPELINE_BATCH_SIZE is 10,000 by default).
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000)
# Seconds of one warehouse write, and of one receiver request (Okta gives up after 3 s).
WRITE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# No `*_created` series beside each counter and histogram: every process here is short of
# such detail, and they double what a scrape carries.
disable_created_metrics()


def new_registry() -> CollectorRegistry:
    """A registry of one process: its own metrics, and the process's CPU, memory, files."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


class WorkerMetrics:
    """What `pipeline worker` counts. Events are records (a vendor batch holds many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        on = {"registry": self.registry}
        self.read = Counter(
            "pipeline_worker_events_read_total",
            "Events read from the raw topics, per source (the roster as 'roster')",
            ["source"],
            **on,
        )
        self.stored = Counter(
            "pipeline_worker_events_stored_total",
            "Events written to the warehouse, per source",
            ["source"],
            **on,
        )
        self.dead_lettered = Counter(
            "pipeline_worker_events_dead_lettered_total",
            "Events that became dead letters (unreadable, refused), per source",
            ["source"],
            **on,
        )
        self.batch_messages = Histogram(
            "pipeline_worker_batch_messages",
            "Kafka messages per batch taken from the stream",
            buckets=BATCH_BUCKETS,
            **on,
        )
        self.write_seconds = Histogram(
            "pipeline_worker_warehouse_write_seconds",
            "Seconds of one successful warehouse write of a batch (its splits included)",
            buckets=WRITE_BUCKETS,
            **on,
        )
        self.retries = Counter(
            "pipeline_worker_warehouse_retries_total",
            "Warehouse writes that failed for a transient reason and were retried",
            **on,
        )
        self.last_write = Gauge(
            "pipeline_worker_last_write_timestamp_seconds",
            "Unix time of the last successful warehouse write",
            **on,
        )
        self.lag = Gauge(
            "pipeline_worker_consumer_lag",
            "Messages of a partition assigned to this worker that the group has not committed",
            ["topic", "partition"],
            **on,
        )
        self.assigned = Gauge(
            "pipeline_worker_assigned_partitions",
            "Partitions of the topics it reads assigned to this worker",
            **on,
        )
        self._lagging: set[tuple[str, str]] = set()

    def took(self, messages: int) -> None:
        self.batch_messages.observe(messages)

    def wrote(self, batches: Iterable[Batch], seconds: float) -> None:
        """One successful write of a batch taken from the stream (`write_messages`' batches)."""
        for batch in batches:
            dead: dict[str, int] = {}
            for letter in batch.dead_letters:
                dead[letter.source] = dead.get(letter.source, 0) + 1
            for source, events in batch.received.items():
                self.read.labels(source).inc(events)
                self.stored.labels(source).inc(events - dead.get(source, 0))
                self.dead_lettered.labels(source).inc(dead.get(source, 0))
        self.write_seconds.observe(seconds)
        self.last_write.set(time.time())

    def partitions(self, lag: Mapping[tuple[str, int], int]) -> None:
        """The assigned partitions' lag now; partitions no longer assigned lose their series."""
        labels = {(topic, str(partition)): value for (topic, partition), value in lag.items()}
        for gone in self._lagging - labels.keys():
            self.lag.remove(*gone)
        for key, value in labels.items():
            self.lag.labels(*key).set(value)
        self._lagging = set(labels)
        self.assigned.set(len(labels))


# What a refused request's status means, as the refusals' `reason` label.
REFUSALS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "internal_error",
    503: "kafka_unavailable",
}


class ReceiverMetrics:
    """What `pipeline receive` counts, per route (its path template; `other` for a path that
    is no route, so that no path a sender makes up becomes a series)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        on = {"registry": self.registry}
        self.requests = Counter(
            "pipeline_receive_requests_total", "Requests answered, per route", ["route"], **on
        )
        self.events = Counter(
            "pipeline_receive_events_total",
            "Events produced to Kafka and acknowledged (answered 2xx), per route and source",
            ["route", "source"],
            **on,
        )
        self.refusals = Counter(
            "pipeline_receive_refusals_total",
            "Requests answered other than 2xx, per route and reason",
            ["route", "reason"],
            **on,
        )
        self.seconds = Histogram(
            "pipeline_receive_request_seconds",
            "Seconds from a request's arrival to its answer, per route",
            ["route"],
            buckets=REQUEST_BUCKETS,
            **on,
        )

    def answered(
        self, route: str, status: int, source: str | None, events: int, seconds: float
    ) -> None:
        self.requests.labels(route).inc()
        self.seconds.labels(route).observe(seconds)
        if status < 300:
            if source is not None and events:
                self.events.labels(route, source).inc(events)
        else:
            self.refusals.labels(route, REFUSALS.get(status, f"http_{status}")).inc()


class CollectorMetrics(Collector):
    """What each collector of a `pipeline collect` process reports with `progress`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        on = {"registry": self.registry}
        self.events = Counter(
            "pipeline_collector_events_total",
            "Events produced to Kafka and acknowledged, per collector",
            ["collector"],
            **on,
        )
        self.pages = Counter(
            "pipeline_collector_pages_total", "API pages read, per collector", ["collector"], **on
        )
        self.rate_limited = Counter(
            "pipeline_collector_rate_limited_total",
            "Answers 429 (too many requests) from the vendor's API, per collector",
            ["collector"],
            **on,
        )
        self.errors = Counter(
            "pipeline_collector_errors_total",
            "Failed API calls (other than 429) and failed produces, per collector",
            ["collector"],
            **on,
        )
        self.progressed = Gauge(
            "pipeline_collector_last_progress_timestamp_seconds",
            "Unix time of the collector's last progress report",
            ["collector"],
            **on,
        )
        self._lock = threading.Lock()
        self._totals: dict[str, tuple[int, int, int, int]] = {}
        self._cursors: dict[str, float] = {}
        self.registry.register(self)  # the cursor's age, computed at each scrape

    def progress(
        self,
        collector: str,
        *,
        events: int,
        pages: int,
        rate_limited: int,
        errors: int,
        cursor_time: datetime | None,
    ) -> None:
        """A collector's figures: running totals since it started, and the time its cursor
        stands at (None: no cursor yet). Call it as often as the figures change; the counters
        move by what the totals grew since the last call."""
        totals = (events, pages, rate_limited, errors)
        with self._lock:
            before = self._totals.get(collector, (0, 0, 0, 0))
            if any(now < then for now, then in zip(totals, before, strict=True)):
                raise ValueError(f"collector {collector}: its running totals went down")
            self._totals[collector] = totals
            if cursor_time is not None:
                self._cursors[collector] = cursor_time.timestamp()
        counters = (self.events, self.pages, self.rate_limited, self.errors)
        for counter, now, then in zip(counters, totals, before, strict=True):
            counter.labels(collector).inc(now - then)
        self.progressed.labels(collector).set(time.time())

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "pipeline_collector_cursor_age_seconds",
            "Seconds between now and the time the collector's cursor stands at",
            labels=["collector"],
        )
        with self._lock:
            cursors = dict(self._cursors)
        now = time.time()
        for collector, at in sorted(cursors.items()):
            age.add_metric([collector], max(0.0, now - at))
        yield age

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("pipeline_collector_cursor_age_seconds", "", labels=["collector"])


class MetricsError(RuntimeError):
    """The metrics cannot be served; the message says why, in one line."""


def listen(settings: MetricsSettings) -> socket.socket | None:
    """The listening socket of /metrics, /healthz and /readyz (None when no port is set),
    bound now, so that a port in use stops the process at start with one line."""
    if settings.port is None:
        return None
    where = f"{settings.host}:{settings.port}"
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
        family, kind, protocol, _, address = infos[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as exc:
        raise MetricsError(
            f"cannot serve the metrics on {where}: {exc.strerror or exc} "
            "(PIPELINE_METRICS_HOST, PIPELINE_METRICS_PORT)"
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise MetricsError(
            f"cannot serve the metrics on {where}: {exc.strerror or exc} "
            "(PIPELINE_METRICS_HOST, PIPELINE_METRICS_PORT)"
        ) from None
    sock.setblocking(False)
    return sock


class HealthServer:
    """/metrics, /healthz and /readyz on a socket from `listen`."""

    def __init__(
        self, sock: socket.socket, registry: CollectorRegistry, checks: Mapping[str, Check]
    ) -> None:
        self._sock = sock
        self._registry = registry
        self._checks = dict(checks)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def readiness(self) -> dict[str, str | None]:
        """Each check's problem (None: it passes); a check that raises fails, by its type."""
        found: dict[str, str | None] = {}
        for name, check in self._checks.items():
            try:
                found[name] = check()
            except Exception as exc:  # a bug in a check must not take the server down
                found[name] = f"the check failed ({type(exc).__name__})"
        return found

    async def start(self) -> None:
        """Serve on the running event loop."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> None:
        """Serve from a thread of its own (a process without an event loop, or whose loop
        must not be the one answering): a daemon thread, ended with the process."""
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()

        threading.Thread(target=serve, name="metrics-server", daemon=True).start()
        ready.wait(10)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, self._registry)  # reads /proc too
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        found = self.readiness()
        ready = all(problem is None for problem in found.values())
        checks = {name: problem or "ok" for name, problem in found.items()}
        return web.Response(
            status=200 if ready else 503,
            text=json.dumps({"ready": ready, "checks": checks}),
            content_type="application/json",
        )
