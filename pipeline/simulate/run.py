"""`pipeline simulate`: run the rollout model into files or Kafka and write its truth.

The workforce is split into a fixed number of shards simulated in parallel processes (a
fixed number, so a seed gives the same bytes on any machine); their records are merged
back into one stream in time order, and their truth counts add up.
"""

from __future__ import annotations

import multiprocessing
import random
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Literal

from pipeline.model import Source
from pipeline.plan import RolloutPlan, load_plan
from pipeline.settings import Settings
from pipeline.simulate.engine import Simulation, SimulationConfig, build_workforce
from pipeline.simulate.output import (
    DirectoryOutput,
    KafkaOutput,
    NativeDelivery,
    Output,
    ShardWriter,
    merge_shards,
    write_roster,
    write_truth,
)
from pipeline.simulate.truth import WeekCounts, merge_counts, render_truth

SHARDS = 2


def simulate(
    users: int,
    weeks: int,
    seed: int,
    out: Path,
    plan_file: Path | None = None,
    kafka: str | None = None,
    idp_mix: dict[Source, float] | None = None,
    duo_fronted_share: float | None = None,
    no_runbook_growth: float | None = None,
    delivery: Literal["message", "native"] = "message",
) -> str:
    """Simulate a rollout; return a short summary for a person."""
    settings = Settings()
    plan = load_plan(plan_file or settings.plan_file)
    config = SimulationConfig(users=users, weeks=weeks, seed=seed)
    if idp_mix is not None:
        config = replace(config, idp_mix=idp_mix)
    if duo_fronted_share is not None:
        config = replace(config, duo_fronted_share=duo_fronted_share)
    if no_runbook_growth is not None:
        config = replace(config, no_runbook_growth=no_runbook_growth)
    started = time.perf_counter()
    workforce = build_workforce(random.Random(seed), config, plan)
    write_roster(out, workforce)
    output: Output
    if kafka:
        output = KafkaOutput(kafka, settings.topics, settings.kafka)
        output.roster(workforce)
    else:
        output = DirectoryOutput(out)
    if delivery == "native":
        output = NativeDelivery(output)
    with output, tempfile.TemporaryDirectory(prefix="simulate-") as scratch:
        paths = [Path(scratch) / f"shard-{n}.tsv" for n in range(SHARDS)]
        with multiprocessing.get_context("fork").Pool(SHARDS) as pool:
            parts = pool.starmap(
                _run_shard, [(config, plan, n, path) for n, path in enumerate(paths)]
            )
        for source, key, line in merge_shards(paths):
            output.event(source, key, line)
        write_truth(out, render_truth(plan, merge_counts(parts)))
    elapsed = time.perf_counter() - started
    where = f"Kafka at {kafka}" if kafka else str(out)
    counts = ", ".join(f"{source.value} {n:,}" for source, n in output.counts.items())
    framing = ""
    if isinstance(output, NativeDelivery):
        sent = ", ".join(f"{source.value} {n:,}" for source, n in output.messages.items())
        framing = f" in {sent} messages (vendor batches)"
    return (
        f"simulated {len(workforce):,} users over {weeks} weeks (seed {seed}) in "
        f"{elapsed:.1f} s -> {where}: {counts} records{framing}; truth in {out / 'truth.json'}"
    )


def _run_shard(
    config: SimulationConfig, plan: RolloutPlan, shard: int, path: Path
) -> dict[date, WeekCounts]:
    writer = ShardWriter(path, shard)
    try:
        return Simulation(config, plan, writer, shard, SHARDS).run()
    finally:
        writer.close()
