"""`make bench`: throughput of the classifier and of the whole pipeline, on one raw corpus.

The corpus is a simulated rollout (the vendors' raw shapes, in their real mix).
- In process: plain `orjson.loads` (json_decode), stdlib `json.loads`, the classifier, the
  classifier plus its NDJSON line. Each is the best of a few passes over the corpus.
- Through the embedded broker: the corpus is produced to the raw topics, then consumed by
  (a) a Faust agent that only counts the raw events (faust_passthrough: Faust's own cost),
  and (b) `pipeline worker` writing to a fresh embedded warehouse (e2e: raw topic to
  aggregates visible in ClickHouse). Both run as a child process with the same Faust
  settings, each timed from its first committed offset to its last.
- The same corpus delivered as the vendors deliver it (Entra in Event Hubs bodies, Okta in
  Event Hook bodies), through a fresh broker and worker: e2e_native, in events/s (messages/s
  times the corpus' events per message).
The ratios between figures of one run are what to read; absolute numbers move with the
machine. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from pipeline.model import Source, json_line
from pipeline.runtime.broker import BufferedProducer, EmbeddedBroker, create_topics
from pipeline.runtime.lag import wait_until_caught_up
from pipeline.runtime.worker import WorkerProcess, migrate_warehouse
from pipeline.settings import REPO_ROOT, Settings
from pipeline.simulate.output import NativeDelivery
from pipeline.simulate.run import simulate
from pipeline.sources.registry import PARSERS, RejectedEvent

Corpus = list[tuple[Source, bytes]]

FIGURES = REPO_ROOT / "var" / "bench.json"
# The last line's figures, in this order (the interface), then "events".
LAST_LINE_KEYS = (
    "json_decode_events_per_s",
    "classify_events_per_s",
    "faust_passthrough_events_per_s",
    "e2e_events_per_s",
    "e2e_native_events_per_s",
    "worker_peak_rss_mb",
)


def build_corpus(users: int, weeks: int, limit: int) -> Corpus:
    """The simulated raw events of all sources, interleaved as a stream would carry them:
    each source keeps its time order, and the sources advance together."""
    with tempfile.TemporaryDirectory() as tmp:
        simulate(users=users, weeks=weeks, seed=7, out=Path(tmp))
        placed: list[tuple[float, Source, bytes]] = []
        for source in Source:
            lines = (Path(tmp) / f"{source.value}.ndjson").read_bytes().splitlines()
            placed += [(index / len(lines), source, line) for index, line in enumerate(lines)]
    placed.sort(key=lambda item: item[0])
    return [(source, line) for _, source, line in placed[:limit]]


def _rate(corpus: Corpus, work: Callable[[Corpus], None], passes: int) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        work(corpus)
        best = min(best, time.perf_counter() - started)
    return len(corpus) / best


def _orjson_decode(corpus: Corpus) -> None:
    loads = orjson.loads
    for _, raw in corpus:
        loads(raw)


def _json_decode(corpus: Corpus) -> None:
    loads = json.loads
    for _, raw in corpus:
        loads(raw)


def _classify(corpus: Corpus) -> None:
    parsers = PARSERS
    rejected = 0
    for source, raw in corpus:
        try:
            parsers[source](raw)
        except RejectedEvent:
            rejected += 1
    if rejected:
        raise SystemExit(f"the simulated corpus has {rejected} rejects: a parser regressed")


def _classify_and_serialize(corpus: Corpus) -> None:
    parsers = PARSERS
    for source, raw in corpus:
        json_line(parsers[source](raw))


def native_messages(corpus: Corpus) -> Corpus:
    """The corpus as the vendors deliver it (simulate/output.py `NativeDelivery`): Entra in
    Event Hubs bodies, Okta in Event Hook bodies, the other sources one event a message."""
    collected = _Collected()
    with NativeDelivery(collected) as native:
        for source, raw in corpus:
            native.event(source, None, raw + b"\n")
    return collected.messages


class _Collected:
    def __init__(self) -> None:
        self.counts: dict[Source, int] = dict.fromkeys(Source, 0)
        self.messages: Corpus = []

    def event(self, source: Source, key: bytes | None, line: bytes) -> None:
        self.counts[source] += 1
        self.messages.append((source, line.rstrip(b"\n")))

    def close(self) -> None:
        pass


def stream_figures(corpus: Corpus, work: Path) -> dict[str, float]:
    """Events/s of the Faust baseline and of the worker (one event a message, and vendor
    batches), and the worker's peak RSS."""
    with EmbeddedBroker() as broker:
        _produce(broker.bootstrap, corpus)
        baseline = subprocess.Popen(
            [sys.executable, "-m", "pipeline.tools.bench", "--passthrough", broker.bootstrap],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            passthrough = _consumed_rate(
                broker.bootstrap, _PASSTHROUGH_ID, len(corpus), lambda: baseline.poll() is None
            )
        finally:
            baseline.terminate()
            baseline.wait()
        e2e, rss = _worker_rate(broker.bootstrap, len(corpus), work / "e2e")
    native = native_messages(corpus)
    with EmbeddedBroker() as broker:
        _produce(broker.bootstrap, native)
        per_message, native_rss = _worker_rate(broker.bootstrap, len(native), work / "native")
    return {
        "faust_passthrough_events_per_s": passthrough,
        "e2e_events_per_s": e2e,
        # committed messages/s, times the events a message holds on average
        "e2e_native_events_per_s": per_message * len(corpus) / len(native),
        "native_messages": len(native),
        "worker_peak_rss_mb": max(rss, native_rss),
    }


def _produce(bootstrap: str, messages: Corpus) -> None:
    topics = Settings().topics
    create_topics(bootstrap, topics.inputs(), topics.partitions)
    producer = BufferedProducer(bootstrap)
    for source, raw in messages:
        producer.send(topics.raw(source), None, raw)
    producer.close()


def _worker_rate(bootstrap: str, messages: int, work: Path) -> tuple[float, float]:
    """Messages/s of `pipeline worker` into a fresh embedded warehouse, and its peak RSS."""
    work.mkdir(parents=True)
    env = {
        "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
        "PIPELINE_APP_ID": "bench-e2e",
        "PIPELINE_CLICKHOUSE_DSN": f"chdb://{work}/wh",
        "PIPELINE_STATE_DIR": str(work / "faust"),
    }
    migrate_warehouse(Settings(clickhouse_dsn=env["PIPELINE_CLICKHOUSE_DSN"]))
    with WorkerProcess(env, work / "worker.log") as worker:
        rate = _consumed_rate(bootstrap, "bench-e2e", messages, worker.alive)
        return rate, worker.peak_rss_mb()


_PASSTHROUGH_ID = "bench-passthrough"


def _consumed_rate(bootstrap: str, group: str, events: int, alive: Callable[[], bool]) -> float:
    """Events/s between the group's first committed offset and its last."""
    settings = Settings()
    marks: list[tuple[float, int]] = []
    wait_until_caught_up(
        bootstrap,
        group,
        settings.kafka,
        settings.topics.inputs(),
        at_least=events,
        timeout=1800,
        alive=alive,
        progress=lambda done, _: marks.append((time.monotonic(), done)),
        poll=0.25,
    )
    started, first = next((t, n) for t, n in marks if n > 0)
    finished = next(t for t, n in marks if n >= events)
    return (events - first) / (finished - started)


def run_passthrough(bootstrap: str) -> None:
    """The Faust baseline: an agent that takes the raw events in batches and counts them."""
    import faust

    from pipeline.runtime.app import faust_app

    settings = Settings()
    app = faust_app(settings, bootstrap, _PASSTHROUGH_ID)
    raw = app.topic(*settings.topics.inputs(), key_serializer="raw", value_serializer="raw")

    @app.agent(raw)
    async def count(stream):  # type: ignore[no-untyped-def]
        seen = 0
        async for events in stream.take_events(settings.batch_size, settings.batch_seconds):
            seen += len(events)

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--events", type=int, default=100_000, help="corpus size cap")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--passthrough", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.passthrough:
        run_passthrough(args.passthrough)
        return 0

    corpus = build_corpus(args.users, args.weeks, args.events)
    size = sum(len(raw) for _, raw in corpus) / len(corpus)
    print(f"corpus: {len(corpus):,} raw events, {size:,.0f} bytes each on average", flush=True)
    figures = {
        "json_decode_events_per_s": _rate(corpus, _orjson_decode, args.passes),
        "stdlib_json_decode_events_per_s": _rate(corpus, _json_decode, args.passes),
        "classify_events_per_s": _rate(corpus, _classify, args.passes),
        "classify_and_serialize_events_per_s": _rate(corpus, _classify_and_serialize, args.passes),
    }
    decode = figures["json_decode_events_per_s"]
    for name, value in figures.items():
        print(f"{name:40s} {value:12,.0f} /s   {value / decode:5.2f} x orjson.loads")
    for source in Source:
        part = [item for item in corpus if item[0] is source]
        if part:
            ratio = _rate(part, _classify, args.passes) / _rate(part, _orjson_decode, args.passes)
            print(
                f"  {source.value:8s} {len(part):7,d} events: classify {ratio:5.2f} x orjson.loads"
            )
    print("through the embedded broker (one worker) ...", flush=True)
    with tempfile.TemporaryDirectory() as work:
        streamed = stream_figures(corpus, Path(work))
    passthrough = streamed["faust_passthrough_events_per_s"]
    for name in ("faust_passthrough_events_per_s", "e2e_events_per_s", "e2e_native_events_per_s"):
        value = streamed[name]
        print(
            f"{name:40s} {value:12,.0f} /s   {value / decode:5.2f} x orjson.loads"
            f"   {value / passthrough:5.2f} x faust_passthrough"
        )
    print(f"{'worker_peak_rss_mb':40s} {streamed['worker_peak_rss_mb']:12,.0f} MB")
    figures |= streamed
    print(
        f"ratios: classify / json_decode {figures['classify_events_per_s'] / decode:.3f}, "
        f"e2e / faust_passthrough {streamed['e2e_events_per_s'] / passthrough:.3f}, "
        f"e2e_native / faust_passthrough {streamed['e2e_native_events_per_s'] / passthrough:.3f} "
        f"({len(corpus):,} events in {streamed['native_messages']:,} messages)"
    )
    last_line = {key: round(figures[key]) for key in LAST_LINE_KEYS}
    print(json.dumps(last_line | {"events": len(corpus)}))
    # `make soak` streams at half the end-to-end figure of the last run
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(last_line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
