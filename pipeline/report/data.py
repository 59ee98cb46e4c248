"""Everything the weekly review report shows, read from the warehouse's views into one
JSON-able record (`ReportData`), before any chart or page is drawn.

The numbers are the views' (schemas/clickhouse/0002-0006: the SQL the dashboards and alert
rules read) and pipeline/report/weekly.py's, which reads them: `weekly_metrics` for the
headline and the trend, `phase_gates` for the gates. This module only picks the week, groups
rows for display and puts them side by side; it defines no metric of its own. The one number
it works out is a change: this week's value less last week's (or last quarter's).

Nothing here names a person: users are counted, never listed, whether the warehouse stores
logins or pseudonyms (PIPELINE_PSEUDONYMIZE_KEY).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from pipeline.grafana import check
from pipeline.grafana.alerts import PASSWORDLESS_ONLY_SINCE, STALE_AFTER_MINUTES, rule_groups
from pipeline.model import Method, Scenario
from pipeline.plan import Phase, RolloutPlan, Target
from pipeline.report.weekly import IDP_SOURCES, active_use_rate, phase_gates, weekly_metrics
from pipeline.sinks.warehouse import Warehouse

# The headline metrics, in the order the report shows them; each has plan targets.
HEADLINE = {
    "enrollment_rate": "Enrollment",
    "active_use_rate": "Active use",
    "on_passwordless_rate": "Users on passwordless",
    "high_risk_active_use_rate": "High-risk active use",
}
# How each passwordless method is named in the method mix (DESIGN.md's patterns).
PASSWORDLESS_LABELS = {
    Method.WINDOWS_HELLO: "Windows Hello",
    Method.PLATFORM_PASSKEY: "platform passkey",
    Method.SYNCED_PASSKEY: "synced passkey",
    Method.SECURITY_KEY: "security key",
    Method.MOBILE_AUTHENTICATOR: "mobile authenticator",
    Method.CERTIFICATE: "certificate",
}
SECOND_FACTORS = {Method.PUSH, Method.OTP, Method.SMS, Method.VOICE, Method.EMAIL}
PASSWORD_AND_SECOND = "password + second factor"
PASSWORD_ONLY = "password only"
SECOND_FACTOR_ALONE = "second factor alone"
OTHER_METHODS = "other (federated, unknown)"
# A source whose latest event lies this far before the end of the data has stopped, as far
# as the report can tell from event times (the stale-data alert watches write times, now).
STOPPED_AFTER = {"tickets": timedelta(days=14)}
STOPPED_AFTER_IDP = timedelta(days=3)
TICKET_RULE = "alert ticket-rate-rising [A]"
TOP_APPS = 10


class ReportError(RuntimeError):
    """Nothing to report (no plan, no events, no such week): the message says why."""


@dataclass
class ReportData:
    """The report's every number and sentence, for one week and the rollout up to it."""

    week: str  # ISO week, 2026-W23
    week_start: str
    week_end: str  # its Sunday
    rollout_week: int
    complete: bool  # the data reaches the week's Sunday
    data_until: str  # the latest event in the warehouse
    generated_at: str
    notes: list[str]  # what the data cannot show this week, in words
    plan: dict[str, Any]
    headline: list[dict[str, Any]]
    metrics: dict[str, Any]  # weekly_metrics' answer for the weeks up to this one
    gates: list[dict[str, Any]]
    by_idp: list[dict[str, Any]]
    by_department: dict[str, Any]
    method_mix: dict[str, Any]
    still_passwords: dict[str, Any]
    password_apps: list[dict[str, Any]]
    high_risk_paths: dict[str, Any]
    tickets: dict[str, Any]
    health: dict[str, Any]
    sections: dict[str, str] = field(default_factory=dict)  # section -> why it is empty

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str) -> date:
    """The Monday of an ISO week written 2026-W23."""
    try:
        year, week = text.upper().split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ReportError(f"--week {text!r}: write an ISO week, e.g. 2026-W23") from None


def loaded_plan(warehouse: Warehouse) -> RolloutPlan:
    """The rollout plan as the warehouse holds it (`pipeline migrate` loads it): the plan the
    views' weeks, phases and gates follow, whatever PIPELINE_PLAN_FILE says today."""
    phases = warehouse.query(
        "SELECT phase, name, first_week, last_week, start FROM plan_phases FINAL ORDER BY phase"
    )
    if not phases:
        raise ReportError(
            f"the warehouse {warehouse.location} has no rollout plan loaded: run "
            "`pipeline migrate` (it loads PIPELINE_PLAN_FILE)"
        )
    targets: dict[int, list[Target]] = defaultdict(list)
    for phase, metric, target in warehouse.query(
        "SELECT phase, metric, target FROM plan_targets FINAL ORDER BY phase, metric"
    ):
        targets[phase].append(Target(metric=metric, min=target))
    tiers: dict[str, list[str]] = defaultdict(list)
    for app, tier in warehouse.query("SELECT app, tier FROM app_risk ORDER BY app"):
        tiers[tier].append(app)
    try:
        return RolloutPlan(
            name="the plan loaded in the warehouse",
            start=phases[0][4],
            phases=[
                Phase(phase=p, name=name, weeks=(first, last), targets=targets[p])
                for p, name, first, last, _ in phases
            ],
            pilot_departments=[],
            high_risk_apps=tiers["high_risk"],
            legacy_apps=tiers["legacy"],
        )
    except ValidationError as exc:
        raise ReportError(f"the warehouse's rollout plan does not read as a plan: {exc}") from None


def read_report(warehouse: Warehouse, week: date | None = None) -> ReportData:
    """Every number of the report for the rollout week starting on `week` (a Monday; by
    default the last complete week of data)."""
    warehouse.require_current_schema()
    plan = loaded_plan(warehouse)
    weeks = weekly_metrics(warehouse, plan)["weeks"]
    if not weeks:
        raise ReportError(
            f"the warehouse {warehouse.location} holds no events yet, so there is no week to "
            "report on: run the worker on your sources (or `make run` for a demo)"
        )
    (last_day,) = warehouse.query("SELECT max(day) FROM rollout_days")[0]
    start = _pick_week(weeks, last_day, week)
    index = next(i for i, w in enumerate(weeks) if w["start"] == start.isoformat())
    this, shown = weeks[index], weeks[: index + 1]
    previous = weeks[index - 1] if index else None
    sunday = start + timedelta(days=6)
    # The day the week's "as of its end" numbers are read on: its Sunday, or the last day
    # of data in a week still in progress.
    as_of = min(sunday, last_day)
    gates = [
        {
            "week_start": gate_week.isoformat(),
            "rollout_week": plan.week_of(gate_week),
            "phase": phase,
            "metric": metric,
            "target": target,
            "actual": actual,
            "passed": None if passed is None else bool(passed),
        }
        for gate_week, phase, metric, target, actual, passed in phase_gates(warehouse)
        if gate_week <= start
    ]
    data = ReportData(
        week=this["week"],
        week_start=start.isoformat(),
        week_end=sunday.isoformat(),
        rollout_week=this["rollout_week"],
        complete=last_day >= sunday,
        data_until=check.data_end(warehouse).isoformat(),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=[],
        plan=_plan(warehouse, plan, this, as_of),
        headline=_headline(plan, this, previous, gates),
        metrics={"weeks": shown},
        gates=gates,
        by_idp=_by_idp(warehouse, this, previous, as_of),
        by_department=_by_department(warehouse, plan, this, start, as_of),
        method_mix=_method_mix(warehouse, plan, start),
        still_passwords=_still_passwords(warehouse),
        password_apps=_password_apps(warehouse, start),
        high_risk_paths=_high_risk_paths(warehouse, plan, start),
        tickets=_tickets(warehouse, shown, start),
        health=_health(warehouse, start, last_day),
    )
    _explain_gaps(data, previous)
    return data


def _pick_week(weeks: list[dict[str, Any]], last_day: date, week: date | None) -> date:
    starts = [date.fromisoformat(w["start"]) for w in weeks]
    if week is not None:
        if week not in starts:
            raise ReportError(
                f"week {iso_week(week)} is not in the rollout as the warehouse holds it "
                f"(weeks {weeks[0]['week']} to {weeks[-1]['week']})"
            )
        return week
    complete = [s for s in starts if s + timedelta(days=6) <= last_day]
    return complete[-1] if complete else starts[-1]


# -- the plan and the headline ----------------------------------------------------------------


def _plan(
    warehouse: Warehouse, plan: RolloutPlan, this: dict[str, Any], as_of: date
) -> dict[str, Any]:
    rows = warehouse.query(
        "SELECT phase, name, days_left FROM phase_days WHERE day = {day:Date}", {"day": as_of}
    )
    phase_number, name, days_left = rows[0] if rows else (this["phase"], "", None)
    phases = []
    for phase in plan.phases:
        first, last = phase.weeks
        status = (
            "current"
            if phase.phase == phase_number
            else "done"
            if last is not None and last < this["rollout_week"]
            else "ahead"
        )
        phases.append(
            {
                "phase": phase.phase,
                "name": phase.name,
                "first_week": first,
                "last_week": last,
                "starts": plan.week_start(first).isoformat(),
                "targets": [{"metric": t.metric, "target": t.min} for t in phase.targets],
                "status": status,
            }
        )
    # The next gate: the end of the first phase from this one on that sets targets.
    gate = next(
        (
            p
            for p in plan.phases
            if p.phase >= phase_number and p.targets and p.weeks[1] is not None
        ),
        None,
    )
    next_gate = None
    if gate is not None:
        last = gate.weeks[1]
        assert last is not None  # chosen above
        next_gate = {
            "phase": gate.phase,
            "name": gate.name,
            "rollout_week": last,
            "week": iso_week(plan.week_start(last)),
            "date": (plan.week_start(last) + timedelta(days=6)).isoformat(),
            "weeks_away": last - this["rollout_week"],
            "targets": [
                {"metric": t.metric, "target": t.min, "now": this[t.metric]} for t in gate.targets
            ],
        }
    return {
        "phase": phase_number,
        "name": name,
        "days_left": days_left,
        "phases": phases,
        "next_gate": next_gate,
    }


def _headline(
    plan: RolloutPlan,
    this: dict[str, Any],
    previous: dict[str, Any] | None,
    gates: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    tiles = []
    for metric, label in HEADLINE.items():
        gate = next(
            (g for g in gates if g["week_start"] == this["start"] and g["metric"] == metric), None
        )
        later = next(
            (
                (p, t.min)
                for p in plan.phases
                if p.phase > this["phase"]
                for t in p.targets
                if t.metric == metric
            ),
            None,
        )
        tiles.append(
            {
                "metric": metric,
                "label": label,
                "value": this[metric],
                "previous": previous[metric] if previous else None,
                "change": _change(this[metric], previous[metric] if previous else None),
                "target": gate["target"] if gate else None,
                "met": gate["passed"] if gate else None,
                "next_target": (
                    {"phase": later[0].phase, "week": later[0].weeks[0], "target": later[1]}
                    if gate is None and later
                    else None
                ),
            }
        )
    tiles.append(
        {
            "metric": "ticket_rate_per_1000",
            "label": "Helpdesk tickets per 1,000 users",
            "value": this["ticket_rate_per_1000"],
            "previous": previous["ticket_rate_per_1000"] if previous else None,
            "change": _change(
                this["ticket_rate_per_1000"], previous["ticket_rate_per_1000"] if previous else None
            ),
            "target": None,
            "met": None,
            "next_target": None,
        }
    )
    return tiles


def _change(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


# -- breakdowns -------------------------------------------------------------------------------


def _by_idp(
    warehouse: Warehouse, this: dict[str, Any], previous: dict[str, Any] | None, as_of: date
) -> list[dict[str, Any]]:
    """Active use per owning IdP this week (weekly_metrics), and enrollment per home IdP at
    the week's end (enrollment_daily)."""
    enrolled = {
        idp: (rate, workforce)
        for idp, rate, workforce in warehouse.query(
            "SELECT idp, enrollment_rate, active_workforce FROM enrollment_daily "
            "WHERE day = {day:Date} AND department = 'all' AND idp != 'all'",
            {"day": as_of},
        )
    }
    rows = []
    for source in IDP_SOURCES:
        rate, workforce = enrolled.get(source.value, (None, 0))
        rows.append(
            {
                "source": source.value,
                "sign_ins": this["counts"]["sign_ins_by_source"][source.value],
                "passwordless_sign_ins": this["counts"]["passwordless_sign_ins_by_source"][
                    source.value
                ],
                "active_use_rate": this["active_use_rate_by_source"][source.value],
                "previous_active_use_rate": (
                    previous["active_use_rate_by_source"][source.value] if previous else None
                ),
                "home_workforce": workforce,
                "enrollment_rate": rate,
            }
        )
    return rows


def _by_department(
    warehouse: Warehouse, plan: RolloutPlan, this: dict[str, Any], start: date, as_of: date
) -> dict[str, Any]:
    """Per department: enrollment at the week's end (enrollment_daily), active use over the
    week's days (active_use_daily), users on passwordless in the 7 days to its end
    (on_passwordless_daily); the departments furthest behind first."""
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "active_workforce": 0,
            "enrolled_users": 0,
            "enrollment_rate": None,
            "sign_ins": 0,
            "passwordless_sign_ins": 0,
            "active_use_rate": None,
            "users_signed_in": 0,
            "users_on_passwordless": 0,
            "on_passwordless_rate": None,
        }
    )
    day = {"day": as_of, "start": start}
    for department, workforce, enrolled, rate in warehouse.query(
        "SELECT department, active_workforce, enrolled_users, enrollment_rate "
        "FROM enrollment_daily WHERE day = {day:Date} AND idp = 'all' AND department != 'all'",
        day,
    ):
        rows[department].update(
            active_workforce=workforce, enrolled_users=enrolled, enrollment_rate=rate
        )
    for department, sign_ins, passwordless in warehouse.query(
        "SELECT department, sum(sign_ins), sum(passwordless_sign_ins) FROM active_use_daily "
        "WHERE day >= {start:Date} AND day <= {day:Date} AND source = 'all' "
        "AND risk_tier = 'all' AND department != 'all' GROUP BY department",
        day,
    ):
        rows[department].update(
            sign_ins=sign_ins,
            passwordless_sign_ins=passwordless,
            active_use_rate=active_use_rate(passwordless, sign_ins),
        )
    for department, signed_in, on_passwordless, rate in warehouse.query(
        "SELECT department, users_signed_in_7d, users_on_passwordless_7d, "
        "on_passwordless_rate_7d FROM on_passwordless_daily "
        "WHERE day = {day:Date} AND source = 'all' AND department != 'all'",
        day,
    ):
        rows[department].update(
            users_signed_in=signed_in,
            users_on_passwordless=on_passwordless,
            on_passwordless_rate=rate,
        )
    # Behind on what the next gate checks, where a department has it; else on passwordless.
    gate = next(
        (p for p in plan.phases if p.phase >= this["phase"] and p.targets),
        None,
    )
    sort_by = "on_passwordless_rate"
    target = None
    if gate is not None:
        for candidate in gate.targets:
            if candidate.metric in ("enrollment_rate", "active_use_rate", "on_passwordless_rate"):
                sort_by, target = candidate.metric, candidate.min
                break
    ordered = sorted(
        ({"department": name, **values} for name, values in rows.items()),
        key=lambda row: (row[sort_by] is None, row[sort_by] or 0.0, row["department"]),
    )
    return {"sorted_by": sort_by, "target": target, "rows": ordered}


def method_category(pattern: list[str], passwordless: bool) -> tuple[str, str]:
    """(group, category) of a sign-in by its factors: each passwordless pattern by its
    passwordless factors; otherwise password + second factor, password only, a second factor
    alone, or other. `passwordless` is the view's verdict, never decided here."""
    methods = {_method(m) for m in pattern}
    if passwordless:
        names = sorted(PASSWORDLESS_LABELS[m] for m in methods if m in PASSWORDLESS_LABELS)
        return "passwordless", " + ".join(names)
    if Method.PASSWORD in methods:
        return "password", PASSWORD_AND_SECOND if len(methods) > 1 else PASSWORD_ONLY
    if methods and methods <= SECOND_FACTORS:
        return "not passwordless", SECOND_FACTOR_ALONE
    return "not passwordless", OTHER_METHODS


def _method(name: str) -> Method:
    try:
        return Method(name)
    except ValueError:
        return Method.UNKNOWN


def _method_mix(warehouse: Warehouse, plan: RolloutPlan, start: date) -> dict[str, Any]:
    """Successful sign-ins per week by method category (the sign_ins view's factors and its
    passwordless verdict), for the weeks up to this one."""
    counts: dict[tuple[date, str, str], int] = defaultdict(int)
    for week_start, factors, passwordless, sign_ins in warehouse.query(
        "SELECT toMonday(time) AS week_start, factors, passwordless, count() FROM sign_ins "
        "WHERE success AND time < toDateTime64({end:Date}, 6, 'UTC') "
        "GROUP BY week_start, factors, passwordless",
        {"end": start + timedelta(days=7)},
    ):
        group, category = method_category(list(factors), bool(passwordless))
        counts[(week_start, group, category)] += sign_ins
    totals: dict[date, int] = defaultdict(int)
    for (week_start, _, _), sign_ins in counts.items():
        totals[week_start] += sign_ins
    rows = [
        {
            "week": iso_week(week_start),
            "rollout_week": plan.week_of(week_start),
            "group": group,
            "category": category,
            "sign_ins": sign_ins,
            "share": sign_ins / totals[week_start],
        }
        for (week_start, group, category), sign_ins in sorted(counts.items())
    ]
    order = sorted(
        {(row["group"], row["category"]) for row in rows},
        key=lambda key: (["passwordless", "password", "not passwordless"].index(key[0]), key[1]),
    )
    return {"categories": [category for _, category in order], "rows": rows}


def _still_passwords(warehouse: Warehouse) -> dict[str, Any]:
    """Users still enrolled who signed in without passwordless while enrolled, in the 7 days
    up to the latest sign-in (enrolled_still_using_passwords): how many, in which
    departments, and the apps of those users' sign-ins without passwordless then."""
    window = warehouse.query("SELECT max(time) - INTERVAL 7 DAY, max(time) FROM sign_ins")[0]
    departments, users = [], 0
    for department, count, sign_ins, total in warehouse.query(
        "SELECT department, uniqExact(user) AS users, sum(password_sign_ins_7d), "
        "grouping(department) = 1 FROM enrolled_still_using_passwords "
        "GROUP BY GROUPING SETS ((department), ()) ORDER BY users DESC, department"
    ):
        if total:  # the () set: distinct users over every department
            users = count
        else:
            departments.append({"department": department, "users": count, "sign_ins": sign_ins})
    apps = [
        {"app": app, "users": app_users, "sign_ins": sign_ins}
        for app, app_users, sign_ins in warehouse.query(
            "SELECT ifNull(app, '(no app named)') AS app, uniqExact(user) AS users, count() "
            "FROM sign_ins WHERE success AND NOT passwordless "
            "AND time > (SELECT max(time) FROM sign_ins) - INTERVAL 7 DAY "
            "AND (user, source) IN (SELECT user, source FROM enrolled_still_using_passwords) "
            "GROUP BY app ORDER BY users DESC, app LIMIT {top:UInt32}",
            {"top": TOP_APPS},
        )
    ]
    return {
        "from": _iso(window[0]),
        "to": _iso(window[1]),
        "users": users,
        "departments": departments,
        "apps": apps,
    }


def _password_apps(warehouse: Warehouse, start: date) -> list[dict[str, Any]]:
    """The apps with the most successful sign-ins that used a password this week."""
    return [
        {"app": app, "risk_tier": tier, "password_sign_ins": password, "sign_ins": total}
        for app, tier, password, total in warehouse.query(
            "SELECT ifNull(app, '(no app named)') AS app, risk_tier, "
            "countIf(has(factors, 'password')) AS password_sign_ins, count() "
            "FROM sign_ins WHERE success AND toMonday(time) = {start:Date} "
            "GROUP BY app, risk_tier HAVING password_sign_ins > 0 "
            "ORDER BY password_sign_ins DESC, app LIMIT {top:UInt32}",
            {"start": start, "top": TOP_APPS},
        )
    ]


def _high_risk_paths(warehouse: Warehouse, plan: RolloutPlan, start: date) -> dict[str, Any]:
    """Sign-ins into high-risk apps that were not passwordless once phase 4 made
    passwordless required there: the dashboard's "High-risk paths after phase 4", this
    week, and their total since phase 4 began."""
    phase_4 = next((p for p in plan.phases if p.phase == 4), None)
    since = plan.week_start(phase_4.weeks[0]) if phase_4 else None
    end = {"start": start, "end": start + timedelta(days=7)}
    paths = warehouse.query(
        "SELECT ifNull(app, '') AS app, toString(source) AS source, "
        "if(empty(factors), 'none', arrayStringConcat(factors, ' + ')) AS pattern, "
        "count() AS attempts, countIf(success) AS succeeded FROM sign_ins "
        "WHERE risk_tier = 'high_risk' AND NOT passwordless "
        f"AND time >= {PASSWORDLESS_ONLY_SINCE} AND toMonday(time) = {{start:Date}} "
        "GROUP BY app, source, pattern ORDER BY succeeded DESC, attempts DESC, app",
        end,
    )
    (attempts, succeeded) = warehouse.query(
        "SELECT count(), countIf(success) FROM sign_ins "
        "WHERE risk_tier = 'high_risk' AND NOT passwordless "
        f"AND time >= {PASSWORDLESS_ONLY_SINCE} AND time < toDateTime64({{end:Date}}, 6, 'UTC')",
        end,
    )[0]
    return {
        "since": since.isoformat() if since else None,
        "required": since is not None and since <= start,
        "rows": [
            {"app": a, "source": s, "pattern": p, "attempts": n, "succeeded": ok}
            for a, s, p, n, ok in paths
        ],
        "since_attempts": attempts,
        "since_succeeded": succeeded,
    }


def _tickets(warehouse: Warehouse, shown: list[dict[str, Any]], start: date) -> dict[str, Any]:
    """Tickets per 1,000 users by scenario, this quarter (so far) against the last
    (ticket_rate_quarterly), and the scenarios the alert rule "Ticket rate rising" would flag
    at the end of the week (its own query, as Grafana would run it then)."""
    quarters = warehouse.query(
        "SELECT quarter_start, scenario, weeks, tickets, active_workforce, tickets_per_1000 "
        "FROM ticket_rate_quarterly WHERE department = 'all' "
        "AND quarter_start <= toStartOfQuarter({start:Date}) ORDER BY quarter_start, scenario",
        {"start": start},
    )
    starts = sorted({row[0] for row in quarters})[-2:]
    by_quarter: dict[date, dict[str, tuple[int, int, float, float | None]]] = defaultdict(dict)
    for quarter, scenario, weeks, tickets, workforce, rate in quarters:
        if quarter in starts:
            by_quarter[quarter][scenario] = (weeks, tickets, workforce, rate)
    current = by_quarter.get(starts[-1], {}) if starts else {}
    before = by_quarter.get(starts[0], {}) if len(starts) == 2 else {}
    flagged, rule_problem = _rising_scenarios(warehouse, start + timedelta(days=7))
    scenarios = []
    for scenario in [*(s.value for s in Scenario), "all"]:
        now, then = current.get(scenario), before.get(scenario)
        scenarios.append(
            {
                "scenario": scenario,
                "tickets": now[1] if now else 0,
                "rate": now[3] if now else None,
                "previous_tickets": then[1] if then else None,
                "previous_rate": then[3] if then else None,
                "change": _change(now[3] if now else None, then[3] if then else None),
                "flagged": scenario in flagged,
                "rise": flagged.get(scenario),
            }
        )
    return {
        "quarter": _quarter_name(starts[-1]) if starts else None,
        "quarter_weeks": current.get("all", (0,))[0],
        "previous_quarter": _quarter_name(starts[0]) if len(starts) == 2 else None,
        "total": sum(week["counts"]["tickets"] for week in shown),
        "scenarios": scenarios,
        "rule_problem": rule_problem,
    }


def _rising_scenarios(warehouse: Warehouse, end: date) -> tuple[dict[str, float], str | None]:
    """The alert rule's firing scenarios and their rise, evaluated at `end` (midnight UTC)."""
    (query,) = [q for q in check.queries({}, rule_groups()) if q.where == TICKET_RULE]
    at = datetime.combine(end, datetime.min.time(), UTC)
    (outcome,) = check.run(warehouse, [query], start=at - timedelta(days=56), end=at)
    if not outcome.ok:
        return {}, outcome.problem
    return {
        s.labels["scenario"]: s.value
        for s in outcome.firing or []
        if "scenario" in s.labels and s.value is not None
    }, None


def _quarter_name(start: date) -> str:
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


# -- data health ------------------------------------------------------------------------------


def _health(warehouse: Warehouse, start: date, last_day: date) -> dict[str, Any]:
    """Freshness per source (the pipeline-health dashboard's query, and event times up to the
    week's end), dead letters, and the methods no mapping knows yet."""
    end = min(start + timedelta(days=7), last_day + timedelta(days=1))
    data_end = datetime.combine(end, datetime.min.time())
    last_events = dict(
        warehouse.query(
            "SELECT source, max(time) FROM arrivals "
            "WHERE time < toDateTime64({end:Date}, 6, 'UTC') GROUP BY source",
            {"end": end},
        )
    )
    # The latest event of any source, up to the week's end: "stopped" is measured from it.
    latest = max(last_events.values(), default=data_end)
    written = {
        source: (last_written, seconds, behind)
        for source, last_written, seconds, behind in warehouse.query(
            "SELECT source, max(last_written), dateDiff('second', max(last_written), now64(3)), "
            "sum(lag) FROM ingest_progress GROUP BY source"
        )
    }
    sources = []
    for source in [*(s.value for s in IDP_SOURCES), "tickets"]:
        last_event = last_events.get(source)
        limit = STOPPED_AFTER.get(source, STOPPED_AFTER_IDP)
        last_written, seconds, behind = written.get(source, (None, None, None))
        sources.append(
            {
                "source": source,
                "last_event": _iso(last_event),
                "stopped": last_event is not None and latest - last_event > limit,
                "silent_for_days": (
                    round((latest - last_event).total_seconds() / 86400, 1) if last_event else None
                ),
                "stopped_after_days": limit.days,
                "last_written": _iso(last_written),
                "seconds_since_written": seconds,
                "messages_behind": behind,
                "stale_now": (
                    seconds is not None and seconds > STALE_AFTER_MINUTES.get(source, 30) * 60
                ),
            }
        )
    dead = warehouse.query(
        "SELECT source, count() FROM dead_letters FINAL GROUP BY source ORDER BY source"
    )
    unknown = warehouse.query(
        "SELECT source, raw_method, events, last_seen FROM unknown_methods "
        "ORDER BY events DESC, source, raw_method LIMIT 20"
    )
    return {
        "sources": sources,
        "dead_letters": sum(count for _, count in dead),
        "dead_letters_by_source": [{"source": s, "dead_letters": n} for s, n in dead],
        "unknown_methods": [
            {"source": s, "raw_method": m, "events": n, "last_seen": _iso(t)}
            for s, m, n, t in unknown
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None or moment.year <= 1970:  # the engine's empty max()
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).isoformat()


# -- what cannot be shown ---------------------------------------------------------------------


def _explain_gaps(data: ReportData, previous: dict[str, Any] | None) -> None:
    """Say in words what the data cannot show, instead of an empty chart or a failure."""
    this = data.metrics["weeks"][-1]
    if not data.complete:
        data.notes.append(
            f"Week {data.week} is still in progress: the data runs to {data.data_until[:10]}, "
            f"before its Sunday {data.week_end}."
        )
    if previous is None:
        data.notes.append(
            "This is the first week of data: there is no earlier week to compare with and no "
            "trend yet."
        )
        data.sections["trend"] = "One week of data so far: the trend starts next week."
    if not this["active_workforce"]:
        data.notes.append(
            "No roster is loaded for this week, so the rates that divide by the workforce "
            "(enrollment, tickets per 1,000) are empty: run `pipeline roster import`."
        )
    if not this["counts"]["sign_ins"]:
        data.sections["method_mix"] = "No successful sign-in was stored for this week."
    if data.tickets["total"] == 0:
        data.sections["tickets"] = (
            "No helpdesk tickets are stored for the rollout so far: is the ticket feed "
            "connected? (See the data health notes.)"
        )
    if not data.still_passwords["users"]:
        data.sections["still_passwords"] = (
            "No enrolled user signed in without passwordless in the last 7 days of data."
        )
    if not data.password_apps:
        data.sections["password_apps"] = "No successful sign-in used a password this week."
    for source in data.health["sources"]:
        if source["stopped"]:
            data.notes.append(
                f"{source['source']} has sent no events since {source['last_event'][:10]} "
                f"({source['silent_for_days']} days before the end of the data): its numbers "
                "stop there, and the rates by IdP leave it out. Check its collector or feed."
            )
        elif source["last_event"] is None:
            data.notes.append(f"{source['source']}: no events at all in the warehouse.")
