"""The ground truth of a simulated rollout, computed from the simulator's own intents.

It is fed the intents in time order and never looks at a vendor record or a parser. The
metric definitions are the README's ("Metrics"):
- a week is an ISO week, Monday 00:00:00 UTC inclusive to the next Monday exclusive;
- the active workforce of a week is the roster users active on its Sunday (joined on or
  before it, not terminated on or before it);
- enrollment rate: active workforce users with at least one passwordless factor registered
  at the end of the week / active workforce;
- active-use rate: successful interactive sign-ins in the week that were passwordless /
  successful interactive sign-ins in the week; one sign-in counts once, under the IdP that
  owns it (a Duo check in front of another IdP is part of that IdP's sign-in);
- on-passwordless rate: users whose successful interactive sign-ins in the week were all
  passwordless / users with at least one successful interactive sign-in in the week;
- ticket rate per 1,000: tickets opened in the week / active workforce x 1,000.

Which sign-ins and factors are passwordless is stated here, in `PASSWORDLESS_FACTORS` and
`sign_in_is_passwordless`, and not imported from the pipeline (see there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.model import Method, Scenario, Source
from pipeline.plan import RolloutPlan
from pipeline.simulate.workforce import SimUser

IDP_SOURCES = (Source.OKTA, Source.ENTRA, Source.PING, Source.DUO)

# The seed's passwordless rule (DESIGN.md, "Passwordless patterns"), stated a second time on
# purpose: `pipeline.classify` states it for the pipeline, and the end-to-end tests compare the
# pipeline's metrics with this truth. Were the truth to import the pipeline's rule, a wrong rule
# would be wrong on both sides and no test could fail. So the simulator says it itself, from
# what it generated: the factors it chose for each sign-in (a password, when typed, among them)
# and each factor it registered.
PASSWORDLESS_FACTORS: frozenset[Method] = frozenset(
    {
        Method.PLATFORM_PASSKEY,  # device-bound passkey, macOS Touch ID platform authenticator
        Method.SYNCED_PASSKEY,  # iCloud Keychain, Google Password Manager, Microsoft Authenticator
        Method.SECURITY_KEY,  # YubiKey, Feitian
        Method.WINDOWS_HELLO,  # Windows Hello for Business
        Method.MOBILE_AUTHENTICATOR,  # as the primary factor: FastPass, phone sign-in, Passport
        Method.CERTIFICATE,  # certificate-based authentication, smart card
    }
)


def sign_in_is_passwordless(factors: Iterable[Method]) -> bool:
    """No password anywhere in the sign-in, and a passwordless factor signed the user in:
    password + push, OTP or SMS is a password sign-in."""
    used = set(factors)
    return Method.PASSWORD not in used and not used.isdisjoint(PASSWORDLESS_FACTORS)


def week_start_of(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


@dataclass
class _Week:
    sign_ins: Counter[Source] = field(default_factory=Counter)
    passwordless: Counter[Source] = field(default_factory=Counter)
    high_risk_sign_ins: int = 0
    high_risk_passwordless: int = 0
    # user -> True while every successful sign-in of the week was passwordless
    users_all_passwordless: dict[str, bool] = field(default_factory=dict)
    tickets: Counter[Scenario] = field(default_factory=Counter)


class TruthBuilder:
    def __init__(self, plan: RolloutPlan, users: list[SimUser], weeks: int) -> None:
        self._plan = plan
        self._users = users
        self._weeks = {plan.week_start(n): _Week() for n in range(1, weeks + 1)}
        self._enrolled: dict[str, set[Method]] = {}
        self._snapshots: dict[date, int] = {}
        self._unsnapshotted = sorted(self._weeks, reverse=True)
        self._next_week_end = _week_end(self._unsnapshotted[-1])

    def advance(self, now: datetime) -> None:
        """Take the end-of-week enrollment snapshots of every week that ended before `now`."""
        while now >= self._next_week_end:
            week = self._unsnapshotted.pop()
            self._snapshots[week] = self._count_enrolled(week)
            self._next_week_end = (
                _week_end(self._unsnapshotted[-1])
                if self._unsnapshotted
                else datetime.max.replace(tzinfo=UTC)
            )

    def sign_in(
        self, time: datetime, user: str, owner: Source, factors: tuple[Method, ...], high_risk: bool
    ) -> None:
        """A successful interactive sign-in, counted once under the IdP that owns it."""
        self.advance(time)
        week = self._weeks.get(week_start_of(time))
        if week is None:
            return
        passwordless = sign_in_is_passwordless(factors)
        week.sign_ins[owner] += 1
        week.passwordless[owner] += passwordless
        if high_risk:
            week.high_risk_sign_ins += 1
            week.high_risk_passwordless += passwordless
        week.users_all_passwordless[user] = (
            week.users_all_passwordless.get(user, True) and passwordless
        )

    def enrollment(self, time: datetime, user: str, method: Method, registered: bool) -> None:
        self.advance(time)
        methods = self._enrolled.setdefault(user, set())
        if registered:
            methods.add(method)
        else:
            methods.discard(method)

    def ticket(self, time: datetime, scenario: Scenario) -> None:
        self.advance(time)
        week = self._weeks.get(week_start_of(time))
        if week is not None:
            week.tickets[scenario] += 1

    def _count_enrolled(self, week_start: date) -> int:
        sunday = week_start + timedelta(days=6)
        return sum(
            1
            for user in self._users
            if user.active_on(sunday)
            and not PASSWORDLESS_FACTORS.isdisjoint(self._enrolled.get(user.person.login, ()))
        )

    def _active_workforce(self, week_start: date) -> int:
        sunday = week_start + timedelta(days=6)
        return sum(1 for user in self._users if user.active_on(sunday))

    def week_counts(self) -> dict[date, WeekCounts]:
        """Every week's numerators and denominators: sums over disjoint sets of users, so
        the counts of several simulation shards add up to the whole workforce's."""
        if self._unsnapshotted:
            self.advance(_week_end(self._unsnapshotted[0]))
        counts = {}
        for start, week in self._weeks.items():
            counts[start] = WeekCounts(
                active_workforce=self._active_workforce(start),
                enrolled_users=self._snapshots[start],
                sign_ins=week.sign_ins,
                passwordless=week.passwordless,
                high_risk_sign_ins=week.high_risk_sign_ins,
                high_risk_passwordless=week.high_risk_passwordless,
                users_signed_in=len(week.users_all_passwordless),
                users_on_passwordless=sum(week.users_all_passwordless.values()),
                tickets=week.tickets,
            )
        return counts


@dataclass
class WeekCounts:
    active_workforce: int = 0
    enrolled_users: int = 0
    sign_ins: Counter[Source] = field(default_factory=Counter)
    passwordless: Counter[Source] = field(default_factory=Counter)
    high_risk_sign_ins: int = 0
    high_risk_passwordless: int = 0
    users_signed_in: int = 0
    users_on_passwordless: int = 0
    tickets: Counter[Scenario] = field(default_factory=Counter)

    def __add__(self, other: WeekCounts) -> WeekCounts:
        return WeekCounts(
            self.active_workforce + other.active_workforce,
            self.enrolled_users + other.enrolled_users,
            self.sign_ins + other.sign_ins,
            self.passwordless + other.passwordless,
            self.high_risk_sign_ins + other.high_risk_sign_ins,
            self.high_risk_passwordless + other.high_risk_passwordless,
            self.users_signed_in + other.users_signed_in,
            self.users_on_passwordless + other.users_on_passwordless,
            self.tickets + other.tickets,
        )


def merge_counts(parts: list[dict[date, WeekCounts]]) -> dict[date, WeekCounts]:
    merged: dict[date, WeekCounts] = {}
    for part in parts:
        for start, counts in part.items():
            merged[start] = merged.get(start, WeekCounts()) + counts
    return merged


def render_truth(plan: RolloutPlan, counts: dict[date, WeekCounts]) -> dict[str, Any]:
    """The truth file's content: each week's rates by the README's definitions."""
    weeks = []
    for start, week in sorted(counts.items()):
        workforce = week.active_workforce
        total = sum(week.sign_ins.values())
        passwordless = sum(week.passwordless.values())
        tickets = sum(week.tickets.values())
        number = plan.week_of(start)
        iso_year, iso_week, _ = start.isocalendar()
        weeks.append(
            {
                "week": f"{iso_year}-W{iso_week:02d}",
                "start": start.isoformat(),
                "rollout_week": number,
                "phase": plan.phase_number(number),
                "active_workforce": workforce,
                "enrollment_rate": _rate(week.enrolled_users, workforce),
                "active_use_rate": _rate(passwordless, total),
                "on_passwordless_rate": _rate(week.users_on_passwordless, week.users_signed_in),
                "high_risk_active_use_rate": _rate(
                    week.high_risk_passwordless, week.high_risk_sign_ins
                ),
                "ticket_rate_per_1000": _rate(tickets * 1000, workforce),
                "ticket_rate_per_1000_by_scenario": {
                    s.value: _rate(week.tickets[s] * 1000, workforce) for s in Scenario
                },
                "active_use_rate_by_source": {
                    s.value: _rate(week.passwordless[s], week.sign_ins[s]) for s in IDP_SOURCES
                },
                "counts": {
                    "enrolled_users": week.enrolled_users,
                    "sign_ins": total,
                    "passwordless_sign_ins": passwordless,
                    "sign_ins_by_source": {s.value: week.sign_ins[s] for s in IDP_SOURCES},
                    "passwordless_sign_ins_by_source": {
                        s.value: week.passwordless[s] for s in IDP_SOURCES
                    },
                    "users_signed_in": week.users_signed_in,
                    "users_on_passwordless": week.users_on_passwordless,
                    "high_risk_sign_ins": week.high_risk_sign_ins,
                    "tickets": tickets,
                    "tickets_by_scenario": {s.value: week.tickets[s] for s in Scenario},
                },
            }
        )
    return {"weeks": weeks}


def _week_end(week_start: date) -> datetime:
    return datetime.combine(week_start + timedelta(days=7), datetime.min.time(), tzinfo=UTC)


def _rate(numerator: int, denominator: int) -> float | None:
    """A rate as a fraction; null when nothing was there to count."""
    return numerator / denominator if denominator else None
