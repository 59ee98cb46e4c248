"""The simulated workforce: who works here, where, on which IdP, and how they will adopt."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime

from pipeline.model import Method, Scenario, Source, WorkforceUser
from pipeline.simulate.intents import Person

# (department, share of the workforce, share privileged)
DEPARTMENTS: tuple[tuple[str, float, float], ...] = (
    ("Engineering", 0.08, 0.35),
    ("IT", 0.025, 0.6),
    ("Security", 0.015, 0.7),
    ("Sales", 0.2, 0.01),
    ("Support", 0.14, 0.01),
    ("Operations", 0.16, 0.03),
    ("Finance", 0.08, 0.15),
    ("Marketing", 0.09, 0.01),
    ("HR", 0.05, 0.05),
    ("Legal", 0.03, 0.02),
    ("Product", 0.13, 0.05),
)
# (ISO country, share, UTC offset of the working day in hours)
COUNTRIES: tuple[tuple[str, float, int], ...] = (
    ("US", 0.42, -6),
    ("GB", 0.1, 0),
    ("DE", 0.09, 1),
    ("FR", 0.05, 1),
    ("IN", 0.12, 5),
    ("BR", 0.06, -3),
    ("JP", 0.05, 9),
    ("SG", 0.04, 8),
    ("CN", 0.04, 8),
    ("AE", 0.03, 4),
)
UTC_OFFSET = {country: offset for country, _, offset in COUNTRIES}
# Countries where the platform passkey feature is unavailable to this company's devices.
UNSUPPORTED_COUNTRIES = frozenset({"CN"})
# Departments with shared front-desk / floor devices.
KIOSK_DEPARTMENTS = frozenset({"Operations", "Support"})
LEGACY_APP_DEPARTMENTS = frozenset({"Finance", "Operations"})

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Andre",
    "Anika",
    "Ben",
    "Carla",
    "Chen",
    "Dana",
    "David",
    "Diego",
    "Elena",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jack",
    "Jana",
    "Jonas",
    "Kai",
    "Kenji",
    "Laura",
    "Leo",
    "Lina",
    "Lucas",
    "Maya",
    "Mei",
    "Mia",
    "Mohammed",
    "Nadia",
    "Noah",
    "Nora",
    "Olga",
    "Omar",
    "Paula",
    "Priya",
    "Rafael",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tariq",
    "Tom",
    "Uma",
    "Victor",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Adams",
    "Ahmed",
    "Alvarez",
    "Bauer",
    "Brown",
    "Costa",
    "Da",
    "Silva",
    "Dubois",
    "Fischer",
    "Garcia",
    "Gupta",
    "Hansen",
    "Ito",
    "Jensen",
    "Kim",
    "Kowalski",
    "Kumar",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Miller",
    "Moreau",
    "Murphy",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Petrov",
    "Rossi",
    "Santos",
    "Schmidt",
    "Singh",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Taylor",
    "Wagner",
    "Wang",
    "Weber",
    "Williams",
    "Wilson",
    "Wright",
    "Yamamoto",
    "Zhang",
]

DOMAIN = "example.com"


@dataclass(slots=True)
class SimUser:
    person: Person
    department: str
    privileged: bool
    idp: Source
    duo_fronted: bool  # Duo is the MFA in front of the user's IdP (Okta)
    traveller: bool
    kiosk: bool
    legacy_user: bool  # uses a legacy app that keeps a password exception
    active_from: date
    terminated_on: date | None
    pilot: bool
    propensity: float  # position on the adoption curve: lower enrolls earlier
    habit: float  # how long the user keeps typing a password after enrolling
    passwordless_method: Method
    mfa_method: Method
    office_ip: str
    enrolled: set[Method] = field(default_factory=set)
    enrolled_at: datetime | None = None
    converted_at: datetime | None = None  # from then on, signs in passwordless
    # A lost factor: password fallback until the replacement is registered (local day, time).
    recovering_until: tuple[date, datetime] | None = None
    # This week's daily chance of opening a helpdesk ticket, and the scenarios it may be.
    ticket_week: int = 0
    ticket_hazard: float = 0.0
    ticket_scenarios: list[Scenario] = field(default_factory=list)
    ticket_weights: list[float] = field(default_factory=list)

    def active_on(self, day: date) -> bool:
        return self.active_from <= day and (self.terminated_on is None or day < self.terminated_on)

    def has_passwordless(self) -> bool:
        return self.passwordless_method in self.enrolled

    def roster_row(self) -> WorkforceUser:
        return WorkforceUser(
            user=self.person.login,
            display_name=self.person.display_name,
            department=self.department,
            country=self.person.country,
            privileged=self.privileged,
            idp=self.idp,
            active_from=self.active_from,
            terminated_on=self.terminated_on,
        )


def _pick(rng: random.Random, weighted: tuple[tuple[str, float, object], ...]) -> tuple:
    return rng.choices(weighted, weights=[w[1] for w in weighted])[0]


class WorkforceFactory:
    """Creates users with unique logins; every draw comes from the one seeded rng."""

    def __init__(
        self,
        rng: random.Random,
        idp_mix: dict[Source, float],
        duo_fronted_share: float,
        passwordless_choices: dict[Source, frozenset[Method]],
        mfa_choices: dict[Source, frozenset[Method]],
        pilot_departments: frozenset[str],
    ) -> None:
        self._rng = rng
        self._idp_mix = idp_mix
        self._duo_fronted_share = duo_fronted_share
        self._passwordless_choices = passwordless_choices
        self._mfa_choices = mfa_choices
        self._pilot_departments = pilot_departments
        self._logins: set[str] = set()

    def create(
        self,
        active_from: date,
        terminated_on: date | None,
        department: str | None = None,
        idp: Source | None = None,
    ) -> SimUser:
        rng = self._rng
        if department is None:
            department, _, privileged_share = _pick(rng, DEPARTMENTS)
        else:
            privileged_share = 0.02
        country = _pick(rng, COUNTRIES)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        person = Person(
            login=self._unique_login(first, last),
            display_name=f"{first} {last}",
            uid=f"{rng.getrandbits(128):032x}",
            country=country,
        )
        if idp is None:
            idp = rng.choices(list(self._idp_mix), weights=list(self._idp_mix.values()))[0]
        privileged = rng.random() < privileged_share
        traveller = department in ("Sales", "Product") and rng.random() < 0.3
        duo_fronted = idp is Source.OKTA and rng.random() < self._duo_fronted_share
        return SimUser(
            person=person,
            department=department,
            privileged=privileged,
            idp=idp,
            duo_fronted=duo_fronted,
            traveller=traveller,
            kiosk=department in KIOSK_DEPARTMENTS and rng.random() < 0.25,
            legacy_user=department in LEGACY_APP_DEPARTMENTS and rng.random() < 0.12,
            active_from=active_from,
            terminated_on=terminated_on,
            pilot=department in self._pilot_departments,
            propensity=rng.random(),
            habit=rng.random(),
            passwordless_method=_passwordless_method(
                rng, privileged, traveller, self._passwordless_choices[idp]
            ),
            mfa_method=Method.PUSH if duo_fronted else _mfa_method(rng, self._mfa_choices[idp]),
            office_ip=f"{rng.choice((198, 203))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
            f"{rng.randint(1, 254)}",
        )

    def _unique_login(self, first: str, last: str) -> str:
        base = f"{first}.{last.replace(' ', '')}".lower()
        login, n = f"{base}@{DOMAIN}", 1
        while login in self._logins:
            n += 1
            login = f"{base}{n}@{DOMAIN}"
        self._logins.add(login)
        return login


def _first_supported(candidates: list[Method], supported: frozenset[Method]) -> Method:
    """The first candidate the IdP can log; the user's preference decides among them."""
    for method in candidates:
        if method in supported:
            return method
    raise ValueError(f"none of {[m.value for m in candidates]} is logged by this IdP")


def _passwordless_method(
    rng: random.Random, privileged: bool, traveller: bool, supported: frozenset[Method]
) -> Method:
    """Security keys for privileged users, synced passkeys for travellers, else the device's
    platform authenticator (Windows Hello / macOS), a mobile app, or a smart card."""
    fallbacks = [Method.MOBILE_AUTHENTICATOR, Method.PLATFORM_PASSKEY, Method.SECURITY_KEY]
    if privileged:
        preferred = Method.SECURITY_KEY
    elif traveller:
        preferred = Method.SYNCED_PASSKEY
    else:
        draw = rng.random()
        if draw < 0.5:
            preferred = Method.WINDOWS_HELLO
        elif draw < 0.75:
            preferred = Method.PLATFORM_PASSKEY
        elif draw < 0.97:
            preferred = Method.MOBILE_AUTHENTICATOR
        else:
            preferred = Method.CERTIFICATE
    return _first_supported([preferred, *fallbacks], supported)


def _mfa_method(rng: random.Random, supported: frozenset[Method]) -> Method:
    draw = rng.random()
    preferred = Method.PUSH if draw < 0.65 else Method.OTP if draw < 0.9 else Method.SMS
    return _first_supported(
        [preferred, Method.PUSH, Method.OTP, Method.SMS, Method.VOICE], supported
    )
