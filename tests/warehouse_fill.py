"""Fill a warehouse from a simulator's output through `build_batch`, as the worker writes it,
without Kafka: for tests of the SQL that reads the warehouse (rollups, Grafana panels)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.aggregate.batch import BatchRules, RawMessage, build_batch
from pipeline.plan import load_plan
from pipeline.settings import Settings
from pipeline.simulate.run import simulate
from pipeline.sinks.warehouse import Warehouse

FILES = ("okta", "entra", "ping", "duo", "tickets", "roster")
BATCH = 5000


def fill(
    warehouse: Warehouse,
    simulation: Path,
    names: Sequence[str] = FILES,
    extra: dict[str, Iterable[bytes]] | None = None,
    rules: BatchRules | None = None,
) -> None:
    """Write the simulation's files `names` (and `extra` lines per file name) as the worker
    would (with `rules`, or the settings' own), each file as partition 0 of its raw topic."""
    for name in names:
        lines = (simulation / f"{name}.ndjson").read_bytes().splitlines()
        fill_lines(warehouse, name, lines + list((extra or {}).get(name, ())), rules=rules)


def fill_lines(
    warehouse: Warehouse,
    name: str,
    lines: Sequence[bytes],
    partition: int = 0,
    rules: BatchRules | None = None,
) -> None:
    """Write raw lines of one source (a file name of FILES) as offsets 0… of `partition`,
    the partition ending after the last: a batch's dedup token is its offsets, so lines added
    later go to another partition."""
    settings = Settings()
    rules = rules or BatchRules.from_settings(settings)
    topic = getattr(settings.topics, name)
    end = {(topic, partition): len(lines)}
    for start in range(0, len(lines), BATCH):
        messages = [
            RawMessage(topic, partition, start + i, None, line)
            for i, line in enumerate(lines[start : start + BATCH])
        ]
        warehouse.write(build_batch(messages, rules, end))


def simulation(base: Path, **options: Any) -> Path:
    """A simulated rollout's files in base/sim (`options`: pipeline.simulate.run.simulate's)."""
    out = base / "sim"
    out.mkdir()
    simulate(out=out, **options)
    return out


def migrated(path: Path) -> Warehouse:
    """An embedded warehouse at `path`, migrated, with the example plan loaded."""
    warehouse = Warehouse(f"chdb://{path}")
    warehouse.migrate()
    warehouse.load_plan(load_plan())
    return warehouse
