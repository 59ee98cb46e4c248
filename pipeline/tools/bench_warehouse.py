"""`pipeline bench warehouse`: what the dashboards cost at the size of a real workforce.

A simulated rollout of --users over --weeks (the example plan, moved to end before today)
is written into a scratch embedded warehouse through the batch builder, as the worker writes
it: batches of one source's messages, the sources interleaved in time as a stream carries
them. The simulator's shards stream into the fill through named pipes, so nothing the size of
the rollout but the warehouse is written to disk. Once the engine's background merges have
settled, every query of `pipeline grafana check` (panels, template variables, alert rules)
runs over the last --window-days of data, one at a time: once to warm the engine, then three
times, the best counted; so does `SELECT * FROM weekly_metrics`, the weekly report's query.

Printed: the slowest queries, each table's rows and bytes on disk, and last one JSON line
with the figures (LAST_LINE_KEYS). With --dir the warehouse is kept there, and a later run
with the same size and seed reuses it instead of filling it again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from pipeline.aggregate.batch import BatchRules, RawMessage, build_batch
from pipeline.grafana import check
from pipeline.grafana.alerts import rule_groups
from pipeline.grafana.dashboards import dashboards
from pipeline.model import Source
from pipeline.plan import RolloutPlan, load_plan
from pipeline.settings import Settings
from pipeline.simulate.engine import SimulationConfig, build_workforce
from pipeline.simulate.output import ROSTER_FILE, merge_shards, write_roster
from pipeline.simulate.run import SHARDS, _run_shard
from pipeline.sinks.warehouse import Warehouse, WarehouseError

# The last line's keys, in this order (issue 16).
LAST_LINE_KEYS = (
    "users",
    "weeks",
    "auth_events",
    "sign_ins",
    "queries",
    "total_s",
    "max_s",
    "p50_s",
    "weekly_metrics_s",
    "fill_events_per_s",
)
BATCH = 5000  # messages per batch, as the worker takes them (PIPELINE_BATCH_SIZE's default)
SEED = 1
MARKER = "bench-warehouse.json"  # in --dir: what was filled there, and how fast
MERGES_SETTLE_S = 600
RUNS = 3  # timed runs of each query, after one to warm the engine
T = TypeVar("T")


@dataclass(frozen=True)
class Timed:
    where: str
    seconds: float
    rows: int
    problem: str | None


class SimulatedStream:
    """The rollout's raw records in time order, from the simulator's shards running in
    child processes. The children are forked when this is made: before the embedded engine
    opens in this process, whose threads a fork would copy mid-flight."""

    def __init__(self, plan: RolloutPlan, config: SimulationConfig, scratch: Path) -> None:
        self._pipes = [scratch / f"shard-{n}.pipe" for n in range(SHARDS)]
        for pipe in self._pipes:
            os.mkfifo(pipe)
        self._pool = multiprocessing.get_context("fork").Pool(SHARDS)
        self._done = self._pool.starmap_async(
            _run_shard, [(config, plan, n, pipe) for n, pipe in enumerate(self._pipes)]
        )

    def records(self) -> Iterator[tuple[Source, bytes]]:
        """(source, record JSON) of every record, in time order; then the shards' outcome."""
        for source, _user, line in merge_shards(self._pipes):
            yield source, line.rstrip(b"\n")
        self._done.get()  # a shard's exception, raised here

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # On an error the shards may be blocked on a pipe nobody reads: stop them.
        self._pool.terminate() if kind is not None else self._pool.close()
        self._pool.join()


def fill(
    warehouse: Warehouse,
    rules: BatchRules,
    records: Iterator[tuple[Source, bytes]],
    roster: list[bytes],
) -> int:
    """Write the roster, then the records, in batches of BATCH messages of one source (each
    source's topic, partition 0, from offset 0); the number of events written."""
    settings = Settings()
    offsets: Counter[str] = Counter()

    def write(topic: str, values: Sequence[bytes]) -> None:
        first = offsets[topic]
        messages = [RawMessage(topic, 0, first + i, None, value) for i, value in enumerate(values)]
        offsets[topic] += len(values)
        warehouse.write(build_batch(messages, rules))

    for start in range(0, len(roster), BATCH):
        write(settings.topics.roster, roster[start : start + BATCH])
    pending: dict[Source, list[bytes]] = defaultdict(list)
    for source, value in records:
        batch = pending[source]
        batch.append(value)
        if len(batch) == BATCH:
            write(settings.topics.raw(source), batch)
            batch.clear()
    for source, batch in pending.items():
        if batch:
            write(settings.topics.raw(source), batch)
    return sum(offsets.values())


def settle(warehouse: Warehouse, limit_s: float = MERGES_SETTLE_S) -> float:
    """Wait until the engine has no merge or mutation running (at most `limit_s`): a
    warehouse a worker filled over weeks has long settled. The seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        ((running,),) = warehouse.query(
            "SELECT (SELECT count() FROM system.merges) "
            "+ (SELECT count() FROM system.mutations WHERE NOT is_done)"
        )
        if not running:
            break
        time.sleep(1)
    return time.perf_counter() - started


def time_queries(warehouse: Warehouse, window: timedelta) -> list[Timed]:
    """Each Grafana query over the last `window` of data as `grafana check` runs it, warm
    (all of them run once first), its best of RUNS: what it costs, not what else the machine
    was doing."""
    found = check.queries(dashboards(), rule_groups())
    end = check.data_end(warehouse)
    start = end - window
    check.run(warehouse, found, start=start, end=end)
    timed = []
    for query in found:
        best, (outcome,) = best_of(check.run, warehouse, [query], start=start, end=end)
        timed.append(Timed(query.where, best, outcome.rows, outcome.problem))
    return timed


def timed_query(warehouse: Warehouse, sql: str) -> float:
    """Seconds of `sql`, warm, its best of RUNS."""
    warehouse.query(sql)
    return best_of(warehouse.query, sql)[0]


def best_of(work: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    """The fewest seconds of RUNS calls of `work(*args, **kwargs)`, and what the last returned."""
    best = float("inf")
    for _ in range(RUNS):
        began = time.perf_counter()
        result = work(*args, **kwargs)
        best = min(best, time.perf_counter() - began)
    return best, result


def sizes(warehouse: Warehouse) -> list[tuple[str, int, int]]:
    """(table, rows, bytes on disk) of the pipeline's tables, largest first."""
    return warehouse.query(
        "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts "
        "WHERE active AND database = currentDatabase() "
        "GROUP BY table ORDER BY sum(bytes_on_disk) DESC"
    )


def run(users: int, weeks: int, window_days: int, seed: int, keep: Path | None, top: int) -> int:
    settings = Settings()
    plan = load_plan(settings.plan_file).ending_before(datetime.now(UTC).date(), weeks)
    config = SimulationConfig(users=users, weeks=weeks, seed=seed)
    with ExitStack() as stack:
        scratch = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        scratch.mkdir(parents=True, exist_ok=True)
        marker = scratch / MARKER
        size = {"users": users, "weeks": weeks, "seed": seed}
        filled = json.loads(marker.read_text()) if marker.exists() else {}
        reuse = {key: filled.get(key) for key in size} == size
        stream = None
        if not reuse:
            if (scratch / "wh").exists():
                raise WarehouseError(f"{scratch / 'wh'} holds another warehouse: remove it")
            workforce = build_workforce(random.Random(seed), config, plan)
            write_roster(scratch, workforce)
            stream = stack.enter_context(SimulatedStream(plan, config, scratch))
        warehouse = stack.enter_context(Warehouse(f"chdb://{scratch / 'wh'}"))
        warehouse.migrate()
        if stream is not None:
            warehouse.load_plan(plan)
            print(
                f"filling {users:,} users x {weeks} weeks through the batch builder ...", flush=True
            )
            roster = (scratch / ROSTER_FILE).read_bytes().splitlines()
            began = time.perf_counter()
            events = fill(warehouse, rules_for(settings, plan, weeks), stream.records(), roster)
            filled = size | {"events": events, "fill_s": time.perf_counter() - began}
            marker.write_text(json.dumps(filled) + "\n")
        print(f"filled: {filled['events']:,} events in {filled['fill_s']:.0f} s", flush=True)
        print(f"background merges settled after {settle(warehouse):.0f} s", flush=True)
        load_before = os.getloadavg()
        timed = time_queries(warehouse, timedelta(days=window_days))
        weekly_s = timed_query(warehouse, "SELECT * FROM weekly_metrics")
        load = (load_before, os.getloadavg())
        ((auth_events,),) = warehouse.query("SELECT count() FROM auth_events")
        ((sign_ins,),) = warehouse.query("SELECT count() FROM sign_ins")
        stored = sizes(warehouse)
    seconds = [t.seconds for t in timed]
    figures: dict[str, Any] = {
        "users": users,
        "weeks": weeks,
        "auth_events": auth_events,
        "sign_ins": sign_ins,
        "queries": len(timed),
        "total_s": round(sum(seconds), 3),
        "max_s": round(max(seconds), 3),
        "p50_s": round(statistics.median(seconds), 3),
        "weekly_metrics_s": round(weekly_s, 3),
        "fill_events_per_s": round(filled["events"] / filled["fill_s"]),
    }
    report(timed, top, stored, figures)
    # Other processes' work slows the queries down: say how busy the machine was.
    before, after = (", ".join(f"{value:.2f}" for value in sample) for sample in load)
    print(f"load average (1, 5, 15 min) before the queries {before}; after {after}")
    failed = [t for t in timed if t.problem is not None]
    for t in failed:
        print(f"FAIL {t.where}: {t.problem}", file=sys.stderr)
    print(json.dumps({key: figures[key] for key in LAST_LINE_KEYS}))
    return 1 if failed else 0


def rules_for(settings: Settings, plan: RolloutPlan, weeks: int) -> BatchRules:
    """The worker's rules. The rollout ends before today, so no event is ahead of the clock."""
    rules = BatchRules.from_settings(settings)
    end = datetime.combine(plan.week_start(weeks + 1), datetime.min.time(), UTC)
    ahead = max(rules.limits.max_future, end - datetime.now(UTC) + timedelta(days=1))
    return replace(rules, limits=replace(rules.limits, max_future=ahead))


def report(
    timed: list[Timed], top: int, stored: list[tuple[str, int, int]], figures: dict[str, Any]
) -> None:
    print(f"\nslowest of {len(timed)} queries (warm, best of {RUNS}, one at a time):")
    print(f"{'seconds':>8}  {'rows':>6}  query")
    for t in sorted(timed, key=lambda t: t.seconds, reverse=True)[:top]:
        print(f"{t.seconds:8.3f}  {t.rows:6,d}  {t.where}")
    print(
        f"all {figures['queries']}: {figures['total_s']:.3f} s, slowest {figures['max_s']:.3f} s, "
        f"median {figures['p50_s']:.3f} s; SELECT * FROM weekly_metrics "
        f"{figures['weekly_metrics_s']:.3f} s"
    )
    person_weeks = figures["users"] * figures["weeks"]
    print(f"\n{'table':24s} {'rows':>12s} {'per user-week':>14s} {'MiB on disk':>12s}")
    for table, rows, size in stored:
        print(f"{table:24s} {rows:12,d} {rows / person_weeks:14.2f} {size / 2**20:12.1f}")
    total = sum(size for _, _, size in stored)
    per_million = total / max(1, figures["sign_ins"]) * 1_000_000 / 2**20
    print(
        f"all tables: {total / 2**20:,.1f} MiB, {per_million:,.0f} MiB per million sign-ins "
        f"({figures['sign_ins']:,} sign-ins, {figures['auth_events']:,} auth_events)\n"
    )


def add_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`warehouse` under the `bench` command's subparsers."""
    parser = subparsers.add_parser(
        "warehouse",
        help="fill a scratch warehouse with a simulated workforce, time every Grafana query",
        description=__doc__.split("\n\n")[1],
    )
    _arguments(parser)
    parser.set_defaults(handler=_handle)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=_positive, default=20_000, help="default: 20000")
    parser.add_argument("--weeks", type=_positive, default=30, help="default: 30")
    parser.add_argument(
        "--window-days", type=_positive, default=30, help="the time range shown (default: 30)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--top", type=_positive, default=10, help="slowest queries to list")
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep the warehouse here; reuse it next time"
    )


def _handle(args: argparse.Namespace) -> int:
    try:
        return run(args.users, args.weeks, args.window_days, args.seed, args.dir, args.top)
    except (WarehouseError, OSError) as exc:
        print(f"pipeline bench warehouse: {exc}", file=sys.stderr)
        return 2


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.tools.bench_warehouse", description=__doc__
    )
    _arguments(parser)
    return _handle(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
