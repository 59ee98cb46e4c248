"""What the simulator decides happened, before any vendor writes it down.

A vendor emitter (`pipeline.simulate.vendors.<source>`) turns one intent into the raw
records that vendor's API or log stream would hold for it; the truth file is computed from
the intents, never from the parsers. Intents are named tuples: the simulator makes millions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from pipeline.model import Method, Scenario


class Person(NamedTuple):
    login: str  # lower-case UPN / e-mail, the id the parsers normalize to
    display_name: str
    uid: str  # stable 32-hex id to derive vendor object ids from (Okta 00u…, Entra GUID)
    country: str  # ISO 3166-1 alpha-2


class SignInIntent(NamedTuple):
    uid: str  # unique 32-hex id to derive every vendor id of this sign-in from
    time: datetime  # aware UTC; the first record is at this time, later steps after it
    person: Person
    app: str  # application display name
    factors: tuple[Method, ...]  # in the order used; a password, when used, comes first
    success: bool  # False: the last factor failed
    ip: str
    interactive: bool = True  # False: a token refresh (only Entra logs those)


class EnrollmentIntent(NamedTuple):
    uid: str
    time: datetime
    person: Person
    method: Method
    action: Literal["registered", "removed"]


class TicketIntent(NamedTuple):
    uid: str
    time: datetime
    person: Person
    scenario: Scenario
    system: Literal["servicenow", "jira"]
    number: int  # sequence number: INC%07d / HELP-%d
