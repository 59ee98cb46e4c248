"""`make bench`: classifier throughput against plain JSON decoding of the same raw corpus.

The corpus is a simulated rollout (the vendors' raw shapes, in their real mix). Each figure
is the best of a few passes over the whole corpus in this one process, so the ratios
between them are what to read; the absolute numbers move with the machine.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from pipeline.model import Source, json_line
from pipeline.simulate.run import simulate
from pipeline.sources.registry import PARSERS, RejectedEvent

Corpus = list[tuple[Source, bytes]]


def build_corpus(users: int, weeks: int, limit: int) -> Corpus:
    with tempfile.TemporaryDirectory() as tmp:
        simulate(users=users, weeks=weeks, seed=7, out=Path(tmp))
        corpus: Corpus = []
        for source in Source:
            lines = (Path(tmp) / f"{source.value}.ndjson").read_bytes().splitlines()
            corpus.extend((source, line) for line in lines)
    random.Random(0).shuffle(corpus)  # interleave the sources, as a mixed stream would
    return corpus[:limit]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--events", type=int, default=100_000, help="corpus size cap")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args(argv)

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
    result = {key: round(value) for key, value in figures.items()}
    result["classify_to_json_decode_ratio"] = round(figures["classify_events_per_s"] / decode, 3)
    result["events"] = len(corpus)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
