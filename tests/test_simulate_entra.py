"""Entra emitter: every emitted record parses back to what the intent says happened."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.classify import is_passwordless, is_passwordless_factor, primary_method
from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome
from pipeline.simulate.intents import EnrollmentIntent, Person, SignInIntent
from pipeline.simulate.vendors import entra as emitter
from pipeline.sources import entra
from pipeline.sources._common import top_level

PERSON = Person(
    login="nestor.w@contoso.com",
    display_name="Nestor Wilke",
    uid="3f6c1e2a9b8d4c7e8a1f2b3c4d5e6f70",
    country="DE",
)
T0 = datetime(2024, 9, 2, 8, 30, 15, 123456, tzinfo=UTC)

PASSWORDLESS = [
    Method.WINDOWS_HELLO,
    Method.PLATFORM_PASSKEY,
    Method.SYNCED_PASSKEY,
    Method.SECURITY_KEY,
    Method.MOBILE_AUTHENTICATOR,
    Method.CERTIFICATE,
]
COMBINATIONS: list[tuple[Method, ...]] = [
    (Method.PASSWORD,),
    (Method.PASSWORD, Method.PUSH),
    (Method.PASSWORD, Method.OTP),
    (Method.PASSWORD, Method.SMS),
    (Method.PASSWORD, Method.VOICE),
    *[(method,) for method in PASSWORDLESS],
]


def intent(
    factors: tuple[Method, ...], *, success: bool = True, interactive: bool = True, n: int = 0
) -> SignInIntent:
    return SignInIntent(
        uid=f"{n:08x}" + "5d2c7b1e4a9f48e3b6c0d1e2",
        time=T0 + timedelta(minutes=n),
        person=PERSON,
        app="Microsoft Teams",
        factors=factors,
        success=success,
        ip="198.51.100.23",
        interactive=interactive,
    )


def parse_all(records: list[dict]) -> list[AuthEvent | EnrollmentEvent]:
    events = []
    for record in records:
        raw = json.dumps(record)
        assert entra.recognizes(top_level(raw))
        event = entra.parse(raw)
        assert isinstance(event, AuthEvent | EnrollmentEvent)
        events.append(event)
    return events


@pytest.mark.parametrize("success", [True, False], ids=["success", "failure"])
@pytest.mark.parametrize("factors", COMBINATIONS, ids=lambda f: "+".join(m.value for m in f))
def test_sign_in_round_trip(factors: tuple[Method, ...], success: bool) -> None:
    rng = random.Random(7)
    shapes = set()
    for n in range(12):  # enough draws to see both shapes
        sign_in = intent(factors, success=success, n=n)
        records = emitter.emit_signin(sign_in, rng)
        assert len(records) == 1
        shapes.add("properties" in records[0])
        (event,) = parse_all(records)
        assert isinstance(event, AuthEvent)
        assert event.kind is Kind.AUTHENTICATION
        assert event.outcome is (Outcome.SUCCESS if success else Outcome.FAILURE)
        assert event.factors == list(factors)
        assert event.method is primary_method(factors)
        assert event.passwordless is is_passwordless(factors)
        assert event.user == PERSON.login
        assert event.time == sign_in.time
        assert (
            event.event_id == f"{sign_in.uid[:8]}-{sign_in.uid[8:12]}-{sign_in.uid[12:16]}-"
            f"{sign_in.uid[16:20]}-{sign_in.uid[20:]}"
        )
        assert event.session is not None
        assert event.app == "Microsoft Teams"
        assert event.src_ip == "198.51.100.23"
        assert event.country == "DE"
        assert event.interactive is True
        if not success:
            assert event.reason
    assert shapes == {True, False}


def test_passwordless_sign_ins_are_passwordless() -> None:
    for method in PASSWORDLESS:
        (event,) = parse_all(emitter.emit_signin(intent((method,)), random.Random(1)))
        assert event.passwordless is True and event.method is method


def test_password_push_is_password() -> None:
    (event,) = parse_all(
        emitter.emit_signin(intent((Method.PASSWORD, Method.PUSH)), random.Random(2))
    )
    assert event.method is Method.PASSWORD and event.passwordless is False
    assert event.raw_factors == ["Password", "Mobile app notification"]


def test_failed_password_reports_bad_password() -> None:
    (event,) = parse_all(
        emitter.emit_signin(intent((Method.PASSWORD,), success=False), random.Random(3))
    )
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "Error validating credentials due to invalid username or password."


def test_non_interactive_is_a_non_interactive_event_hub_record() -> None:
    for method in (Method.PASSWORD, Method.WINDOWS_HELLO):
        sign_in = intent((method,), interactive=False)
        (record,) = emitter.emit_signin(sign_in, random.Random(4))
        assert record["category"] == "NonInteractiveUserSignInLogs"
        (event,) = parse_all([record])
        assert event.kind is Kind.OTHER and event.interactive is False
        # A token refresh keeps its method but gets no passwordless verdict (not a sign-in).
        assert event.method is method and event.passwordless is None
        assert event.time == sign_in.time


def test_session_is_the_correlation_id_and_stable_per_sign_in() -> None:
    sign_in = intent((Method.PASSWORD, Method.PUSH))
    one = parse_all(emitter.emit_signin(sign_in, random.Random(5)))[0]
    two = parse_all(emitter.emit_signin(sign_in, random.Random(6)))[0]
    other = parse_all(emitter.emit_signin(intent((Method.PASSWORD,), n=1), random.Random(5)))[0]
    assert one.session == two.session != other.session


def test_event_hub_envelope_lands_after_the_sign_in() -> None:
    rng = random.Random(8)
    for n in range(20):
        sign_in = intent((Method.SECURITY_KEY,), n=n)
        (record,) = emitter.emit_signin(sign_in, rng)
        if "properties" in record:
            landed = datetime.fromisoformat(record["time"])
            assert landed >= sign_in.time
            steps = record["properties"]["authenticationDetails"]
        else:
            steps = record["authenticationDetails"]
        for step in steps:
            assert datetime.fromisoformat(step["authenticationStepDateTime"]) >= sign_in.time


def test_deterministic() -> None:
    sign_in = intent((Method.PASSWORD, Method.OTP), success=False)
    assert emitter.emit_signin(sign_in, random.Random(9)) == emitter.emit_signin(
        sign_in, random.Random(9)
    )
    enroll = EnrollmentIntent(
        uid="ab" * 16, time=T0, person=PERSON, method=Method.SYNCED_PASSKEY, action="registered"
    )
    assert emitter.emit_enrollment(enroll, random.Random(9)) == emitter.emit_enrollment(
        enroll, random.Random(9)
    )


@pytest.mark.parametrize("method", [Method.EMAIL, Method.FEDERATED, Method.UNKNOWN])
def test_unsupported_sign_in_factor_raises(method: Method) -> None:
    with pytest.raises(ValueError, match=method.value):
        emitter.emit_signin(intent((Method.PASSWORD, method)), random.Random(0))


# FIDO2 security-info records do not say which kind of passkey: the generic FIDO2 label.
ENROLLED_AS = {
    Method.SYNCED_PASSKEY: Method.SECURITY_KEY,
    Method.PLATFORM_PASSKEY: Method.SECURITY_KEY,
}


@pytest.mark.parametrize("action", ["registered", "removed"])
@pytest.mark.parametrize("method", sorted(emitter.ENROLLABLE_METHODS), ids=str)
def test_enrollment_round_trip(method: Method, action: str) -> None:
    rng = random.Random(11)
    shapes = set()
    for n in range(10):
        enroll = EnrollmentIntent(
            uid=f"{n:02x}" + "c0ffee" * 5,
            time=T0 + timedelta(hours=n),
            person=PERSON,
            method=method,
            action=action,  # type: ignore[arg-type]
        )
        records = emitter.emit_enrollment(enroll, rng)
        shapes.add("properties" in records[0])
        events = parse_all(records)
        enrollments = [e for e in events if isinstance(e, EnrollmentEvent)]
        assert len(enrollments) == 1  # companion records are `other`, never a second count
        (event,) = enrollments
        assert event.action == action
        assert event.outcome is Outcome.SUCCESS
        assert event.method is ENROLLED_AS.get(method, method)
        assert event.passwordless_factor is is_passwordless_factor(method)
        assert event.user == PERSON.login
        assert event.time == enroll.time
        for other in events[1:]:
            assert other.kind is Kind.OTHER and other.session == event.session
            assert other.time >= event.time
    assert shapes == {True, False}


def test_passkey_registration_has_its_companion_record() -> None:
    enroll = EnrollmentIntent(
        uid="cd" * 16, time=T0, person=PERSON, method=Method.SYNCED_PASSKEY, action="registered"
    )
    _first, second = emitter.emit_enrollment(enroll, random.Random(12))
    body = second.get("properties", second)
    assert body["activityDisplayName"] == "Add Passkey (synced)"
    assert body["additionalDetails"][0]["key"] == "AAGuid"


@pytest.mark.parametrize("method", [Method.PASSWORD, Method.CERTIFICATE, Method.FEDERATED])
def test_unregistrable_enrollment_raises(method: Method) -> None:
    enroll = EnrollmentIntent(
        uid="ef" * 16, time=T0, person=PERSON, method=method, action="registered"
    )
    with pytest.raises(ValueError, match=method.value):
        emitter.emit_enrollment(enroll, random.Random(0))
