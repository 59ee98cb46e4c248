"""The weekly metrics as the warehouse holds them, in the shape of the simulator's truth.json.

The counts come from the warehouse views (schemas/clickhouse/0002_views.sql); the rates are
rendered from them by the same code that renders the simulator's truth, so the two files
compare key by key.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pipeline.model import Scenario, Source
from pipeline.plan import RolloutPlan
from pipeline.simulate.truth import WeekCounts, render_truth
from pipeline.sinks.warehouse import Warehouse


def weekly_counts(warehouse: Warehouse) -> dict[date, WeekCounts]:
    """Every rollout week's numerators and denominators."""
    counts: dict[date, WeekCounts] = {}
    for row in warehouse.query(
        "SELECT week_start, active_workforce, enrolled_users, high_risk_sign_ins, "
        "high_risk_passwordless_sign_ins, users_signed_in, users_on_passwordless "
        "FROM weekly_metrics ORDER BY week_start"
    ):
        start, *numbers = row
        workforce, enrolled, high_risk, high_risk_passwordless, signed_in, on_pwdless = numbers
        counts[start] = WeekCounts(
            active_workforce=workforce,
            enrolled_users=enrolled,
            high_risk_sign_ins=high_risk,
            high_risk_passwordless=high_risk_passwordless,
            users_signed_in=signed_in,
            users_on_passwordless=on_pwdless,
        )
    for start, source, sign_ins, passwordless in warehouse.query(
        "SELECT week_start, source, sign_ins, passwordless_sign_ins FROM weekly_sign_ins"
    ):
        if start in counts:
            counts[start].sign_ins[Source(source)] += sign_ins
            counts[start].passwordless[Source(source)] += passwordless
    for start, scenario, tickets in warehouse.query(
        "SELECT week_start, scenario, tickets FROM weekly_tickets"
    ):
        if start in counts:
            counts[start].tickets[Scenario(scenario)] += tickets
    return counts


def weekly_metrics(warehouse: Warehouse, plan: RolloutPlan) -> dict[str, Any]:
    """`{"weeks": [...]}` exactly as truth.json has it."""
    return render_truth(plan, weekly_counts(warehouse))


def phase_gates(warehouse: Warehouse) -> list[tuple]:
    """(week, phase, metric, target, actual, passed) for every week with a target."""
    return warehouse.query(
        "SELECT week_start, phase, metric, target, actual, passed FROM phase_gates "
        "ORDER BY week_start, metric"
    )
