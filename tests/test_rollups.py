"""The rolling aggregates (schemas/clickhouse/0003_rollups.sql) on the real engine.

One embedded warehouse per module is filled from a simulated rollout through `build_batch`,
as the worker writes it. Each view is checked against the simulator's truth file, against
the weekly views of 0002, or against its definition recomputed in Python from the rows of
`sign_ins`, `enrollment_changes`, `roster` and `tickets`.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from warehouse_fill import fill, simulation

from pipeline.aggregate.signins import SIGN_IN_PART_COLUMNS
from pipeline.plan import load_plan
from pipeline.sinks.warehouse import MIGRATIONS, Warehouse

USERS, WEEKS, SEED = 200, 30, 5
ROLLUPS = MIGRATIONS / "0003_rollups.sql"
VIEWS = re.findall(r"^CREATE OR REPLACE VIEW (\w+) AS$", ROLLUPS.read_text(), re.MULTILINE)
ALL = "all"


@dataclass
class Rollout:
    warehouse: Warehouse
    truth: dict[date, dict[str, Any]]
    # view -> its rows (or the error) on a freshly migrated warehouse, before and after the
    # plan is loaded, taken before any data is written
    empty_answers: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rollout]:
    base = tmp_path_factory.mktemp("rollups")
    out = simulation(base, users=USERS, weeks=WEEKS, seed=SEED)
    truth = json.loads((out / "truth.json").read_text())
    # The embedded engine serves one data directory per process: the empty-warehouse answers
    # are taken on this one before it is filled.
    warehouse = Warehouse(f"chdb://{base / 'wh'}")
    try:
        warehouse.migrate()
        empty_answers = {"migrated": _answers(warehouse)}
        warehouse.load_plan(load_plan())
        empty_answers["plan loaded"] = _answers(warehouse)
        fill(warehouse, out)
        weeks = {date.fromisoformat(week["start"]): week for week in truth["weeks"]}
        yield Rollout(warehouse, weeks, empty_answers)
    finally:  # the engine holds one directory per process: the next module opens its own
        warehouse.close()


def _answers(warehouse: Warehouse) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for view in VIEWS:
        try:
            answers[view] = warehouse.query("SELECT * FROM {view:Identifier}", {"view": view})
        except Exception as exc:  # the test reports which view failed and why
            answers[view] = f"error: {exc}"
    return answers


def rows(warehouse: Warehouse, sql: str, parameters: dict[str, Any] | None = None) -> list[dict]:
    columns, result = warehouse.query_columns(sql, parameters)
    return [dict(zip(columns, row, strict=True)) for row in result]


def rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def sunday(week_start: date) -> date:
    return week_start + timedelta(days=6)


def calendar(warehouse: Warehouse) -> list[date]:
    return [day for (day,) in warehouse.query("SELECT day FROM rollout_days ORDER BY day")]


# -- the views exist and answer ---------------------------------------------------------------


def test_the_migration_defines_the_documented_views() -> None:
    assert set(VIEWS) >= {
        "active_use_hourly",
        "active_use_daily",
        "active_use_trailing",
        "enrollment_daily",
        "on_passwordless_daily",
        "ticket_rate_weekly",
        "ticket_rate_trailing_28d",
        "ticket_rate_quarterly",
        "enrolled_still_using_passwords",
    }
    text = ROLLUPS.read_text()
    for view in VIEWS:  # each one is introduced by a comment
        assert re.search(rf"--[^\n]*\nCREATE OR REPLACE VIEW {view} AS", text), view


def test_every_view_answers_on_an_empty_warehouse(rollout: Rollout) -> None:
    for state, answers in rollout.empty_answers.items():
        assert answers == {view: [] for view in VIEWS}, state


def test_every_view_answers_on_the_filled_warehouse(rollout: Rollout) -> None:
    # How fast is for `make bench`, not for a test run beside others on shared cores.
    empty = [
        view
        for view in VIEWS
        if not rollout.warehouse.query("SELECT * FROM {view:Identifier}", {"view": view})
    ]
    assert empty == []


def test_rollout_days_is_every_day_from_the_plan_start_to_the_latest_event(
    rollout: Rollout,
) -> None:
    days = calendar(rollout.warehouse)
    (latest,) = rollout.warehouse.query(
        "SELECT toDate(greatest((SELECT max(time) FROM sign_in_parts), "
        "(SELECT max(time) FROM enrollment_events), (SELECT max(time) FROM tickets)))"
    )[0]
    assert days[0] == min(rollout.truth) == load_plan().week_start(1)
    assert days[-1] == latest == sunday(max(rollout.truth))
    assert days == [days[0] + timedelta(days=n) for n in range((latest - days[0]).days + 1)]


# -- active use ------------------------------------------------------------------------------


def test_hours_and_days_add_up_to_the_weekly_sign_ins(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    weekly = {
        (row["week_start"], row["source"]): (row["sign_ins"], row["passwordless_sign_ins"])
        for row in rows(warehouse, "SELECT * FROM weekly_sign_ins")
    }
    assert sum(n for n, _ in weekly.values()) > 10_000
    for view, column in (("active_use_hourly", "hour"), ("active_use_daily", "day")):
        summed: Counter[tuple] = Counter()
        summed_passwordless: Counter[tuple] = Counter()
        for row in rows(warehouse, "SELECT * FROM {view:Identifier}", {"view": view}):
            if ALL in (row["source"], row["department"], row["risk_tier"]):
                continue
            moment = row[column]
            day = moment.date() if isinstance(moment, datetime) else moment
            key = (day - timedelta(days=day.weekday()), row["source"])
            summed[key] += row["sign_ins"]
            summed_passwordless[key] += row["passwordless_sign_ins"]
        assert {key: (summed[key], summed_passwordless[key]) for key in summed} == weekly, view


def test_all_rows_are_the_totals_of_the_finest_rows(rollout: Rollout) -> None:
    for view, column in (("active_use_hourly", "hour"), ("active_use_daily", "day")):
        found = rows(rollout.warehouse, "SELECT * FROM {view:Identifier}", {"view": view})
        given = {
            (row[column], row["source"], row["department"], row["risk_tier"]): (
                row["sign_ins"],
                row["passwordless_sign_ins"],
                row["active_use_rate"],
            )
            for row in found
        }
        assert len(given) == len(found)  # one row per key
        totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for row in found:
            source, department, tier = row["source"], row["department"], row["risk_tier"]
            if ALL in (source, department, tier):
                continue
            for key in (
                (source, department, tier),
                (source, ALL, ALL),
                (ALL, department, ALL),
                (ALL, ALL, tier),
                (ALL, ALL, ALL),
            ):
                totals[(row[column], *key)][0] += row["sign_ins"]
                totals[(row[column], *key)][1] += row["passwordless_sign_ins"]
        expected = {key: (n, p, rate(p, n)) for key, (n, p) in totals.items()}
        assert given == expected, view


def test_daily_is_the_sum_of_its_hours(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    hours: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows(warehouse, "SELECT * FROM active_use_hourly"):
        key = (row["hour"].date(), row["source"], row["department"], row["risk_tier"])
        hours[key][0] += row["sign_ins"]
        hours[key][1] += row["passwordless_sign_ins"]
    days = {
        (row["day"], row["source"], row["department"], row["risk_tier"]): [
            row["sign_ins"],
            row["passwordless_sign_ins"],
        ]
        for row in rows(warehouse, "SELECT * FROM active_use_daily")
    }
    assert days == dict(hours)
    (counted,) = warehouse.query(
        "SELECT count() FROM sign_ins WHERE success AND toDate(time) = {day:Date}",
        {"day": date(2026, 3, 4)},
    )[0]
    assert days[(date(2026, 3, 4), ALL, ALL, ALL)][0] == counted > 0


def test_trailing_windows_equal_a_recount_over_the_dense_calendar(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    daily: dict[tuple, dict[date, tuple[int, int]]] = defaultdict(dict)
    for row in rows(warehouse, "SELECT * FROM active_use_daily"):
        key = (row["source"], row["department"], row["risk_tier"])
        daily[key][row["day"]] = (row["sign_ins"], row["passwordless_sign_ins"])
    expected = {}
    gap_days = 0
    days = calendar(warehouse)
    for key, by_day in daily.items():
        for day in days:
            window = {
                length: [by_day.get(day - timedelta(days=n), (0, 0)) for n in range(length)]
                for length in (7, 28)
            }
            n7, p7 = (sum(x) for x in zip(*window[7], strict=True))
            n28, p28 = (sum(x) for x in zip(*window[28], strict=True))
            if n28:
                expected[(day, *key)] = (n7, p7, rate(p7, n7), n28, p28, rate(p28, n28))
                gap_days += day not in by_day
    found = {
        (row["day"], row["source"], row["department"], row["risk_tier"]): (
            row["sign_ins_7d"],
            row["passwordless_7d"],
            row["active_use_rate_7d"],
            row["sign_ins_28d"],
            row["passwordless_28d"],
            row["active_use_rate_28d"],
        )
        for row in rows(warehouse, "SELECT * FROM active_use_trailing")
    }
    assert gap_days > 1000  # keys without sign-ins on many days: the windows span the gaps
    assert found == expected


def test_trailing_seven_days_on_each_sunday_are_the_weeks_sign_ins(rollout: Rollout) -> None:
    trailing = {
        (row["day"], row["source"], row["department"], row["risk_tier"]): row
        for row in rows(rollout.warehouse, "SELECT * FROM active_use_trailing")
    }
    for start, week in rollout.truth.items():
        counts = week["counts"]
        total = trailing[(sunday(start), ALL, ALL, ALL)]
        assert total["sign_ins_7d"] == counts["sign_ins"], start
        assert total["passwordless_7d"] == counts["passwordless_sign_ins"], start
        assert total["active_use_rate_7d"] == week["active_use_rate"], start
        for source, sign_ins in counts["sign_ins_by_source"].items():
            by_source = trailing.get((sunday(start), source, ALL, ALL))
            if sign_ins == 0:
                assert by_source is None or by_source["sign_ins_7d"] == 0
                continue
            assert by_source is not None, (start, source)
            assert by_source["sign_ins_7d"] == sign_ins
            assert by_source["passwordless_7d"] == counts["passwordless_sign_ins_by_source"][source]
            assert by_source["active_use_rate_7d"] == week["active_use_rate_by_source"][source]
        finest = [
            row for (day, *key), row in trailing.items() if day == sunday(start) and ALL not in key
        ]
        assert sum(row["sign_ins_7d"] for row in finest) == counts["sign_ins"]
        assert sum(row["passwordless_7d"] for row in finest) == counts["passwordless_sign_ins"]
    weeks = sorted(rollout.truth)
    for i in range(3, len(weeks)):
        four = [rollout.truth[week]["counts"] for week in weeks[i - 3 : i + 1]]
        total = trailing[(sunday(weeks[i]), ALL, ALL, ALL)]
        assert total["sign_ins_28d"] == sum(c["sign_ins"] for c in four)
        assert total["passwordless_28d"] == sum(c["passwordless_sign_ins"] for c in four)


# -- enrollment and the share on passwordless -------------------------------------------------


def test_enrollment_on_each_sunday_is_the_weeks_truth(rollout: Rollout) -> None:
    daily = {
        (row["day"], row["department"], row["idp"]): row
        for row in rows(rollout.warehouse, "SELECT * FROM enrollment_daily")
    }
    for start, week in rollout.truth.items():
        total = daily[(sunday(start), ALL, ALL)]
        assert total["active_workforce"] == week["active_workforce"], start
        assert total["enrolled_users"] == week["counts"]["enrolled_users"], start
        assert total["enrollment_rate"] == week["enrollment_rate"], start
        finest = [r for (d, *key), r in daily.items() if d == sunday(start) and ALL not in key]
        assert sum(r["active_workforce"] for r in finest) == week["active_workforce"]
        assert sum(r["enrolled_users"] for r in finest) == week["counts"]["enrolled_users"]


def test_enrollment_daily_equals_a_recount_from_roster_and_changes(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    roster = rows(
        warehouse,
        "SELECT user, department, ifNull(toString(idp), 'unknown') AS idp, active_from, "
        "terminated_on FROM roster FINAL",
    )
    changes = sorted(
        warehouse.query("SELECT time, event_id, user, method, registered FROM enrollment_changes")
    )
    assert changes
    expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    state: dict[tuple[str, str], bool] = {}
    pending = iter(changes)
    change = next(pending, None)
    for day in calendar(warehouse):
        end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time())
        while change is not None and change[0] < end_of_day:
            _, _, user, method, registered = change
            state[(user, method)] = registered
            change = next(pending, None)
        enrolled = {user for (user, _), registered in state.items() if registered}
        for person in roster:
            ended = person["terminated_on"]
            if person["active_from"] <= day and (ended is None or day < ended):
                department = person["department"] or "unknown"
                for key in (
                    (department, person["idp"]),
                    (department, ALL),
                    (ALL, person["idp"]),
                    (ALL, ALL),
                ):
                    expected[(day, *key)][0] += 1
                    expected[(day, *key)][1] += person["user"] in enrolled
    found = {
        (row["day"], row["department"], row["idp"]): [
            row["active_workforce"],
            row["enrolled_users"],
        ]
        for row in rows(warehouse, "SELECT * FROM enrollment_daily")
    }
    assert found == dict(expected)
    assert {key[2] for key in found} >= {"okta", "entra", "ping", "duo", ALL}


def test_on_passwordless_on_each_sunday_is_the_weeks_truth(rollout: Rollout) -> None:
    daily = {
        (row["day"], row["source"], row["department"]): row
        for row in rows(rollout.warehouse, "SELECT * FROM on_passwordless_daily")
    }
    for start, week in rollout.truth.items():
        total = daily[(sunday(start), ALL, ALL)]
        assert total["users_signed_in_7d"] == week["counts"]["users_signed_in"], start
        assert total["users_on_passwordless_7d"] == week["counts"]["users_on_passwordless"]
        assert total["on_passwordless_rate_7d"] == week["on_passwordless_rate"], start


def test_on_passwordless_daily_equals_a_recount_from_the_sign_ins(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    sign_ins = warehouse.query(
        "SELECT toDate(time), toString(source), department, user, passwordless "
        "FROM sign_ins WHERE success"
    )
    # (day, source, department) -> user -> every sign-in in the 7 days ending on day passwordless
    windows: dict[tuple, dict[str, bool]] = defaultdict(dict)
    days = set(calendar(warehouse))
    for signed_in_on, source, department, user, passwordless in sign_ins:
        for n in range(7):
            day = signed_in_on + timedelta(days=n)
            if day not in days:
                continue
            for key in ((source, department), (source, ALL), (ALL, department), (ALL, ALL)):
                users = windows[(day, *key)]
                users[user] = users.get(user, True) and bool(passwordless)
    expected = {
        key: (len(users), sum(users.values()), rate(sum(users.values()), len(users)))
        for key, users in windows.items()
    }
    found = {
        (row["day"], row["source"], row["department"]): (
            row["users_signed_in_7d"],
            row["users_on_passwordless_7d"],
            row["on_passwordless_rate_7d"],
        )
        for row in rows(warehouse, "SELECT * FROM on_passwordless_daily")
    }
    assert found == expected


# -- tickets per 1,000 users -----------------------------------------------------------------


def test_weekly_ticket_rates_are_the_truths(rollout: Rollout) -> None:
    weekly = {
        (row["week_start"], row["scenario"], row["department"]): row
        for row in rows(rollout.warehouse, "SELECT * FROM ticket_rate_weekly")
    }
    scenarios = {scenario for _, scenario, _ in weekly}
    assert {ALL, "other", "lost_device"} <= scenarios
    assert {start for start, _, _ in weekly} == set(rollout.truth)
    for start, week in rollout.truth.items():
        total = weekly[(start, ALL, ALL)]
        assert total["active_workforce"] == week["active_workforce"], start
        assert total["tickets"] == week["counts"]["tickets"], start
        assert total["tickets_per_1000"] == week["ticket_rate_per_1000"], start
        for scenario, expected in week["ticket_rate_per_1000_by_scenario"].items():
            if scenario in scenarios:
                assert weekly[(start, scenario, ALL)]["tickets_per_1000"] == expected
            else:  # a scenario never seen has no rows, and no tickets in the truth
                assert expected == 0.0, (start, scenario)
        by_department = [r for (s, sc, d), r in weekly.items() if s == start and d != ALL]
        assert (
            sum(r["active_workforce"] for r in by_department if r["scenario"] == ALL)
            == (week["active_workforce"])
        )
        assert (
            sum(r["tickets"] for r in by_department if r["scenario"] == ALL)
            == (week["counts"]["tickets"])
        )
        assert (
            sum(r["tickets"] for r in by_department if r["scenario"] != ALL)
            == (week["counts"]["tickets"])
        )


def test_quarters_add_up_their_weeks(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    weeks: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows(warehouse, "SELECT * FROM ticket_rate_weekly"):
        start = row["week_start"]
        quarter = date(start.year, 3 * ((start.month - 1) // 3) + 1, 1)
        weeks[(quarter, row["scenario"], row["department"])].append(row)
    quarterly = {
        (row["quarter_start"], row["scenario"], row["department"]): row
        for row in rows(warehouse, "SELECT * FROM ticket_rate_quarterly")
    }
    assert quarterly.keys() == weeks.keys()
    assert sorted({quarter for quarter, _, _ in quarterly}) == [
        date(2026, 1, 1),
        date(2026, 4, 1),
        date(2026, 7, 1),
    ]
    for key, row in quarterly.items():
        tickets = sum(week["tickets"] for week in weeks[key])
        workforce = sum(week["active_workforce"] for week in weeks[key]) / len(weeks[key])
        assert row["weeks"] == len(weeks[key])
        assert row["tickets"] == tickets, key
        assert row["active_workforce"] == pytest.approx(workforce, rel=1e-12), key
        if workforce:
            assert row["tickets_per_1000"] == pytest.approx(tickets * 1000 / workforce, 1e-12)
        else:
            assert row["tickets_per_1000"] is None
    first = [w for w in rollout.truth.values() if w["start"] < "2026-04-01"]
    assert quarterly[(date(2026, 1, 1), ALL, ALL)]["tickets"] == sum(
        w["counts"]["tickets"] for w in first
    )


def test_trailing_28_day_tickets(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    trailing = {
        (row["day"], row["scenario"], row["department"]): row
        for row in rows(warehouse, "SELECT * FROM ticket_rate_trailing_28d")
    }
    weekly = {
        (row["week_start"], row["scenario"]): row
        for row in rows(warehouse, "SELECT * FROM ticket_rate_weekly WHERE department = 'all'")
    }
    starts = sorted(rollout.truth)
    for i, start in enumerate(starts):
        for (week_start, scenario), week in weekly.items():
            if week_start != start:
                continue
            row = trailing[(sunday(start), scenario, ALL)]
            four = sum(weekly[(s, scenario)]["tickets"] for s in starts[max(0, i - 3) : i + 1])
            assert row["tickets_28d"] == four, (start, scenario)
            assert row["active_workforce"] == week["active_workforce"]
            assert row["tickets_per_1000_28d"] == rate(four * 1000, week["active_workforce"])
    # every day, not only Sundays: the tickets opened in the 28 days ending on it
    opened = [day for (day,) in warehouse.query("SELECT toDate(time) FROM tickets FINAL")]
    for day in calendar(warehouse):
        in_window = sum(1 for t in opened if day - timedelta(days=27) <= t <= day)
        assert trailing[(day, ALL, ALL)]["tickets_28d"] == in_window, day
    assert sum(t["tickets_28d"] for (d, s, dep), t in trailing.items() if s == dep == ALL) > 0


# -- enrolled users still typing passwords ----------------------------------------------------


def test_enrolled_users_still_using_passwords_are_exactly_the_recounted_ones(
    rollout: Rollout,
) -> None:
    warehouse = rollout.warehouse
    listed = rows(warehouse, "SELECT * FROM enrolled_still_using_passwords")
    assert listed  # the simulation has users who enroll and keep typing passwords
    changes = sorted(
        warehouse.query("SELECT time, event_id, user, method, registered FROM enrollment_changes")
    )

    def factors_at(user: str, moment: datetime) -> set[str]:
        state: dict[str, bool] = {}
        for changed, _, who, method, registered in changes:
            if who == user and changed <= moment:
                state[method] = registered
        return {method for method, registered in state.items() if registered}

    ((latest,),) = warehouse.query("SELECT max(time) FROM sign_ins")
    recent = warehouse.query(
        "SELECT user, department, toString(source), time FROM sign_ins "
        "WHERE success AND NOT passwordless AND time > {since:DateTime64(6, 'UTC')}",
        {"since": latest - timedelta(days=7)},
    )
    expected: dict[tuple, list[datetime]] = defaultdict(list)
    for user, department, source, moment in recent:
        if factors_at(user, latest) and factors_at(user, moment):
            expected[(user, department, source)].append(moment)
    found = {
        (row["user"], row["department"], row["source"]): (
            row["password_sign_ins_7d"],
            row["last_password_sign_in"],
            row["enrolled_factors"],
        )
        for row in listed
    }
    assert found == {
        key: (len(times), max(times), sorted(factors_at(key[0], latest)))
        for key, times in expected.items()
    }
    # and each one through separate SQL: a factor registered now, a password (a sign-in that
    # was not passwordless: a password, or a push / OTP after one checked elsewhere) in the
    # window
    for row in listed:
        ((password_sign_ins,),) = warehouse.query(
            "SELECT count() FROM sign_ins WHERE user = {user:String} AND success "
            "AND NOT passwordless AND time > {since:DateTime64(6, 'UTC')}",
            {"user": row["user"], "since": latest - timedelta(days=7)},
        )
        ((registered,),) = warehouse.query(
            "SELECT countIf(registered) FROM (SELECT method, "
            "argMax(registered, (time, event_id)) AS registered FROM enrollment_changes "
            "WHERE user = {user:String} GROUP BY method)",
            {"user": row["user"]},
        )
        assert registered >= 1 and password_sign_ins >= 1, row["user"]


def test_a_password_typed_before_enrolling_does_not_list_the_user(rollout: Rollout) -> None:
    """Three users added for this test (and deleted after it) in the last days of data: one
    typed a password, enrolled, then typed one again (listed, for the second only); one typed a
    password before enrolling only; one removed the factor before typing it (not listed)."""
    warehouse = rollout.warehouse
    before = warehouse.query("SELECT * FROM enrolled_still_using_passwords")
    ((latest,),) = warehouse.query("SELECT max(time) FROM sign_ins")

    def at(days: float) -> datetime:
        return latest - timedelta(days=days)

    def sign_in(n: int, user: str, moment: datetime) -> dict[str, Any]:
        return {
            "source": "entra",
            "sign_in_id": f"rollup-test-{n}",
            "user": user,
            "time": moment,
            "step_ids": [f"rollup-test-{n}"],
            "factors": ["password"],
            "raw_factors": ["Password"],
            "has_password": 1,
            "has_passwordless_factor": 0,
            "last_outcome": (moment, 0),
            "first_app": (moment, "Outlook"),
        }

    def change(n: int, user: str, moment: datetime, action: str) -> dict[str, Any]:
        return {
            "source": "entra",
            "event_id": f"rollup-test-{n}",
            "time": moment,
            "user": user,
            "method": "windows_hello",
            "raw_method": "windowsHelloForBusiness",
            "action": action,
            "passwordless_factor": True,
            "event_type": "Register security info",
        }

    again, once, removed = (f"{who}@rollup.test" for who in ("again", "once", "removed"))
    added_rows = {
        "sign_in_parts": [
            sign_in(1, again, at(5)),
            sign_in(2, again, at(1)),
            sign_in(3, once, at(5)),
            sign_in(4, removed, at(1)),
        ],
        "enrollment_events": [
            change(5, again, at(3), "registered"),
            change(6, once, at(3), "registered"),
            change(7, removed, at(30), "registered"),
            change(8, removed, at(2), "removed"),
            change(9, removed, at(0.5), "registered"),
        ],
    }
    try:
        for table, added in added_rows.items():
            warehouse.insert(table, [list(row.values()) for row in added], list(added[0]))
        listed = rows(
            warehouse,
            "SELECT * FROM enrolled_still_using_passwords WHERE user LIKE '%@rollup.test'",
        )
        assert listed == [
            {
                "user": again,
                "department": "unknown",
                "source": "entra",
                "password_sign_ins_7d": 1,
                "last_password_sign_in": at(1),
                "enrolled_factors": ["windows_hello"],
            }
        ]
    finally:
        for table in added_rows:
            warehouse.client.command(
                "DELETE FROM {table:Identifier} WHERE user LIKE '%@rollup.test'",
                parameters={"table": table},
            )
    assert warehouse.query("SELECT * FROM enrolled_still_using_passwords") == before


# -- the views for a time range (0011_windowed_views.sql) ---------------------------------------

# (first day, last day): mid-rollout across a month's end, one day, the last 30 days of data
WINDOWS = [(date(2026, 3, 4), date(2026, 4, 2)), (date(2026, 5, 13), date(2026, 5, 13))]
# parameterized view -> (the whole view, its day column) for the views of days
DAILY = {
    "active_use_hourly_between": ("active_use_hourly", "toDate(hour)"),
    "active_use_daily_between": ("active_use_daily", "day"),
    "active_use_trailing_between": ("active_use_trailing", "day"),
    "workforce_days_between": ("workforce_days", "day"),
    "enrollment_daily_between": ("enrollment_daily", "day"),
    "on_passwordless_daily_between": ("on_passwordless_daily", "day"),
    "ticket_rate_trailing_28d_between": ("ticket_rate_trailing_28d", "day"),
}
# the same for the views of rollout weeks (a week is in the range when its Monday is)
WEEKLY = {
    "weekly_roster_between": "weekly_roster",
    "weekly_enrollment_between": "weekly_enrollment",
    "weekly_sign_ins_between": "weekly_sign_ins",
    "weekly_users_between": "weekly_users",
    "weekly_metrics_between": "weekly_metrics",
    "phase_gates_between": "phase_gates",
    "ticket_rate_weekly_between": "ticket_rate_weekly",
}


def windows(warehouse: Warehouse) -> list[tuple[date, date]]:
    last = calendar(warehouse)[-1]
    return [*WINDOWS, (last - timedelta(days=29), last)]


def same_rows(warehouse: Warehouse, windowed: str, whole: str, parameters: dict[str, Any]) -> int:
    """The windowed view's rows are the whole view's rows of the range (`whole`: SQL with the
    same parameters), as multisets, on the whole view's columns; how many there are."""
    bound = warehouse.client.query(f"SELECT * FROM ({whole}) LIMIT 0", parameters=parameters)
    listed = ", ".join(f"`{column}`" for column in bound.column_names) or "*"
    expected = warehouse.query(whole, parameters)
    found = warehouse.query(f"SELECT {listed} FROM {windowed}", parameters)
    assert sorted(found, key=repr) == sorted(expected, key=repr), (windowed, parameters)
    return len(found)


def test_each_daily_view_for_a_range_is_the_whole_view_cut_to_its_days(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    found: Counter[str] = Counter()
    for first, last in windows(warehouse):
        parameters = {"first": first, "last": last}
        for view, (whole, day) in DAILY.items():
            found[view] += same_rows(
                warehouse,
                f"{view}(from = {{first:Date}}, to = {{last:Date}})",
                f"SELECT * FROM {whole} WHERE {day} BETWEEN {{first:Date}} AND {{last:Date}}",
                parameters,
            )
    assert all(found[view] > 0 for view in DAILY), found


def test_each_weekly_view_for_a_range_is_the_whole_view_cut_to_its_weeks(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    found: Counter[str] = Counter()
    for first, last in windows(warehouse):
        parameters = {"first": first, "last": last}
        for view, whole in WEEKLY.items():
            found[view] += same_rows(
                warehouse,
                f"{view}(from = {{first:Date}}, to = {{last:Date}})",
                f"SELECT * FROM {whole} WHERE week_start BETWEEN {{first:Date}} AND {{last:Date}}",
                parameters,
            )
        # a quarter whose weeks the range overlaps, whole
        found["ticket_rate_quarterly_between"] += same_rows(
            warehouse,
            "ticket_rate_quarterly_between(from = {first:Date}, to = {last:Date})",
            "SELECT * FROM ticket_rate_quarterly WHERE quarter_start <= {last:Date} "
            "AND quarter_start + INTERVAL 3 MONTH > {first:Date}",
            parameters,
        )
    assert all(found[view] > 0 for view in [*WEEKLY, "ticket_rate_quarterly_between"]), found


def test_the_sign_ins_of_a_time_range_are_those_that_began_in_it(rollout: Rollout) -> None:
    warehouse = rollout.warehouse
    found: Counter[str] = Counter()
    for first, last in windows(warehouse):
        # from and to inclusive, as $__timeFilter; an hour into each day, to cut days too
        parameters = {
            "from": datetime.combine(first, datetime.min.time()) + timedelta(hours=1),
            "to": datetime.combine(last, datetime.min.time()) + timedelta(hours=13),
        }
        found["all"] += same_rows(
            warehouse,
            "sign_ins_between(from = {from:DateTime64(6, 'UTC')}, to = {to:DateTime64(6, 'UTC')})",
            "SELECT * FROM sign_ins "
            "WHERE time BETWEEN {from:DateTime64(6, 'UTC')} AND {to:DateTime64(6, 'UTC')}",
            parameters,
        )
        found["high risk"] += same_rows(
            warehouse,
            "high_risk_sign_ins_between(from = {from:DateTime64(6, 'UTC')}, "
            "to = {to:DateTime64(6, 'UTC')})",
            "SELECT * FROM sign_ins WHERE risk_tier = 'high_risk' "
            "AND time BETWEEN {from:DateTime64(6, 'UTC')} AND {to:DateTime64(6, 'UTC')}",
            parameters,
        )
    assert found["all"] > found["high risk"] > 0
    ((latest,),) = warehouse.query("SELECT max(time) FROM sign_ins")
    assert same_rows(
        warehouse,
        "enrolled_still_using_passwords_at(at = {at:DateTime64(6, 'UTC')})",
        "SELECT * FROM enrolled_still_using_passwords",
        {"at": latest},
    )


def test_a_sign_in_across_midnight_in_two_batches_and_twice_counts_once(rollout: Rollout) -> None:
    """An Okta sign-in whose password check is at 21:40 and whose push comes four and a half
    hours later, at 02:10 the next day, in another batch, and then again (a replay): parts
    keyed by two days, within the day either side that the views of a range fold
    (0011_windowed_views.sql). It is one sign-in, of its first day, with both factors (not
    passwordless), in the whole views and in the views of a range; a range of the second day
    alone does not hold it."""
    warehouse = rollout.warehouse
    night = datetime(2026, 5, 12, 21, 40)
    user = "midnight@rollup.test"
    columns = list(SIGN_IN_PART_COLUMNS)

    def part(step: str, moment: datetime, factor: str) -> list[Any]:
        password = int(factor == "password")
        app = (moment, "Salesforce")
        return [
            "okta",
            "midnight",
            user,
            moment,
            [step],
            [factor],
            [factor],
            password,
            0,
            (moment, 0),
            app,
        ]

    def counts() -> dict[str, Any]:
        okta = "source = 'okta' AND department = 'all' AND risk_tier = 'all'"
        return {
            "daily": warehouse.query(
                "SELECT day, sign_ins, passwordless_sign_ins FROM active_use_daily_between("
                f"from = '2026-05-12', to = '2026-05-13') WHERE {okta} ORDER BY day"
            ),
            "weekly": warehouse.query(
                "SELECT sign_ins, passwordless_sign_ins FROM weekly_sign_ins "
                "WHERE source = 'okta' AND week_start = '2026-05-11'"
            ),
            # the user is on no roster: department 'unknown'
            "users": dict(
                (day, (signed, on_passwordless))
                for day, signed, on_passwordless in warehouse.query(
                    "SELECT day, users_signed_in_7d, users_on_passwordless_7d "
                    "FROM on_passwordless_daily_between(from = '2026-05-12', to = '2026-05-13') "
                    "WHERE source = 'okta' AND department = 'unknown'"
                )
            ),
        }

    def held(first: str, last: str) -> list[tuple]:
        return warehouse.query(
            "SELECT time, factors, steps, passwordless FROM sign_ins_between("
            "from = {first:DateTime64(6, 'UTC')}, to = {last:DateTime64(6, 'UTC')}) "
            "WHERE sign_in_id = 'midnight'",
            {"first": first, "last": last},
        )

    before = counts()
    try:
        warehouse.insert("sign_in_parts", [part("s1", night, "password")], columns)
        for _ in range(2):  # the second batch, then its replay, stored again (not deduplicated)
            later = [part("s2", night + timedelta(hours=4, minutes=30), "push")]
            warehouse.insert("sign_in_parts", later, columns, {"insert_deduplicate": "0"})
        stored = "SELECT count() FROM sign_in_parts WHERE sign_in_id = 'midnight'"
        assert warehouse.query(stored) in ([(3,)], [(2,)])  # 2 once the replay has merged
        one = [(night, ["password", "push"], 2, False)]
        whole = (
            "SELECT time, factors, steps, passwordless FROM sign_ins WHERE sign_in_id = {id:String}"
        )
        assert warehouse.query(whole, {"id": "midnight"}) == one
        assert held("2026-05-12 00:00:00", "2026-05-12 23:59:59") == one
        assert held("2026-05-11 12:00:00", "2026-05-13 12:00:00") == one
        assert held("2026-05-13 00:00:00", "2026-05-13 23:59:59") == []
        ((day, n, p), (next_day, m, q)) = before["daily"]
        users = {
            on: tuple(map(sum, zip(before["users"].get(on, (0, 0)), (1, 0), strict=True)))
            for on in (day, next_day)
        }
        assert counts() == {
            "daily": [(day, n + 1, p), (next_day, m, q)],
            "weekly": [(before["weekly"][0][0] + 1, before["weekly"][0][1])],
            "users": users,  # signed in (the 7 days hold its day), not on passwordless
        }
    finally:
        warehouse.client.command(
            "DELETE FROM sign_in_parts WHERE user = {user:String}", parameters={"user": user}
        )
    assert counts() == before
