"""Duo emitter round trip: every record written for an intent reads back, through the Duo
parser, as the classification the intent decided."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from pipeline.classify import is_passwordless, is_passwordless_factor, primary_method
from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome, Source
from pipeline.simulate.intents import EnrollmentIntent, Person, SignInIntent
from pipeline.simulate.vendors import duo as emitter
from pipeline.sources import duo as parser
from pipeline.sources._common import top_level

M = Method
PERSON = Person(
    login="maria.garcia@example.com",
    display_name="Maria Garcia",
    uid="6f1c0d2e9a8b47c5b3d2e1f0a9b8c7d6",
    country="ES",
)
WHEN = datetime(2026, 3, 2, 9, 15, 42, 123456, tzinfo=UTC)


def signin(factors: tuple[Method, ...], success: bool = True, uid: str = "a" * 32) -> SignInIntent:
    return SignInIntent(
        uid=uid,
        time=WHEN,
        person=PERSON,
        app="Workday Finance",
        factors=factors,
        success=success,
        ip="203.0.113.77",
    )


def read(record: dict) -> AuthEvent | EnrollmentEvent:
    raw = json.dumps(record).encode()
    assert parser.recognizes(top_level(raw))
    event = parser.parse(raw)
    assert event.source is Source.DUO
    return event  # type: ignore[return-value]


COMBINATIONS = [
    (M.PUSH,),
    (M.PASSWORD, M.PUSH),
    (M.PASSWORD, M.OTP),
    (M.PASSWORD, M.SMS),
    (M.PASSWORD, M.VOICE),
    (M.OTP,),
    (M.SMS,),
    (M.VOICE,),
    (M.SECURITY_KEY,),
    (M.PLATFORM_PASSKEY,),
    (M.WINDOWS_HELLO,),
    (M.SYNCED_PASSKEY,),
]


@pytest.mark.parametrize("success", [True, False], ids=["success", "failure"])
@pytest.mark.parametrize("factors", COMBINATIONS, ids=lambda f: "+".join(m.value for m in f))
@pytest.mark.parametrize("seed", range(4))
def test_signin_round_trip(factors: tuple[Method, ...], success: bool, seed: int) -> None:
    intent = signin(factors, success, uid=f"{seed:02x}" * 16)
    records = emitter.emit_signin(intent, random.Random(seed))
    assert len(records) == 1
    event = read(records[0])
    assert isinstance(event, AuthEvent)
    assert event.kind is Kind.AUTHENTICATION
    # What the intent decided, as far as Duo's record can show it (never the password).
    assert event.passwordless is is_passwordless(intent.factors)
    assert event.method is primary_method(emitter.logged_factors(intent))
    assert event.factors == list(emitter.logged_factors(intent))
    assert event.outcome is (Outcome.SUCCESS if success else Outcome.FAILURE)
    assert (event.reason is None) is success
    assert event.user == PERSON.login
    assert event.time == WHEN
    assert event.app == "Workday Finance"
    assert event.src_ip == "203.0.113.77"
    assert event.country == "Spain"
    assert event.event_id == event.session == records[0]["txid"]
    assert records[0]["txid"].replace("-", "") == intent.uid


@pytest.mark.parametrize(
    "factors",
    [
        (M.PASSWORD,),  # a password alone never reaches Duo
        (M.PASSWORD, M.SECURITY_KEY),  # would read as passwordless
        (M.PASSWORD, M.WINDOWS_HELLO),
        (M.MOBILE_AUTHENTICATOR,),  # no documented marker in the v2 log
        (M.CERTIFICATE,),
        (M.EMAIL,),
        (M.FEDERATED,),
        (M.PUSH, M.OTP),  # one Duo factor per authentication
        (),
    ],
    ids=lambda f: "+".join(m.value for m in f) or "none",
)
def test_signins_duo_cannot_log_raise(factors: tuple[Method, ...]) -> None:
    with pytest.raises(ValueError):
        emitter.emit_signin(signin(factors), random.Random(0))


def test_non_interactive_sign_in_raises() -> None:
    intent = SignInIntent(
        uid="b" * 32,
        time=WHEN,
        person=PERSON,
        app="Outlook",
        factors=(M.PUSH,),
        success=True,
        ip="203.0.113.77",
        interactive=False,
    )
    with pytest.raises(ValueError):
        emitter.emit_signin(intent, random.Random(0))


def test_supported_methods_all_emit() -> None:
    for method in emitter.SUPPORTED_METHODS:
        records = emitter.emit_signin(signin((method,)), random.Random(1))
        assert read(records[0]).method is method
    assert M.PASSWORD not in emitter.SUPPORTED_METHODS
    assert {M.PASSWORD} | emitter.SUPPORTED_METHODS == emitter.SIGNIN_METHODS


def test_same_intent_and_rng_state_give_the_same_records() -> None:
    intent = signin((M.PASSWORD, M.PUSH), success=False)
    first = emitter.emit_signin(intent, random.Random(7))
    assert emitter.emit_signin(intent, random.Random(7)) == first
    enrollment = EnrollmentIntent(
        uid="c" * 32, time=WHEN, person=PERSON, method=M.PUSH, action="registered"
    )
    assert emitter.emit_enrollment(enrollment, random.Random(3)) == emitter.emit_enrollment(
        enrollment, random.Random(3)
    )


def test_records_have_the_documented_auth_log_fields() -> None:
    (record,) = emitter.emit_signin(signin((M.PASSWORD, M.PUSH)), random.Random(0))
    documented = {
        "access_device",
        "alias",
        "application",
        "auth_device",
        "email",
        "event_type",
        "factor",
        "isotimestamp",
        "ood_software",
        "reason",
        "result",
        "timestamp",
        "trusted_endpoint_status",
        "txid",
        "user",
    }
    assert documented <= record.keys()
    assert record["factor"] in ("duo_push", "verified_duo_push")
    assert record["timestamp"] == int(WHEN.timestamp())
    assert record["user"]["key"].startswith("DU") and len(record["user"]["key"]) == 20
    assert record["application"]["key"].startswith("DI")


@pytest.mark.parametrize("action", ["registered", "removed"])
@pytest.mark.parametrize("method", sorted(emitter.ENROLLABLE_METHODS), ids=lambda m: m.value)
@pytest.mark.parametrize("seed", range(3))
def test_enrollment_round_trip(method: Method, action: str, seed: int) -> None:
    intent = EnrollmentIntent(
        uid=f"{seed + 10:02x}" * 16,
        time=WHEN,
        person=PERSON,
        method=method,
        action=action,  # type: ignore[arg-type]
    )
    records = emitter.emit_enrollment(intent, random.Random(seed))
    assert len(records) == 1
    event = read(records[0])
    assert isinstance(event, EnrollmentEvent)
    assert event.kind is Kind.ENROLLMENT
    assert event.action == action
    assert event.method is method
    assert event.passwordless_factor is is_passwordless_factor(method)
    assert event.outcome is Outcome.SUCCESS
    assert event.user == PERSON.login
    assert event.time == WHEN
    assert event.event_id == records[0]["activity_id"]


@pytest.mark.parametrize(
    "method",
    [M.OTP, M.MOBILE_AUTHENTICATOR, M.PASSWORD, M.CERTIFICATE, M.EMAIL, M.FEDERATED],
    ids=lambda m: m.value,
)
def test_enrollments_duo_cannot_log_raise(method: Method) -> None:
    intent = EnrollmentIntent(
        uid="d" * 32, time=WHEN, person=PERSON, method=method, action="registered"
    )
    with pytest.raises(ValueError):
        emitter.emit_enrollment(intent, random.Random(0))
