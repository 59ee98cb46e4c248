"""`make soak`: the worker under a steady stream for a set time.

Simulated raw events (all sources, in time order) go to the raw topics at a steady rate, by
default half the end-to-end throughput the last `make bench` measured (var/bench.json), for
ten minutes, while one `pipeline worker` consumes them into a scratch warehouse. Every
interval it prints the time, messages produced, consumer lag (end offsets minus committed) and
the worker's resident memory. Then it lets the worker catch up and gives a verdict:

- lag bounded: after warm-up (the group's first commit), the lag never exceeded a minute of
  events, and its second half's peak is not above twice the first half's (plus ten seconds
  of events);
- memory flat: the worker's RSS at the end is within 15% (+30 MB) of its RSS a quarter of the
  way through the steady part;
- nothing lost: every message produced is a stored event (each has its own id).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass

from pipeline.runtime.broker import BufferedProducer, create_topics
from pipeline.runtime.lag import GroupLag, wait_until_caught_up
from pipeline.runtime.worker import WorkerProcess, kafka_bootstrap, migrate_warehouse
from pipeline.settings import REPO_ROOT, Settings
from pipeline.sinks.warehouse import Warehouse
from pipeline.tools.bench import FIGURES as BENCH_FIGURES
from pipeline.tools.bench import build_corpus

WORK = REPO_ROOT / "var" / "soak"
GROUP = "soak"
FALLBACK_RATE = 1200.0
# Raw events per simulated user over 30 weeks, to size the simulation to the run.
EVENTS_PER_USER = 230


@dataclass
class Sample:
    seconds: float
    produced: int
    lag: int
    rss_mb: float


def default_rate() -> tuple[float, str]:
    """Half the last measured end-to-end throughput, and where that figure came from."""
    try:
        e2e = json.loads(BENCH_FIGURES.read_text())["e2e_events_per_s"]
        return e2e / 2, f"half of make bench's e2e ({e2e:,.0f}/s, {BENCH_FIGURES})"
    except (OSError, ValueError, KeyError):
        return (
            FALLBACK_RATE,
            f"no {BENCH_FIGURES}: run make bench first; using {FALLBACK_RATE:,.0f}/s",
        )


def steady(samples: list[Sample]) -> list[Sample]:
    """The samples after warm-up: from the first one where the worker had committed some
    of what was produced (joining the group takes seconds on a fresh broker)."""
    start = next((i for i, s in enumerate(samples) if s.lag < s.produced), len(samples))
    return samples[start:]


def verdict(samples: list[Sample], rate: float, produced: int, stored: int) -> list[str]:
    """What failed, in words, judged on the steady samples; empty when the run passed."""
    samples = steady(samples)
    problems = [] if samples else ["the worker never committed anything while producing"]
    half = len(samples) // 2
    first = max((s.lag for s in samples[:half]), default=0)
    second = max((s.lag for s in samples[half:]), default=0)
    if max(first, second) > rate * 60:
        problems.append(f"lag reached {max(first, second):,}: over a minute of events")
    if second > 2 * first + rate * 10:
        problems.append(f"lag grew: peak {first:,} in the first half, {second:,} in the second")
    quarter = samples[len(samples) // 4].rss_mb if samples else 0
    end = samples[-1].rss_mb if samples else 0
    if end > quarter * 1.15 + 30:
        problems.append(f"memory grew: {quarter:,.0f} MB a quarter in, {end:,.0f} MB at the end")
    if stored != produced:
        problems.append(f"{produced:,} produced but {stored:,} stored")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=None, help="events/s (default: see above)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args(argv)
    rate, why = (args.rate, "--rate") if args.rate else default_rate()
    seconds = args.minutes * 60
    needed = int(rate * seconds) + 1
    print(f"soak: {rate:,.0f} events/s ({why}) for {args.minutes:g} min", flush=True)
    corpus = build_corpus(needed // EVENTS_PER_USER + 50, 30, needed)
    if len(corpus) < needed:
        print(f"soak: the corpus has {len(corpus):,} events, fewer than {needed:,}")
        return 2
    shutil.rmtree(WORK, ignore_errors=True)
    settings = Settings()
    topics = settings.topics
    with kafka_bootstrap(settings) as bootstrap:
        create_topics(bootstrap, topics.inputs(), topics.partitions, settings.kafka)
        env = {
            "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
            "PIPELINE_APP_ID": GROUP,
            "PIPELINE_CLICKHOUSE_DSN": f"chdb://{WORK / 'clickhouse'}",
            "PIPELINE_STATE_DIR": str(WORK / "faust"),
        }
        migrate_warehouse(Settings(clickhouse_dsn=env["PIPELINE_CLICKHOUSE_DSN"]))
        producer = BufferedProducer(bootstrap, **settings.kafka.aiokafka_options())
        lag = GroupLag(bootstrap, GROUP, settings.kafka)
        samples: list[Sample] = []
        with WorkerProcess(env, WORK / "worker.log") as worker:
            started = time.monotonic()
            produced = 0
            next_sample = args.every
            while (elapsed := time.monotonic() - started) < seconds:
                due = min(needed, int(rate * elapsed))
                for source, raw in corpus[produced:due]:
                    producer.send(topics.raw(source), None, raw)
                producer.flush()
                produced = max(produced, due)
                if elapsed >= next_sample:
                    next_sample += args.every
                    sample = Sample(elapsed, produced, lag.lag(topics.inputs()), worker.rss_mb())
                    samples.append(sample)
                    print(
                        f"{sample.seconds:6.0f} s  produced {sample.produced:9,}  "
                        f"lag {sample.lag:8,}  worker RSS {sample.rss_mb:6.0f} MB",
                        flush=True,
                    )
                    if not worker.alive():
                        print(worker.log_tail(), file=sys.stderr)
                        return 1
                time.sleep(0.05)
            producer.close()
            lag.close()
            print(f"stream over: {produced:,} events; letting the worker catch up", flush=True)
            wait_until_caught_up(
                bootstrap,
                GROUP,
                settings.kafka,
                topics.inputs(),
                at_least=produced,
                timeout=1800,
                alive=worker.alive,
            )
            worker.stop()
    with Warehouse(env["PIPELINE_CLICKHOUSE_DSN"]) as warehouse:
        stored = sum(
            warehouse.query(f"SELECT count() FROM {table} FINAL")[0][0]
            for table in ("auth_events", "enrollment_events", "tickets", "dead_letters")
        )
    problems = verdict(samples, rate, produced, stored)
    settled = steady(samples)
    print(f"produced {produced:,}, stored {stored:,}")
    if settled:
        print(
            f"after warm-up ({settled[0].seconds:.0f} s): peak lag "
            f"{max(s.lag for s in settled):,}, worker RSS "
            f"{settled[len(settled) // 4].rss_mb:,.0f} -> {settled[-1].rss_mb:,.0f} MB"
        )
    print("verdict: " + ("PASS" if not problems else "FAIL: " + "; ".join(problems)))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
