"""Ping emitter round trips: every record it writes parses back to what the intent says."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.classify import is_passwordless, is_passwordless_factor, primary_method
from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome, Source
from pipeline.simulate.intents import EnrollmentIntent, Person, SignInIntent
from pipeline.simulate.vendors import ping as emitter
from pipeline.sources import ping

PERSON = Person("ana.lima@example.com", "Ana Lima", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "BR")
WHEN = datetime(2025, 3, 4, 9, 15, 2, 512345, tzinfo=UTC)
FIRST_MS = datetime(2025, 3, 4, 9, 15, 2, 513000, tzinfo=UTC)  # rounded up to the millisecond

P1_COMBOS: list[tuple[Method, ...]] = [
    (Method.PASSWORD,),
    (Method.PASSWORD, Method.PUSH),
    (Method.PASSWORD, Method.OTP),
    (Method.PASSWORD, Method.SMS),
    (Method.PASSWORD, Method.VOICE),
    (Method.PASSWORD, Method.EMAIL),
    (Method.PLATFORM_PASSKEY,),
    (Method.SYNCED_PASSKEY,),
    (Method.SECURITY_KEY,),
    (Method.MOBILE_AUTHENTICATOR,),
    (Method.PASSWORD, Method.SECURITY_KEY),
]
PF_COMBOS: list[tuple[Method, ...]] = [
    (Method.PASSWORD,),
    (Method.PASSWORD, Method.PUSH),
    (Method.MOBILE_AUTHENTICATOR,),
    (Method.CERTIFICATE,),
    (Method.FEDERATED,),
]


def _intent(factors: tuple[Method, ...], success: bool = True, uid: str = "a" * 32) -> SignInIntent:
    return SignInIntent(uid, WHEN, PERSON, "Workday", factors, success, "203.0.113.9")


def _parse_all(records: list[dict]) -> list[AuthEvent | EnrollmentEvent]:
    events = []
    for record in records:
        assert ping.recognizes({key: b"" for key in record})  # type: ignore[misc]
        event = ping.parse(json.dumps(record))
        assert isinstance(event, AuthEvent | EnrollmentEvent)
        events.append(event)
    return events


def _check_signin(intent: SignInIntent, records: list[dict]) -> list[AuthEvent]:
    events = _parse_all(records)
    assert all(isinstance(e, AuthEvent) for e in events)
    auth_events = [e for e in events if isinstance(e, AuthEvent)]
    steps = [e for e in auth_events if e.kind is Kind.AUTHENTICATION_STEP]
    others = [e for e in auth_events if e.kind is Kind.OTHER]
    assert len(steps) + len(others) == len(records)
    # one step per factor, in order
    factors = [f for step in steps for f in step.factors]
    assert factors == list(intent.factors)
    # the sign-in, as its session's steps together
    assert is_passwordless(factors) == is_passwordless(intent.factors)
    assert primary_method(factors) == primary_method(intent.factors)
    for step, method in zip(steps, intent.factors, strict=True):
        assert step.method is method
        assert step.passwordless == is_passwordless([method])
        assert step.raw_method
    # outcome: a failed intent fails its last factor
    expected = [Outcome.SUCCESS] * len(steps)
    if not intent.success:
        expected[-1] = Outcome.FAILURE
        assert steps[-1].reason
    assert [s.outcome for s in steps] == expected
    # who, when, tied together
    assert {e.user for e in events} == {PERSON.login}
    assert len({e.session for e in events}) == 1 and events[0].session
    assert len({e.event_id for e in events}) == len(events)
    times = [e.time for e in events]
    assert times == sorted(times)
    assert times[0] == FIRST_MS
    assert times[-1] - times[0] < timedelta(minutes=2)
    assert {e.app for e in auth_events} == {"Workday"}
    assert all(e.source is Source.PING for e in events)
    return steps


@pytest.fixture
def only_pingone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emitter, "PF_SHARE", 0.0)


@pytest.fixture
def only_pingfederate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emitter, "PF_SHARE", 1.0)


@pytest.mark.usefixtures("only_pingone")
@pytest.mark.parametrize("success", [True, False], ids=["ok", "failed"])
@pytest.mark.parametrize("factors", P1_COMBOS, ids=lambda f: "+".join(m.value for m in f))
def test_pingone_round_trip(factors: tuple[Method, ...], success: bool) -> None:
    intent = _intent(factors, success)
    records = emitter.emit_signin(intent, random.Random(7))
    assert all("recordedAt" in r and "correlationId" in r for r in records)
    steps = _check_signin(intent, records)
    assert steps[0].session == "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"  # the intent uid
    assert all(e.src_ip is None for e in steps)  # PingOne activities carry no IP
    # a successful sign-in ends with its session
    assert (records[-1]["action"]["type"] == "SESSION.CREATED") is success


@pytest.mark.usefixtures("only_pingfederate")
@pytest.mark.parametrize("success", [True, False], ids=["ok", "failed"])
@pytest.mark.parametrize("factors", PF_COMBOS, ids=lambda f: "+".join(m.value for m in f))
def test_pingfederate_round_trip(factors: tuple[Method, ...], success: bool) -> None:
    intent = _intent(factors, success)
    records = emitter.emit_signin(intent, random.Random(7))
    assert all("trackingid" in r and r["event"] for r in records)
    steps = _check_signin(intent, records)
    assert steps[0].session is not None and steps[0].session.startswith("tid:")
    assert {s.src_ip for s in steps} == {"203.0.113.9"}
    assert (records[-1]["event"] == "SSO") is success


def test_pingfederate_sso_lists_every_adapter(only_pingfederate: None) -> None:
    records = emitter.emit_signin(_intent((Method.PASSWORD, Method.PUSH)), random.Random(1))
    assert records[-1]["adapterid"] == "[HTMLFormPD, PingIDAdapter]"
    assert [r["status"] for r in records if r["event"] == "AUTHN_ATTEMPT"] == [
        "success",
        "inprogress",
        "success",
    ]


def test_both_products_are_exercised_deterministically() -> None:
    products = []
    for n in range(400):
        intent = _intent((Method.PASSWORD, Method.PUSH), uid=f"{n:032x}")
        records = emitter.emit_signin(intent, random.Random(n))
        products.append("pf" if "trackingid" in records[0] else "p1")
        _check_signin(intent, records)
    share = products.count("pf") / len(products)
    assert 0.15 < share < 0.35
    # passkeys are PingOne-only; certificates PingFederate-only
    assert "recordedAt" in emitter.emit_signin(_intent((Method.SECURITY_KEY,)), random.Random(0))[0]
    assert "trackingid" in emitter.emit_signin(_intent((Method.CERTIFICATE,)), random.Random(0))[0]


@pytest.mark.parametrize("factors", P1_COMBOS + PF_COMBOS, ids=str)
def test_same_intent_and_rng_state_same_records(factors: tuple[Method, ...]) -> None:
    intent = _intent(factors)
    first = emitter.emit_signin(intent, random.Random(42))
    again = emitter.emit_signin(intent, random.Random(42))
    assert first == again
    json.dumps(first)  # plain JSON values only


def test_ids_follow_the_intent_and_person() -> None:
    one = emitter.emit_signin(_intent((Method.SECURITY_KEY,), uid="1" * 32), random.Random(0))
    two = emitter.emit_signin(_intent((Method.SECURITY_KEY,), uid="2" * 32), random.Random(0))
    assert one[0]["id"] != two[0]["id"]
    assert one[0]["correlationId"] != two[0]["correlationId"]
    # the same person's same key
    assert one[0]["_embedded"]["device"]["id"] == two[0]["_embedded"]["device"]["id"]
    assert one[0]["resources"][0]["id"] == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@pytest.mark.parametrize(
    "factors",
    [
        (Method.WINDOWS_HELLO,),
        (Method.PASSWORD, Method.UNKNOWN),
        (Method.SMS, Method.CERTIFICATE),
        (),
    ],
    ids=str,
)
def test_factors_ping_cannot_log(factors: tuple[Method, ...]) -> None:
    with pytest.raises(ValueError):
        emitter.emit_signin(_intent(factors), random.Random(0))


def test_token_refresh_is_not_logged() -> None:
    intent = SignInIntent(
        "b" * 32, WHEN, PERSON, "Workday", (Method.PASSWORD,), True, "1.2.3.4", False
    )
    assert emitter.emit_signin(intent, random.Random(0)) == []


def test_supported_methods() -> None:
    assert Method.WINDOWS_HELLO not in emitter.SUPPORTED_METHODS
    assert Method.CERTIFICATE not in emitter.SUPPORTED_METHODS  # no enrollment to log
    assert Method.CERTIFICATE in emitter.SIGNIN_METHODS
    # every passwordless method offered can be enrolled
    passwordless = {m for m in emitter.SUPPORTED_METHODS if is_passwordless_factor(m)}
    assert passwordless <= emitter.ENROLLABLE_METHODS
    assert passwordless == {
        Method.PLATFORM_PASSKEY,
        Method.SYNCED_PASSKEY,
        Method.SECURITY_KEY,
        Method.MOBILE_AUTHENTICATOR,
    }


# ------------------------------------------------------------------------------- enrollments


@pytest.mark.parametrize("method", sorted(emitter.ENROLLABLE_METHODS), ids=str)
def test_registration_round_trip(method: Method) -> None:
    intent = EnrollmentIntent("c" * 32, WHEN, PERSON, method, "registered")
    records = emitter.emit_enrollment(intent, random.Random(3))
    assert [r["action"]["type"] for r in records] == ["DEVICE.CREATED", "DEVICE.ACTIVATED"]
    created, activated = _parse_all(records)
    assert created.kind is Kind.OTHER  # pending activation
    assert isinstance(activated, EnrollmentEvent)
    assert activated.action == "registered"
    assert activated.method is method
    assert activated.passwordless_factor is is_passwordless_factor(method)
    assert activated.user == PERSON.login
    assert activated.outcome is Outcome.SUCCESS
    assert created.time == FIRST_MS < activated.time
    assert emitter.emit_enrollment(intent, random.Random(3)) == records


@pytest.mark.parametrize("method", sorted(emitter.ENROLLABLE_METHODS), ids=str)
def test_removal_round_trip(method: Method) -> None:
    registered = emitter.emit_enrollment(
        EnrollmentIntent("d" * 32, WHEN, PERSON, method, "registered"), random.Random(0)
    )
    intent = EnrollmentIntent("e" * 32, WHEN + timedelta(days=30), PERSON, method, "removed")
    records = emitter.emit_enrollment(intent, random.Random(0))
    (event,) = _parse_all(records)
    assert isinstance(event, EnrollmentEvent)
    assert event.action == "removed"
    assert event.method is method
    assert event.event_type == "DEVICE.DELETED"
    assert event.time == FIRST_MS + timedelta(days=30)
    # the device removed is the device registered
    assert records[0]["_embedded"]["device"]["id"] == registered[1]["_embedded"]["device"]["id"]


@pytest.mark.parametrize(
    "method", [Method.PASSWORD, Method.PUSH, Method.CERTIFICATE, Method.WINDOWS_HELLO], ids=str
)
def test_enrollments_ping_cannot_log(method: Method) -> None:
    with pytest.raises(ValueError):
        emitter.emit_enrollment(
            EnrollmentIntent("f" * 32, WHEN, PERSON, method, "registered"), random.Random(0)
        )


def test_push_uses_the_registered_mobile_device(only_pingone: None) -> None:
    enrolled = emitter.emit_enrollment(
        EnrollmentIntent("1" * 32, WHEN, PERSON, Method.MOBILE_AUTHENTICATOR, "registered"),
        random.Random(0),
    )
    signin = emitter.emit_signin(_intent((Method.PASSWORD, Method.PUSH)), random.Random(0))
    assert signin[1]["_embedded"]["device"]["id"] == enrolled[1]["_embedded"]["device"]["id"]
