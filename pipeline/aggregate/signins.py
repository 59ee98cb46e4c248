"""One sign-in counts once: the rule that turns classified events into sign-ins.

- Entra and Duo log a sign-in as one record (`kind: authentication`): it is a sign-in of
  its own, keyed by its event id.
- Okta and Ping log each factor check as its own record (`kind: authentication_step`), tied
  by `session`: all steps of a session are one sign-in, keyed by the session. Records of the
  session that are not steps (Okta `user.session.start`, Ping `SSO`) give the sign-in its
  app, and a failed one fails the sign-in.
- A Duo record whose application is another IdP's integration (Duo in front of Okta, with
  the application named "Okta") is the second factor of that IdP's sign-in, which that IdP
  logs itself: it is stored as an event but is not a sign-in.
- Non-interactive records (token refreshes) and session reuse are `kind: other` for
  Entra and Duo: never sign-ins.

The fold is written as partial rows into an AggregatingMergeTree (`sign_in_parts`), whose
columns merge by min / max / set union. Every merge is idempotent and order-free, so a step
that arrives in another batch, on another worker, or twice after a restart still lands in
the same sign-in exactly once. The view `sign_ins` reads the merged rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.classify import is_passwordless_factor
from pipeline.model import AuthEvent, Kind, Method, Outcome, Source

# Sources that log a sign-in as several step records tied by `session`.
STEP_SOURCES = frozenset({Source.OKTA, Source.PING})

# Placeholders that lose every min / max merge: "no outcome seen", "no app seen".
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
_NO_APP = (datetime(2299, 12, 31, tzinfo=UTC), "")

SIGN_IN_PART_COLUMNS = (
    "source",
    "sign_in_id",
    "user",
    "time",
    "step_ids",
    "factors",
    "raw_factors",
    "has_password",
    "has_passwordless_factor",
    "last_outcome",
    "first_app",
)


@dataclass
class SignInPart:
    """What one batch knows of one sign-in; parts of the same sign-in merge in ClickHouse."""

    source: Source
    sign_in_id: str
    user: str = ""
    time: datetime | None = None
    step_ids: set[str] = field(default_factory=set)
    factors: set[Method] = field(default_factory=set)
    raw_factors: set[str] = field(default_factory=set)
    # (time, failed) of the latest step or failed record: the sign-in's outcome
    last_outcome: tuple[datetime, int] = (_NEVER, 0)
    first_app: tuple[datetime, str] = _NO_APP

    def add(self, event: AuthEvent, is_step: bool) -> None:
        self.user = max(self.user, event.user or "")
        self.time = event.time if self.time is None else min(self.time, event.time)
        failed = int(event.outcome is Outcome.FAILURE)
        if is_step:
            self.step_ids.add(event.event_id)
            self.factors.update(event.factors)
            self.raw_factors.update(event.raw_factors)
        if is_step or failed:
            self.last_outcome = max(self.last_outcome, (event.time, failed))
        if event.app:
            self.first_app = min(self.first_app, (event.time, event.app))

    def row(self) -> tuple:
        return (
            self.source.value,
            self.sign_in_id,
            self.user,
            self.time,
            sorted(self.step_ids),
            sorted(self.factors),
            sorted(self.raw_factors),
            int(Method.PASSWORD in self.factors),
            int(any(is_passwordless_factor(factor) for factor in self.factors)),
            self.last_outcome,
            self.first_app,
        )


class SignInFold:
    """Folds a batch of classified events into sign-in parts."""

    def __init__(self, duo_fronted_apps: list[str]) -> None:
        self._fronted = {name.casefold() for name in duo_fronted_apps}
        self.parts: dict[tuple[Source, str], SignInPart] = {}

    def fronted_idp(self, event: AuthEvent) -> str | None:
        """The IdP integration a Duo check was made for, when Duo sits in front of one."""
        if event.source is Source.DUO and event.app and event.app.casefold() in self._fronted:
            return event.app
        return None

    def add(self, event: AuthEvent) -> None:
        key, is_step = self._key(event)
        if key is None:
            return
        part = self.parts.get((event.source, key))
        if part is None:
            part = self.parts[(event.source, key)] = SignInPart(event.source, key)
        part.add(event, is_step)

    def _key(self, event: AuthEvent) -> tuple[str | None, bool]:
        """The sign-in this event belongs to, and whether it is one of its factor checks."""
        if event.kind is Kind.AUTHENTICATION_STEP:
            return event.session or event.event_id, True
        if event.kind is Kind.AUTHENTICATION:
            if not event.interactive or self.fronted_idp(event):
                return None, False
            return event.event_id, True
        if event.source in STEP_SOURCES and event.session:
            return event.session, False
        return None, False

    def rows(self) -> list[tuple]:
        return [part.row() for part in self.parts.values()]
