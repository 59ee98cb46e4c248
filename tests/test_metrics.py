"""Metrics and health (pipeline/runtime/metrics.py) of the real processes: `pipeline worker`
and `pipeline receive` as child processes through the real broker, the warehouse the real
engine, /metrics, /healthz and /readyz read over HTTP as Prometheus and Kubernetes read them.

During a simulated run (Okta through the receiver as Event Hook bodies, every other source
straight to its topic, malformed events among them), the worker's counts equal what the
warehouse stored and what became dead letters, and the receiver's equal what was posted.
The worker's readiness fails while its ClickHouse server is away and recovers with it, while
its watchdog leaves the worker, busy retrying its batch, alone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from clickhouse_http import ClickHouseHttp
from commands import pipeline_cli
from prometheus_client.parser import text_string_to_metric_families
from streaming import catch_up, produce, worker_env

from pipeline.model import Source
from pipeline.runtime.broker import free_port
from pipeline.runtime.metrics import REFUSALS, CollectorMetrics, HealthServer, listen
from pipeline.runtime.process import stop_process
from pipeline.runtime.worker import WorkerProcess, migrate_warehouse
from pipeline.settings import Metrics, Settings
from pipeline.simulate.run import simulate
from pipeline.sinks.warehouse import Warehouse

TOPICS = Settings().topics
OKTA_SECRET = "okta-hook-secret-for-metrics-3b7e"
TOKEN = "bearer-token-for-metrics-90ac"
HOOK_EVENTS = 50  # Okta sends up to 50 events per Event Hook request
MALFORMED = {
    TOPICS.entra: [b'{"id": 42, "createdDateTime": []}', b'"a string"'],
    TOPICS.duo: [b"null"],
    TOPICS.tickets: [b'{"sys_id": "x"}'],
    TOPICS.roster: [b'{"user": "no.department@example.com"}'],
}
# Posted to /ingest/okta: JSON the receiver takes, records the Okta parser cannot read.
OKTA_MALFORMED = [b'{"uuid": "9f1", "published": "2026-03-"}', b'{"no": "fields"}']
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def scrape(port: int) -> Samples:
    return samples_of(scraped(port))


def scraped(port: int) -> str:
    status, text = get(port, "/metrics")
    assert status == 200
    return text


def samples_of(text: str) -> Samples:
    """Every sample of a /metrics answer, as Prometheus parses the text format."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {
        dict(labels)[label]: found for (metric, labels), found in samples.items() if metric == name
    }


def eventually(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.5)


def ready(port: int) -> tuple[bool, dict[str, str]]:
    status, body = get(port, "/readyz")
    answer = json.loads(body)
    assert (status == 200) == answer["ready"]
    return answer["ready"], answer["checks"]


def label_values(samples: Samples) -> set[str]:
    """Every label's values but a histogram bucket's bound (`le`)."""
    return {value for _, labels in samples for name, value in labels if name != "le"}


class Receiving:
    """`pipeline receive` as a child process, with its metrics on a port of their own."""

    def __init__(self, bootstrap: str, log: Path) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
            "PIPELINE_RECEIVE_PORT": str(self.port),
            "PIPELINE_RECEIVE_OKTA_SECRET": OKTA_SECRET,
            "PIPELINE_RECEIVE_TOKEN": TOKEN,
            "PIPELINE_METRICS_PORT": str(self.metrics_port),
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", "receive"],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self) -> Receiving:
        def up() -> bool:
            assert self.process.poll() is None, "the receiver exited"
            try:
                return ready(self.metrics_port)[0]
            except OSError:
                return False

        eventually(up, 60, "the receiver ready")
        return self

    def __exit__(self, *exc: object) -> None:
        assert stop_process(self.process, timeout=30) == 0


def test_counts_equal_what_was_stored_dead_lettered_and_posted(broker: str, tmp_path: Path) -> None:
    started = time.time()
    rollout = tmp_path / "rollout"
    simulate(users=40, weeks=8, seed=5, out=rollout)
    # Okta goes through the receiver; every other source straight to its topic.
    direct = tmp_path / "direct"
    shutil.copytree(rollout, direct)
    (direct / "okta.ndjson").write_bytes(b"")
    okta = (rollout / "okta.ndjson").read_bytes().splitlines()
    sent = {
        name: len((rollout / f"{name}.ndjson").read_bytes().splitlines())
        for name in [*(source.value for source in Source), "roster"]
    }
    dsn = f"chdb://{tmp_path / 'wh'}"
    migrate_warehouse(Settings(clickhouse_dsn=dsn))
    messages = produce(broker, direct, MALFORMED)
    worker_port = free_port()
    env = worker_env(broker, dsn, PIPELINE_METRICS_PORT=str(worker_port))
    with Receiving(broker, tmp_path / "receive.log") as receiver:
        hook = {"Authorization": OKTA_SECRET, "Content-Type": "application/json"}
        hooks = [okta[at : at + HOOK_EVENTS] for at in range(0, len(okta), HOOK_EVENTS)]
        for events in hooks:
            body = b'{"data": {"events": [' + b",".join(events) + b"]}}"
            assert post(f"{receiver.url}/okta", body, hook) == 200
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert post(f"{receiver.url}/ingest/okta", b"\n".join(OKTA_MALFORMED), bearer) == 200
        messages += len(hooks) + 1
        # Refused: a wrong secret twice, a body that is no event, a path that is no route.
        wrong = {"Authorization": "not-the-secret"}
        assert [post(f"{receiver.url}/okta", b"{}", wrong) for _ in range(2)] == [401, 401]
        assert post(f"{receiver.url}/ingest/okta", b'"a string"', bearer) == 400
        assert post(f"{receiver.url}/secret-path-of-someone", b"{}", bearer) == 404
        receiver_text = scraped(receiver.metrics_port)
    received = samples_of(receiver_text)

    def lag_settled() -> bool:  # the watchdog's next question to Kafka: all committed
        lag = by_label(scrape(worker_port), "pipeline_worker_consumer_lag", "topic")
        return bool(lag) and not any(lag.values())

    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        try:
            catch_up(broker, messages, worker.alive, timeout=300)
            samples = scrape(worker_port)
            eventually(lag_settled, 60, "the lag of every partition 0")
            checks = ("broker", "warehouse", "partitions", "stopping")
            assert ready(worker_port) == (True, dict.fromkeys(checks, "ok"))
            assert get(worker_port, "/healthz") == (200, '{"alive": true}')
            worker_text = scraped(worker_port)
        except Exception:
            print(worker.log_tail(60))
            raise
        assert worker.stop() == 0
    final = samples_of(worker_text)

    # The receiver: each request once, per route; events as posted; refusals by reason.
    assert by_label(received, "pipeline_receive_requests_total", "route") == {
        "/okta": len(hooks) + 2,
        "/ingest/{source}": 2,
        "other": 1,
    }
    assert value(received, "pipeline_receive_events_total", route="/okta", source="okta") == len(
        okta
    )
    assert (
        value(received, "pipeline_receive_events_total", route="/ingest/{source}", source="okta")
        == 2
    )
    refusals = {
        (dict(labels)["route"], dict(labels)["reason"]): found
        for (name, labels), found in received.items()
        if name == "pipeline_receive_refusals_total"
    }
    assert refusals == {
        ("/okta", "unauthorized"): 2,
        ("/ingest/{source}", "bad_request"): 1,
        ("other", "not_found"): 1,
    }
    assert (
        value(received, "pipeline_receive_request_seconds_count", route="/okta") == len(hooks) + 2
    )

    # The worker: read = stored + dead letters, per source, and the warehouse agrees.
    dead = dict.fromkeys(sent, 0)
    for topic, bad in MALFORMED.items():
        source = TOPICS.source_of()[topic]
        dead[source.value if source else "roster"] += len(bad)
    dead["okta"] += len(OKTA_MALFORMED)
    read = by_label(samples, "pipeline_worker_events_read_total", "source")
    stored = by_label(samples, "pipeline_worker_events_stored_total", "source")
    dead_lettered = by_label(samples, "pipeline_worker_events_dead_lettered_total", "source")
    present = {source for source, count in sent.items() if count or dead[source]}
    assert read == {source: sent[source] + dead[source] for source in present}
    assert stored == {source: sent[source] for source in present}
    assert dead_lettered == {source: dead[source] for source in present}
    with Warehouse(dsn) as warehouse:
        in_tables = dict(
            warehouse.query(
                "SELECT source, count() FROM (SELECT DISTINCT toString(source) AS source, "
                "event_id FROM auth_events UNION ALL SELECT DISTINCT toString(source), event_id "
                "FROM enrollment_events) GROUP BY source"
            )
        )
        in_tables["tickets"] = warehouse.query("SELECT count(DISTINCT event_id) FROM tickets")[0][0]
        in_tables["roster"] = warehouse.query("SELECT count(DISTINCT user) FROM roster")[0][0]
        letters = dict(warehouse.query("SELECT source, count() FROM dead_letters FINAL GROUP BY 1"))
    assert {source: count for source, count in in_tables.items() if count} == {
        source: count for source, count in stored.items() if count
    }
    assert letters == {source: count for source, count in dead_lettered.items() if count}
    assert value(samples, "pipeline_worker_batch_messages_sum") == messages
    batches = value(samples, "pipeline_worker_batch_messages_count")
    assert batches >= 1
    assert value(samples, "pipeline_worker_warehouse_write_seconds_count") == batches
    assert value(samples, "pipeline_worker_warehouse_retries_total") == 0
    assert value(samples, "pipeline_worker_last_write_timestamp_seconds") >= started
    assert (
        value(final, "pipeline_worker_assigned_partitions")
        == len(TOPICS.inputs()) * TOPICS.partitions
    )
    assert value(final, "process_resident_memory_bytes") > 0

    # Labels hold only what the pipeline names: sources, topics, partitions, routes, reasons.
    names = {source.value for source in Source} | {"roster"}
    partitions = {str(n) for n in range(TOPICS.partitions)}
    assert label_values(final) <= names | set(TOPICS.inputs()) | partitions
    routes = {"/okta", "/ping", "/ingest/{source}", "other"}
    assert label_values(received) <= names | routes | set(REFUSALS.values())
    # ... and no secret, path or login is anywhere in either answer.
    logins = [orjson.loads(line)["user"] for line in (rollout / "roster.ndjson").open("rb")]
    for text in (worker_text, receiver_text):
        for secret in (OKTA_SECRET, TOKEN, "secret-path-of-someone", *logins):
            assert secret not in text


def test_readyz_fails_while_the_warehouse_is_away_and_recovers(broker: str, tmp_path: Path) -> None:
    server = ClickHouseHttp(tmp_path / "clickhouse").start()
    try:
        rollout = tmp_path / "rollout"
        simulate(users=20, weeks=4, seed=9, out=rollout)
        first, second = tmp_path / "first", tmp_path / "second"
        for part in (first, second):
            part.mkdir()
        for path in rollout.glob("*.ndjson"):
            rows = path.read_bytes().splitlines(keepends=True)
            (first / path.name).write_bytes(b"".join(rows[: len(rows) // 2]))
            (second / path.name).write_bytes(b"".join(rows[len(rows) // 2 :]))
        migrate_warehouse(Settings(clickhouse_dsn=server.dsn))
        sent = produce(broker, first)
        port = free_port()
        # A short watchdog: a worker retrying its batch must not be taken for a stalled one.
        env = worker_env(
            broker, server.dsn, PIPELINE_METRICS_PORT=str(port), PIPELINE_WATCHDOG_SECONDS="4"
        )
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            try:
                catch_up(broker, sent, worker.alive, timeout=240)
                eventually(lambda: ready(port)[0], 60, "ready with the warehouse there")
                server.stop()
                sent += produce(broker, second)
                eventually(lambda: not ready(port)[0], 60, "unready with the warehouse away")
                checks = ready(port)[1]
                assert checks["warehouse"] != "ok" and checks["broker"] == "ok", checks
                away = time.monotonic()
                while time.monotonic() - away < 15:  # nearly four times the watchdog's limit
                    assert worker.alive(), worker.log_tail(30)
                    time.sleep(1)
                assert value(scrape(port), "pipeline_worker_warehouse_retries_total") >= 1
                server.start()
                eventually(lambda: ready(port)[0], 90, "ready again with the warehouse back")
                catch_up(broker, sent, worker.alive, timeout=240)
            except Exception:
                print(worker.log_tail(60))
                raise
            assert worker.stop() == 0
        assert "watchdog:" not in (tmp_path / "worker.log").read_text()
        with Warehouse(server.dsn) as warehouse:
            (written,) = warehouse.query("SELECT sum(messages) FROM ingest_batches")[0]
        assert written >= sent
    finally:
        server.stop()


def test_collector_progress_is_served_with_the_cursors_age_and_readiness_says_why() -> None:
    metrics = CollectorMetrics()
    port = free_port()
    sock = listen(Metrics(host="127.0.0.1", port=port))
    assert sock is not None
    vendor: dict[str, str | None] = {"problem": None}

    def broken() -> str | None:
        raise RuntimeError("a bug in a check")

    checks = {"vendor": lambda: vendor["problem"]}
    HealthServer(sock, metrics.registry, checks).start_in_thread()
    now = datetime.now(UTC)
    metrics.progress(
        "okta",
        events=10,
        pages=2,
        rate_limited=1,
        errors=0,
        cursor_time=now - timedelta(minutes=10),
    )
    metrics.progress(
        "okta", events=25, pages=3, rate_limited=1, errors=2, cursor_time=now - timedelta(minutes=1)
    )
    metrics.progress(
        "duo-authentication", events=0, pages=1, rate_limited=0, errors=0, cursor_time=None
    )
    samples = scrape(port)
    assert value(samples, "pipeline_collector_events_total", collector="okta") == 25
    assert value(samples, "pipeline_collector_pages_total", collector="okta") == 3
    assert value(samples, "pipeline_collector_rate_limited_total", collector="okta") == 1
    assert value(samples, "pipeline_collector_errors_total", collector="okta") == 2
    assert value(samples, "pipeline_collector_pages_total", collector="duo-authentication") == 1
    ages = by_label(samples, "pipeline_collector_cursor_age_seconds", "collector")
    assert set(ages) == {"okta"} and 60 <= ages["okta"] < 120
    assert (
        value(samples, "pipeline_collector_last_progress_timestamp_seconds", collector="okta")
        >= now.timestamp()
    )
    with pytest.raises(ValueError, match="went down"):
        metrics.progress("okta", events=24, pages=3, rate_limited=1, errors=2, cursor_time=None)

    assert ready(port) == (True, {"vendor": "ok"})
    vendor["problem"] = "the Okta API answers 401: grant okta.logs.read"
    assert ready(port) == (False, {"vendor": "the Okta API answers 401: grant okta.logs.read"})
    checks["broken"] = broken
    server = HealthServer(socket.create_server(("127.0.0.1", 0)), metrics.registry, checks)
    assert server.readiness()["broken"] == "the check failed (RuntimeError)"


def test_a_metrics_port_in_use_stops_the_worker_and_the_receiver_with_one_line(
    tmp_path: Path,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        worker = pipeline_cli(
            "worker",
            env={"PIPELINE_METRICS_PORT": port, "PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path}/wh"},
            timeout=120,
        )
        receiver = pipeline_cli(
            "receive",
            env={
                "PIPELINE_METRICS_PORT": port,
                "PIPELINE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                "PIPELINE_RECEIVE_TOKEN": TOKEN,
            },
            timeout=120,
        )
    for done, code in ((worker, 2), (receiver, 1)):
        assert done.returncode == code, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert f"cannot serve the metrics on 127.0.0.1:{port}" in line
        assert "PIPELINE_METRICS_PORT" in line
    assert not list(tmp_path.glob("wh/*")), "the worker opened the warehouse first"
