"""`pipeline demo` (`make run`): simulate a rollout, classify every raw event it produced,
and print the rollout's weekly metrics beside what the classifier saw."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.classify.stats import ClassifyStats
from pipeline.model import Source
from pipeline.simulate.run import simulate
from pipeline.sources.registry import PARSERS, RejectedEvent


def classify_directory(directory: Path) -> ClassifyStats:
    """Run every simulated raw file through its source's parser."""
    stats = ClassifyStats()
    for source in Source:
        parse = PARSERS[source]
        with (directory / f"{source.value}.ndjson").open("rb") as lines:
            for line in lines:
                try:
                    stats.observe(parse(line))
                except RejectedEvent:
                    stats.reject()
    return stats


def weekly_table(truth: dict) -> str:
    header = (
        f"{'week':9} {'phase':>5} {'workforce':>9} {'enrolled':>8} {'active use':>10} "
        f"{'on pwdless':>10} {'tickets/1k':>10} {'other/1k':>8}"
    )
    rows = [header, "-" * len(header)]
    for week in truth["weeks"]:
        rows.append(
            f"{week['week']:9} {week['phase']:>5} {week['active_workforce']:>9,} "
            f"{_pct(week['enrollment_rate']):>8} {_pct(week['active_use_rate']):>10} "
            f"{_pct(week['on_passwordless_rate']):>10} "
            f"{_num(week['ticket_rate_per_1000']):>10} "
            f"{_num(week['ticket_rate_per_1000_by_scenario']['other']):>8}"
        )
    return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def run_demo(users: int, weeks: int, seed: int, out: Path) -> None:
    import orjson

    print(f"1/2 simulating a {weeks}-week rollout of {users:,} users into {out} ...", flush=True)
    print("    " + simulate(users=users, weeks=weeks, seed=seed, out=out), flush=True)
    print("2/2 classifying every raw event with the source parsers ...", flush=True)
    started = time.perf_counter()
    stats = classify_directory(out)
    elapsed = time.perf_counter() - started
    total = sum(stats.events.values()) + stats.rejected
    print(f"    {total:,} events in {elapsed:.1f} s ({total / elapsed:,.0f}/s): {stats.summary()}")
    truth = orjson.loads((out / "truth.json").read_bytes())
    print()
    print("Weekly rollout metrics (ground truth of the simulation; definitions in README.md):")
    print(weekly_table(truth))
    print()
    print(f"Raw vendor logs: {out}/{{okta,entra,ping,duo,tickets}}.ndjson; roster and truth.json")
    print(f"beside them. Try: pipeline classify --source auto {out}/okta.ndjson | head")
