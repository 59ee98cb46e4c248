"""`pipeline demo` (`make run`): the whole pipeline on the embedded default, end to end.

It starts the embedded Kafka broker (unless PIPELINE_KAFKA_BOOTSTRAP names one), prepares
the warehouse (PIPELINE_CLICKHOUSE_DSN, by default the embedded one under var/), simulates
a rollout into the raw topics, runs `pipeline worker` until it has caught up, and prints
the weekly metrics as the warehouse holds them, beside the simulator's truth, and ends by
writing the weekly review report for the demo's last week (`pipeline report`).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipeline.grafana import check as grafana_check
from pipeline.grafana.alerts import rule_groups
from pipeline.grafana.dashboards import dashboards
from pipeline.plan import load_plan, save_plan
from pipeline.report.data import ReportError, read_report
from pipeline.report.render import BrowserError, write_report
from pipeline.report.weekly import phase_gates, weekly_metrics
from pipeline.runtime.lag import wait_until_caught_up
from pipeline.runtime.worker import WorkerProcess, kafka_bootstrap, prepare_warehouse
from pipeline.settings import Settings
from pipeline.simulate.run import simulate
from pipeline.sinks.warehouse import Warehouse


def weekly_table(metrics: dict[str, Any]) -> str:
    header = (
        f"{'week':9} {'wk':>3} {'phase':>5} {'workforce':>9} {'enrolled':>8} {'active use':>10} "
        f"{'on pwdless':>10} {'high-risk':>9} {'tickets/1k':>10} {'other/1k':>8}"
    )
    rows = [header, "-" * len(header)]
    for week in metrics["weeks"]:
        rows.append(
            f"{week['week']:9} {week['rollout_week']:>3} {week['phase']:>5} "
            f"{week['active_workforce']:>9,} "
            f"{_pct(week['enrollment_rate']):>8} {_pct(week['active_use_rate']):>10} "
            f"{_pct(week['on_passwordless_rate']):>10} "
            f"{_pct(week['high_risk_active_use_rate']):>9} "
            f"{_num(week['ticket_rate_per_1000']):>10} "
            f"{_num(week['ticket_rate_per_1000_by_scenario']['other']):>8}"
        )
    return "\n".join(rows)


def gates_table(gates: list[tuple]) -> str:
    """Each phase's target against its last week (the gate to the next phase)."""
    last_week_of_phase: dict[tuple[int, str], tuple] = {}
    for gate in gates:
        last_week_of_phase[(gate[1], gate[2])] = gate
    rows = []
    for (phase, metric), (week, _, _, target, actual, passed) in sorted(last_week_of_phase.items()):
        verdict = "no data" if passed is None else "passed" if passed else "NOT passed"
        rows.append(
            f"phase {phase}: {metric} >= {target:.0%} in the week of {week}: "
            f"{_pct(actual)} -> {verdict}"
        )
    return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def run_demo(users: int, weeks: int, seed: int, out: Path, collect: bool = False) -> int:
    """The demo; with `collect`, the rollout is served by the simulated tenant and brought
    in by the collectors (pipeline/tools/demo_collect.py)."""
    started = time.perf_counter()
    # The configured plan moved to end last week, so that Grafana's default "last 30 days"
    # shows the demo's data; `pipeline simulate` keeps the plan's own dates (same seed, same bytes).
    configured = Settings()
    plan = load_plan(configured.plan_file).ending_before(datetime.now(UTC).date(), weeks)
    out.mkdir(parents=True, exist_ok=True)
    plan_file = (out / "rollout_plan.yaml").resolve()
    save_plan(plan, plan_file)
    settings = configured.model_copy(update={"plan_file": plan_file})
    with kafka_bootstrap(settings) as bootstrap:
        where = "embedded broker" if not settings.kafka.bootstrap else "Kafka"
        print(f"1/4 Kafka: {where} at {bootstrap}", flush=True)
        with Warehouse.from_settings(settings) as warehouse:
            prepare_warehouse(warehouse, settings)
            warehouse.empty()
            print(f"2/4 warehouse: {warehouse.location} (migrated, plan loaded, emptied)")
            location = warehouse.location
        if collect:
            from pipeline.tools.demo_collect import collect_rollout

            if not collect_rollout(users, weeks, seed, out, plan_file, bootstrap):
                return 1
        else:
            print(f"3/4 simulating a {weeks}-week rollout of {users:,} users into the raw topics")
            summary = simulate(
                users=users,
                weeks=weeks,
                seed=seed,
                out=out,
                plan_file=plan_file,
                kafka=bootstrap,
            )
            print("    " + summary, flush=True)
        print(f"4/4 running `pipeline worker` until it has caught up (log: {out}/worker.log)")
        env = {"PIPELINE_KAFKA_BOOTSTRAP": bootstrap, "PIPELINE_PLAN_FILE": str(plan_file)}
        with WorkerProcess(env, out / "worker.log") as worker:
            try:
                wait_until_caught_up(
                    bootstrap,
                    settings.app_id,
                    settings.kafka,
                    settings.topics.inputs(),
                    at_least=1,
                    timeout=3600,
                    alive=worker.alive,
                    progress=_Progress(),
                )
            except (RuntimeError, TimeoutError) as exc:
                print(f"\npipeline demo: {exc}. The worker's log ends with:", file=sys.stderr)
                print(worker.log_tail(), file=sys.stderr)
                return 1
        print()
    with Warehouse.from_settings(settings) as warehouse:
        metrics = weekly_metrics(warehouse, plan)
        gates = phase_gates(warehouse)
        dead = warehouse.query("SELECT count() FROM dead_letters FINAL")[0][0]
        end = grafana_check.data_end(warehouse)
        panels = grafana_check.run(
            warehouse,
            grafana_check.queries(dashboards(), rule_groups()),
            start=end - timedelta(days=30),
            end=end,
        )
        review, no_review = None, ""
        try:
            review = read_report(warehouse)
        except ReportError as exc:
            no_review = str(exc)
    truth = orjson.loads((out / "truth.json").read_bytes())
    same = sum(
        ours == theirs for ours, theirs in zip(metrics["weeks"], truth["weeks"], strict=False)
    )
    print()
    print("Weekly rollout metrics, as the warehouse holds them (definitions: README.md):")
    print(weekly_table(metrics))
    print()
    print("Phase gates (the plan's targets, checked on each phase's last week):")
    print(gates_table(gates))
    print()
    print(
        f"Against the simulator's truth ({out}/truth.json): {same} of {len(truth['weeks'])} "
        f"weeks equal, key by key. Dead letters: {dead:,}. "
        f"Total {time.perf_counter() - started:.0f} s."
    )
    failed = [outcome for outcome in panels if not outcome.ok]
    print(
        f"Grafana: {len(panels) - len(failed)} of {len(panels)} panel, variable and alert "
        "queries ran on the last 30 days of data (`pipeline grafana check`)."
    )
    for outcome in failed:
        print("  " + outcome.line())
    for outcome in panels:
        # rules on wall-clock freshness have no data at the simulation's end: not shown
        if outcome.firing and any(series.labels for series in outcome.firing):
            print(f"  {outcome.line().removeprefix('ok').strip()}")
    print(f"The warehouse is {location}. Query it (with no worker running):")
    print('  pipeline sql "SELECT * FROM weekly_metrics ORDER BY week_start"')
    print("  pipeline metrics --format json")
    print("  pipeline grafana check --var department=Engineering")
    if review is None:
        print(f"No weekly review report: {no_review}")
    else:
        earlier = metrics["weeks"][len(metrics["weeks"]) // 2]["week"]
        print(f"  pipeline report --week {earlier} --format html,pdf,png --out {out}")
        try:
            written = write_report(review, out, ["html", "pdf"])
        except BrowserError as exc:  # the page and its numbers are written before the PDF
            written = [out / f"report-{review.week}.html"]
            print(f"The weekly review report has no PDF: {exc}")
        print(f"The weekly review report for {review.week} (open it in a browser):")
        for path in written:
            print(f"  {path}")
    return 0 if same == len(truth["weeks"]) == len(metrics["weeks"]) and not failed else 1


class _Progress:
    """One line, redrawn on a terminal; a line every ten seconds otherwise."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._last_line = 0.0
        self._tty = sys.stdout.isatty()

    def __call__(self, committed: int, end: int) -> None:
        elapsed = time.monotonic() - self._started
        total = max(end, 1)
        rate = committed / elapsed if elapsed else 0.0
        line = (
            f"    {committed:,} / {total:,} messages in the warehouse "
            f"({committed / total:.0%}), {elapsed:.0f} s, {rate:,.0f}/s"
        )
        if self._tty:
            print("\r" + line, end="", flush=True)
        elif elapsed - self._last_line >= 10:
            self._last_line = elapsed
            print(line, flush=True)
