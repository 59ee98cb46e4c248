"""The rollout model: day by day, who enrolls, how each sign-in is made, which tickets open.

Every decision draws from one seeded `random.Random` in a fixed order, so a seed gives the
same bytes. Memory holds the workforce and one day of pending intents, never the event log.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Protocol

from pipeline.model import Method, Scenario, Source
from pipeline.plan import RolloutPlan
from pipeline.simulate import vendors
from pipeline.simulate.intents import EnrollmentIntent, SignInIntent, TicketIntent
from pipeline.simulate.truth import TruthBuilder, WeekCounts
from pipeline.simulate.workforce import (
    UNSUPPORTED_COUNTRIES,
    UTC_OFFSET,
    SimUser,
    WorkforceFactory,
)

# Enrollment curve of the whole workforce: (rollout week, share enrolled by its end).
# Linear between the points; shaped so each phase's target is met near the phase's end.
ENROLLMENT_CURVE: tuple[tuple[float, float], ...] = (
    (0, 0.0),
    (3, 0.11),
    (8, 0.33),
    (14, 0.80),
    (20, 0.88),
    (28, 0.975),
    (60, 0.99),
)
EVERYDAY_APPS = (
    "Microsoft 365",
    "Slack",
    "Salesforce",
    "Jira",
    "GitHub",
    "Zoom",
    "Workday",
    "ServiceNow",
    "Google Workspace",
    "Confluence",
)
PHISHING_INCIDENT_WEEK = 17
MNA_WEEK = 20
MNA_DEPARTMENT = "Acquired: Northwind"

# Unrelated issues the classifier cannot place: weekly tickets per 1,000 users.
OTHER_TRICKLE_PER_1000 = 0.3
# The phase from which the no-runbook scenario appears (SimulationConfig.no_runbook_growth).
NO_RUNBOOK_PHASE = 3
# Weekly ticket hazard per 1,000 users of the population each applies to.
TICKET_RATES_PER_1000: dict[Scenario, float] = {
    Scenario.LOST_DEVICE: 2.0,
    Scenario.LOST_SECURITY_KEY: 8.0,
    Scenario.BIOMETRIC_FAILURE: 2.5,
    Scenario.UNSUPPORTED_COUNTRY: 20.0,
    Scenario.KIOSK_DEVICE: 12.0,
    Scenario.PHISHING_LOCKDOWN: 8.0,
    Scenario.MNA_INTEGRATION: 30.0,
}
PLATFORM_BOUND = frozenset(
    {Method.WINDOWS_HELLO, Method.PLATFORM_PASSKEY, Method.MOBILE_AUTHENTICATOR}
)
BIOMETRIC = frozenset({Method.WINDOWS_HELLO, Method.PLATFORM_PASSKEY, Method.SYNCED_PASSKEY})


@dataclass(frozen=True)
class SimulationConfig:
    users: int = 5000
    weeks: int = 30
    seed: int = 1
    idp_mix: dict[Source, float] = field(
        default_factory=lambda: {
            Source.OKTA: 0.4,
            Source.ENTRA: 0.35,
            Source.PING: 0.15,
            Source.DUO: 0.10,
        }
    )
    duo_fronted_share: float = 0.3  # of Okta users, Duo is their MFA in front of Okta
    sign_in_failure_rate: float = 0.03
    # Passkeys inside remote-desktop (VDI/RDP) sessions: the fallback nobody wrote a runbook
    # for. From phase 3 (passwordless by default) it hits enrolled users at 1 ticket per 1,000
    # a week, multiplied by this factor every week after, as more work moves onto passkeys:
    # the rise the helpdesk alert must catch. 0 leaves only the steady trickle of `other`.
    no_runbook_growth: float = 1.15
    ticket_systems: dict[str, float] = field(
        default_factory=lambda: {"servicenow": 0.65, "jira": 0.35}
    )


class Sink(Protocol):
    """Where a shard writes the raw records each intent made (`output.ShardWriter`)."""

    def records(self, source: Source, key: str, records: list[dict], when: datetime) -> None: ...


class Simulation:
    """One shard of a simulated rollout: every shard builds the same workforce from the seed
    and simulates the users whose index falls to it, with a random stream of its own."""

    def __init__(
        self,
        config: SimulationConfig,
        plan: RolloutPlan,
        sink: Sink,
        shard: int = 0,
        shards: int = 1,
    ) -> None:
        self.config = config
        self.plan = plan
        self.sink = sink
        self.rng = random.Random(config.seed)
        self._start = _midnight(plan.start)
        self._end = self._start + timedelta(weeks=config.weeks)
        self._high_risk_apps = frozenset(plan.high_risk_apps)
        self._legacy_apps = frozenset(plan.legacy_apps)
        # (time, sequence, deliver): a heap of intents waiting to be written in time order
        self._pending: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = 0
        # Shards number their tickets in ranges of their own.
        self._ticket_numbers = {
            "servicenow": 10_000 + shard * 500_000,
            "jira": 100 + shard * 500_000,
        }
        self.workforce = build_workforce(self.rng, config, plan)
        self._enroll_at = {u.person.login: self._planned_enrollment(u) for u in self.workforce}
        self.users = self.workforce[shard::shards]
        self.rng = random.Random(f"{config.seed}/{shard}")
        self.truth = TruthBuilder(plan, self.users, config.weeks)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> dict[date, WeekCounts]:
        """Simulate every day, write the records to the sink; the weeks' truth counts."""
        for offset in range(self.config.weeks * 7):
            day = self.plan.start + timedelta(days=offset)
            week = self.plan.week_of(day)
            phase = self.plan.phase_number(week)
            workday = day.isoweekday() <= 5
            for user in self.users:
                if user.active_on(day):
                    if day.isoweekday() == 1 or user.ticket_week != week:
                        self._weekly_ticket_hazard(user, week, phase)
                    self._simulate_user_day(user, day, phase, workday)
            # The next local day starts no earlier than 23:00 UTC of this one (UTC+9, 08:00).
            self._flush(_midnight(day) + timedelta(hours=22))
        self._flush(datetime.max.replace(tzinfo=UTC))
        return self.truth.week_counts()

    def _simulate_user_day(self, user: SimUser, day: date, phase: int, workday: bool) -> None:
        rng = self.rng
        planned = self._enroll_at[user.person.login]
        if planned is not None and planned[0] == day and not user.has_passwordless():
            self._enroll(user, planned[1], phase)
        if user.recovering_until is not None and user.recovering_until[0] == day:
            self._register(user, user.recovering_until[1], user.passwordless_method)
            user.recovering_until = None
        # An SSO session on a managed device outlives a day: about every other workday sees
        # an interactive sign-in (the session expired, a new device or browser), a few two.
        draw = rng.random()
        weekday_sessions = 0 if draw < 0.53 else 2 if draw > 0.97 else 1
        sessions = weekday_sessions if workday else int(draw < 0.04)
        for _ in range(sessions):
            self._sign_in(user, self._working_time(user, day), rng.choice(EVERYDAY_APPS), phase)
        if workday and user.privileged and rng.random() < 0.3:
            app = rng.choice(self.plan.high_risk_apps)
            self._sign_in(user, self._working_time(user, day), app, phase)
        if workday and user.legacy_user and rng.random() < 0.25:
            app = rng.choice(self.plan.legacy_apps)
            self._sign_in(user, self._working_time(user, day), app, phase)
        if user.idp is Source.ENTRA and workday and rng.random() < 0.3:
            self._token_refresh(user, self._working_time(user, day))
        if rng.random() < user.ticket_hazard:
            scenario = rng.choices(user.ticket_scenarios, weights=user.ticket_weights)[0]
            self._ticket(user, day, scenario)

    # -- enrollment --------------------------------------------------------------------------

    def _planned_enrollment(self, user: SimUser) -> tuple[date, datetime] | None:
        """When the user will register a passwordless factor, from the adoption curve."""
        rng = self.rng
        joined_week = self.plan.week_of(user.active_from)
        if user.pilot and rng.random() < 0.95:
            week = rng.randint(1, 3)
        elif joined_week >= 9:  # default for new factors: joiners enroll at onboarding
            week = joined_week
        else:
            pilot_share = ENROLLMENT_CURVE[1][1]
            week = _curve_week(pilot_share + user.propensity * (1 - pilot_share))
            if week is None:
                return None
        first = max(self.plan.week_start(week), user.active_from)
        day = first + timedelta(days=rng.randint(0, 4))
        if user.terminated_on is not None and day >= user.terminated_on:
            return None
        return day, self._working_time(user, day)

    def _enroll(self, user: SimUser, when: datetime, phase: int) -> None:
        self._register(user, when, user.passwordless_method)
        user.enrolled_at = when
        user.converted_at = when + self._conversion_lag(user, when, phase)

    def _conversion_lag(self, user: SimUser, when: datetime, phase: int) -> timedelta:
        """Most users switch within days; some keep typing passwords until the default
        changes (phase 3), and the most reluctant until a password needs a reason (phase 5)."""
        rng = self.rng
        if user.habit < 0.75 or phase >= 5:
            return timedelta(days=rng.uniform(0, 7))
        if user.habit < 0.9:
            anchor = _midnight(self._phase_start(3)) + timedelta(days=rng.uniform(0, 14))
        else:
            anchor = _midnight(self._phase_start(5)) + timedelta(days=rng.uniform(0, 49))
        return max(anchor - when, timedelta(days=rng.uniform(7, 28)))

    def _phase_start(self, number: int) -> date:
        phase = next(p for p in self.plan.phases if p.phase == number)
        return self.plan.week_start(phase.weeks[0])

    def _register(self, user: SimUser, when: datetime, method: Method) -> None:
        user.enrolled.add(method)
        self._enrollment_intent(user, when, method, "registered")

    def _remove(self, user: SimUser, when: datetime, method: Method) -> None:
        user.enrolled.discard(method)
        self._enrollment_intent(user, when, method, "removed")

    def _enrollment_intent(
        self, user: SimUser, when: datetime, method: Method, action: str
    ) -> None:
        intent = EnrollmentIntent(self._uid(), when, user.person, method, action)  # type: ignore[arg-type]

        def deliver() -> None:
            self.truth.enrollment(when, user.person.login, method, action == "registered")
            records = vendors.emit_enrollment(user.idp, intent, self.rng)
            self._records(user.idp, user.person.login, records, when)

        self._schedule(when, deliver)

    # -- sign-ins ----------------------------------------------------------------------------

    def _factors(self, user: SimUser, when: datetime, app: str, phase: int) -> tuple[Method, ...]:
        password = (Method.PASSWORD, user.mfa_method)
        if app in self._legacy_apps:
            return password
        recovering = user.recovering_until is not None
        if app in self._high_risk_apps and phase >= 4 and not recovering:
            if not user.has_passwordless():
                self._enroll(user, when - timedelta(minutes=3), phase)
            return (user.passwordless_method,)
        if not user.has_passwordless():
            return password
        if user.converted_at is not None and when >= user.converted_at:
            return (user.passwordless_method,)
        # Enrolled, still in the habit of typing the password.
        return (user.passwordless_method,) if self.rng.random() < 0.2 else password

    def _sign_in(self, user: SimUser, when: datetime, app: str, phase: int) -> None:
        factors = self._factors(user, when, app, phase)
        if phase >= 4 and app in self._high_risk_apps and Method.PASSWORD in factors:
            # Passwordless-only: a user without a factor (lost, being replaced) is refused.
            self._sign_in_intent(user, when, app, factors, success=False)
            return
        if self.rng.random() < self.config.sign_in_failure_rate:
            self._sign_in_intent(user, when, app, factors, success=False)
            when += timedelta(seconds=self.rng.randint(20, 180))
        self._sign_in_intent(user, when, app, factors, success=True)

    def _sign_in_intent(
        self, user: SimUser, when: datetime, app: str, factors: tuple[Method, ...], success: bool
    ) -> None:
        person = user.person
        intent = SignInIntent(self._uid(), when, person, app, factors, success, self._ip(user))
        duo_check = user.duo_fronted and Method.PUSH in factors
        high_risk = app in self._high_risk_apps

        def deliver() -> None:
            if success:
                self.truth.sign_in(when, person.login, user.idp, factors, high_risk)
            records = vendors.emit_signin(user.idp, intent, self.rng)
            self._records(user.idp, person.login, records, when)
            if duo_check:
                # The same sign-in's second factor, as Duo logs it for its Okta integration,
                # once the password is through.
                at = when + timedelta(seconds=4)
                duo = SignInIntent(
                    self._uid(), at, person, "Okta", (Method.PUSH,), success, intent.ip
                )
                duo_records = vendors.emit_signin(Source.DUO, duo, self.rng)
                self._records(Source.DUO, person.login, duo_records, when)

        self._schedule(when, deliver)

    def _token_refresh(self, user: SimUser, when: datetime) -> None:
        factors = (
            (user.passwordless_method,)
            if user.converted_at is not None and when >= user.converted_at
            else (Method.PASSWORD, user.mfa_method)
        )
        intent = SignInIntent(
            self._uid(), when, user.person, "Microsoft 365", factors, True, self._ip(user), False
        )

        def deliver() -> None:
            records = vendors.emit_signin(Source.ENTRA, intent, self.rng)
            self._records(Source.ENTRA, user.person.login, records, when)

        self._schedule(when, deliver)

    # -- tickets -----------------------------------------------------------------------------

    def _weekly_ticket_hazard(self, user: SimUser, week: int, phase: int) -> None:
        """The user's daily chance of opening a ticket this week, and of which scenario:
        each scenario's weekly rate per 1,000 users applies to the users it can hit."""
        method = user.passwordless_method
        enrolled = user.has_passwordless()
        rates = {Scenario.OTHER: OTHER_TRICKLE_PER_1000}
        growth = self.config.no_runbook_growth
        if enrolled and growth > 0 and phase >= NO_RUNBOOK_PHASE:
            weeks_in = week - self.plan.phases[NO_RUNBOOK_PHASE - 1].weeks[0]
            rates[Scenario.OTHER] += growth**weeks_in
        exposure = {
            Scenario.LOST_DEVICE: enrolled and method in PLATFORM_BOUND,
            Scenario.LOST_SECURITY_KEY: enrolled and method is Method.SECURITY_KEY,
            Scenario.BIOMETRIC_FAILURE: enrolled and method in BIOMETRIC,
            Scenario.UNSUPPORTED_COUNTRY: phase >= 2
            and (user.person.country in UNSUPPORTED_COUNTRIES or user.traveller),
            Scenario.KIOSK_DEVICE: phase >= 3 and user.kiosk,
            Scenario.PHISHING_LOCKDOWN: week
            in (PHISHING_INCIDENT_WEEK, PHISHING_INCIDENT_WEEK + 1),
            Scenario.MNA_INTEGRATION: user.department == MNA_DEPARTMENT and week < MNA_WEEK + 8,
        }
        for scenario, exposed in exposure.items():
            if exposed:
                rates[scenario] = TICKET_RATES_PER_1000[scenario]
        if user.traveller and Scenario.UNSUPPORTED_COUNTRY in rates:
            rates[Scenario.UNSUPPORTED_COUNTRY] /= 4  # only when travelling there
        user.ticket_week = week
        user.ticket_hazard = sum(rates.values()) / 7000
        user.ticket_scenarios = list(rates)
        user.ticket_weights = list(rates.values())

    def _ticket(self, user: SimUser, day: date, scenario: Scenario) -> None:
        rng = self.rng
        when = self._working_time(user, day)
        systems = self.config.ticket_systems
        system = rng.choices(list(systems), weights=list(systems.values()))[0]
        self._ticket_numbers[system] += 1
        intent = TicketIntent(
            self._uid(),
            when,
            user.person,
            scenario,
            system,
            self._ticket_numbers[system],  # type: ignore[arg-type]
        )

        def deliver() -> None:
            self.truth.ticket(when, scenario)
            records = [vendors.emit_ticket(intent, rng)]
            self._records(Source.TICKETS, user.person.login, records, when)

        self._schedule(when, deliver)
        if (
            scenario in (Scenario.LOST_DEVICE, Scenario.LOST_SECURITY_KEY)
            and user.has_passwordless()
        ):
            # The helpdesk removes the lost factor; the user falls back to a password
            # until a replacement is registered.
            self._remove(
                user, when + timedelta(minutes=rng.randint(15, 90)), user.passwordless_method
            )
            days = rng.randint(1, 4) if scenario is Scenario.LOST_DEVICE else rng.randint(2, 7)
            back = day + timedelta(days=days)
            user.recovering_until = (back, self._working_time(user, back))

    # -- plumbing ----------------------------------------------------------------------------

    def _schedule(self, when: datetime, action: Callable[[], None]) -> None:
        if when >= self._end:
            return  # past the simulated horizon (a retry or removal after the last minute)
        self._seq += 1
        heapq.heappush(self._pending, (when, self._seq, action))

    def _flush(self, until: datetime) -> None:
        """Deliver, in time order, every intent before `until` (truth and vendor records)."""
        pending = self._pending
        while pending and pending[0][0] < until:
            heapq.heappop(pending)[2]()

    def _records(self, source: Source, key: str, records: list[dict], when: datetime) -> None:
        self.sink.records(source, key, records, when)

    def _uid(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _working_time(self, user: SimUser, day: date) -> datetime:
        """A moment of the user's local working day (08:00-18:00), in UTC."""
        local_seconds = 8 * 3600 + int(self.rng.random() * 10 * 3600)
        offset = UTC_OFFSET[user.person.country]
        moment = _midnight(day) + timedelta(seconds=local_seconds, hours=-offset)
        # East of UTC, the first local Monday morning is still Sunday in UTC, before the
        # rollout's first week: take the Tuesday instead, so every event is in a rollout week.
        return moment if moment >= self._start else moment + timedelta(days=1)

    def _ip(self, user: SimUser) -> str:
        """The office address, or a hotel / mobile network when a traveller is away."""
        if user.traveller and self.rng.random() < 0.3:
            return ".".join(str(self.rng.randint(1, 254)) for _ in range(4))
        return user.office_ip


def build_workforce(
    rng: random.Random, config: SimulationConfig, plan: RolloutPlan
) -> list[SimUser]:
    """The starting workforce, joiners and leavers spread over the rollout, and the
    acquired company's staff arriving in the M&A week."""
    factory = WorkforceFactory(
        rng,
        config.idp_mix,
        config.duo_fronted_share,
        {source: vendors.passwordless_choices(source) for source in config.idp_mix},
        {source: vendors.mfa_choices(source) for source in config.idp_mix},
        frozenset(plan.pilot_departments),
    )
    horizon = config.weeks * 7
    users = []
    for _ in range(config.users):
        hired = plan.start - timedelta(days=rng.randint(30, 3000))
        leaves = rng.random() < 0.06
        left = plan.start + timedelta(days=rng.randint(7, horizon)) if leaves else None
        users.append(factory.create(hired, left))
    for _ in range(round(config.users * 0.06)):
        users.append(factory.create(plan.start + timedelta(days=rng.randint(1, horizon - 1)), None))
    if config.weeks >= MNA_WEEK:
        arrival = plan.week_start(MNA_WEEK)
        for _ in range(round(config.users * 0.04)):
            users.append(factory.create(arrival, None, MNA_DEPARTMENT, Source.ENTRA))
    return users


def _curve_week(share: float) -> int | None:
    """First rollout week by whose end the curve reaches `share`."""
    for (w0, s0), (w1, s1) in pairwise(ENROLLMENT_CURVE):
        if share <= s1:
            return max(1, int(w0 + (share - s0) / (s1 - s0) * (w1 - w0)) + 1)
    return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
