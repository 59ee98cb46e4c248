"""The weekly metrics as the warehouse holds them, in the shape of the simulator's truth.json.

The counts come from the warehouse views (schemas/clickhouse/0002_views.sql); the rates are
defined here, by the README's definitions ("Metrics"), and take nothing from the simulator:
the end-to-end tests compare this module's answer with the simulator's truth, which the
simulator computes on its own, so a wrong formula on either side fails them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipeline.model import Scenario, Source
from pipeline.plan import RolloutPlan
from pipeline.sinks.warehouse import Warehouse

# The IdPs that own sign-ins, in the order the per-source keys are written.
IDP_SOURCES = (Source.OKTA, Source.ENTRA, Source.PING, Source.DUO)


@dataclass
class WeekNumbers:
    """One rollout week's numerators and denominators, as the warehouse views count them."""

    active_workforce: int = 0
    enrolled_users: int = 0
    high_risk_sign_ins: int = 0
    high_risk_passwordless: int = 0
    users_signed_in: int = 0
    users_on_passwordless: int = 0
    sign_ins: Counter[Source] = field(default_factory=Counter)
    passwordless: Counter[Source] = field(default_factory=Counter)
    tickets: Counter[Scenario] = field(default_factory=Counter)


def weekly_counts(warehouse: Warehouse) -> dict[date, WeekNumbers]:
    """Every rollout week's numerators and denominators."""
    counts: dict[date, WeekNumbers] = {}
    for row in warehouse.query(
        "SELECT week_start, active_workforce, enrolled_users, high_risk_sign_ins, "
        "high_risk_passwordless_sign_ins, users_signed_in, users_on_passwordless "
        "FROM weekly_metrics ORDER BY week_start"
    ):
        start, *numbers = row
        workforce, enrolled, high_risk, high_risk_passwordless, signed_in, on_pwdless = numbers
        counts[start] = WeekNumbers(
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


# -- the rates (README, "Metrics") ---------------------------------------------------------


def fraction(numerator: int, denominator: int) -> float | None:
    """A rate as a fraction; null when nothing was there to count."""
    return numerator / denominator if denominator else None


def enrollment_rate(week: WeekNumbers) -> float | None:
    """Active workforce users with a passwordless factor registered at the week's end, of the
    active workforce."""
    return fraction(week.enrolled_users, week.active_workforce)


def active_use_rate(passwordless_sign_ins: int, sign_ins: int) -> float | None:
    """Passwordless successful interactive sign-ins, of all of them (overall or one IdP's)."""
    return fraction(passwordless_sign_ins, sign_ins)


def on_passwordless_rate(week: WeekNumbers) -> float | None:
    """Users whose every successful sign-in of the week was passwordless, of the users with at
    least one."""
    return fraction(week.users_on_passwordless, week.users_signed_in)


def high_risk_active_use_rate(week: WeekNumbers) -> float | None:
    """Passwordless successful sign-ins to high-risk apps, of all sign-ins to them."""
    return fraction(week.high_risk_passwordless, week.high_risk_sign_ins)


def ticket_rate_per_1000(tickets: int, active_workforce: int) -> float | None:
    """Tickets opened in the week per 1,000 of the active workforce (overall or one
    scenario's)."""
    return fraction(tickets * 1000, active_workforce)


def render_week(plan: RolloutPlan, start: date, week: WeekNumbers) -> dict[str, Any]:
    """One week of the metrics, keys in truth.json's order."""
    workforce = week.active_workforce
    total = sum(week.sign_ins.values())
    passwordless = sum(week.passwordless.values())
    tickets = sum(week.tickets.values())
    number = plan.week_of(start)
    iso_year, iso_week, _ = start.isocalendar()
    return {
        "week": f"{iso_year}-W{iso_week:02d}",
        "start": start.isoformat(),
        "rollout_week": number,
        "phase": plan.phase_number(number),
        "active_workforce": workforce,
        "enrollment_rate": enrollment_rate(week),
        "active_use_rate": active_use_rate(passwordless, total),
        "on_passwordless_rate": on_passwordless_rate(week),
        "high_risk_active_use_rate": high_risk_active_use_rate(week),
        "ticket_rate_per_1000": ticket_rate_per_1000(tickets, workforce),
        "ticket_rate_per_1000_by_scenario": {
            s.value: ticket_rate_per_1000(week.tickets[s], workforce) for s in Scenario
        },
        "active_use_rate_by_source": {
            s.value: active_use_rate(week.passwordless[s], week.sign_ins[s]) for s in IDP_SOURCES
        },
        "counts": {
            "enrolled_users": week.enrolled_users,
            "sign_ins": total,
            "passwordless_sign_ins": passwordless,
            "sign_ins_by_source": {s.value: week.sign_ins[s] for s in IDP_SOURCES},
            "passwordless_sign_ins_by_source": {s.value: week.passwordless[s] for s in IDP_SOURCES},
            "users_signed_in": week.users_signed_in,
            "users_on_passwordless": week.users_on_passwordless,
            "high_risk_sign_ins": week.high_risk_sign_ins,
            "tickets": tickets,
            "tickets_by_scenario": {s.value: week.tickets[s] for s in Scenario},
        },
    }


def weekly_metrics(warehouse: Warehouse, plan: RolloutPlan) -> dict[str, Any]:
    """`{"weeks": [...]}` exactly as truth.json has it."""
    counts = weekly_counts(warehouse)
    return {"weeks": [render_week(plan, start, week) for start, week in sorted(counts.items())]}


def phase_gates(warehouse: Warehouse) -> list[tuple]:
    """(week, phase, metric, target, actual, passed) for every week with a target."""
    return warehouse.query(
        "SELECT week_start, phase, metric, target, actual, passed FROM phase_gates "
        "ORDER BY week_start, metric"
    )
