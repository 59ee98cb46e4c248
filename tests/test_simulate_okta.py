"""Round trip: what the Okta emitter writes, the Okta parser reads back as the intent."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from pipeline.classify import is_passwordless, is_passwordless_factor, primary_method
from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome
from pipeline.simulate.intents import EnrollmentIntent, Person, SignInIntent
from pipeline.simulate.vendors import okta as emitter
from pipeline.sources import okta
from pipeline.sources._common import top_level

PEOPLE = (
    Person("ada.adams@example.com", "Ada Adams", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "DE"),
    Person("kenji.ito@example.com", "Kenji Ito", "a1b2c3d4e5f60718293a4b5c6d7e8f90", "JP"),
    Person("maya.costa@example.com", "Maya Costa", "5d41402abc4b2a76b9719d911017c592", "ZZ"),
)
WHEN = datetime(2024, 3, 5, 9, 0, 0, 123456, tzinfo=UTC)

PASSWORDLESS = (
    Method.MOBILE_AUTHENTICATOR,
    Method.SECURITY_KEY,
    Method.PLATFORM_PASSKEY,
    Method.SYNCED_PASSKEY,
    Method.WINDOWS_HELLO,
    Method.CERTIFICATE,
)
COMBINATIONS: list[tuple[Method, ...]] = [
    (Method.PASSWORD,),
    (Method.PASSWORD, Method.PUSH),
    (Method.PASSWORD, Method.OTP),
    (Method.PASSWORD, Method.SMS),
    (Method.PASSWORD, Method.VOICE),
    (Method.PASSWORD, Method.EMAIL),
    (Method.FEDERATED,),
    *[(method,) for method in PASSWORDLESS],
]


def _intent(
    factors: tuple[Method, ...], success: bool = True, person: Person = PEOPLE[0], n: int = 0
) -> SignInIntent:
    uid = f"{n:08x}" + "c0ffee00deadbeef00112233"
    return SignInIntent(uid, WHEN, person, "Salesforce", factors, success, "203.0.113.9")


def _parse_all(records: list[dict]) -> list[AuthEvent]:
    events = []
    for record in records:
        raw = msgspec.json.encode(record)
        assert okta.recognizes(top_level(raw))
        event = okta.parse(raw)
        assert isinstance(event, AuthEvent)
        events.append(event)
    return events


def _check_flow(intent: SignInIntent, events: list[AuthEvent]) -> list[AuthEvent]:
    """What holds for every sign-in: one session, one user, time order, unique ids."""
    assert len({e.session for e in events}) == 1
    assert events[0].session is not None and events[0].session.startswith("idx")
    assert {e.user for e in events} == {intent.person.login}
    times = [e.time for e in events]
    assert times == sorted(times)
    assert intent.time <= times[0] < intent.time + timedelta(milliseconds=1)
    assert times[-1] - times[0] < timedelta(seconds=60)
    assert len({e.event_id for e in events}) == len(events)
    assert events[0].event_type == "policy.evaluate_sign_on"
    return [e for e in events if e.kind is Kind.AUTHENTICATION_STEP]


@pytest.mark.parametrize("factors", COMBINATIONS, ids=lambda f: "+".join(m.value for m in f))
@pytest.mark.parametrize("person", PEOPLE, ids=lambda p: p.country)
def test_successful_sign_in_round_trips(factors: tuple[Method, ...], person: Person) -> None:
    intent = _intent(factors, person=person)
    events = _parse_all(emitter.emit_signin(intent, random.Random(7)))
    steps = _check_flow(intent, events)
    folded = [f for s in steps for f in s.factors]
    assert folded == list(factors)
    assert all(s.outcome is Outcome.SUCCESS for s in steps)
    assert is_passwordless(folded) == is_passwordless(factors)
    assert primary_method(folded) is primary_method(factors)
    assert all(s.app is None or s.app == "Salesforce" for s in events)
    start = next(e for e in events if e.event_type == "user.session.start")
    assert start.kind is Kind.OTHER and start.outcome is Outcome.SUCCESS
    if events[-1].event_type == "user.authentication.sso":  # sign-ins started at the app
        assert events[-1].app == "Salesforce"
    else:
        assert events[-1] is start


@pytest.mark.parametrize("method", PASSWORDLESS)
def test_each_passwordless_method_is_passwordless(method: Method) -> None:
    events = _parse_all(emitter.emit_signin(_intent((method,)), random.Random(1)))
    (only,) = [e for e in events if e.kind is Kind.AUTHENTICATION_STEP]
    assert only.method is method
    assert only.passwordless is True


@pytest.mark.parametrize(
    ("factors", "reason"),
    [
        ((Method.PASSWORD,), "INVALID_CREDENTIALS"),
        ((Method.PASSWORD, Method.PUSH), "VERIFICATION_ERROR"),
        ((Method.PASSWORD, Method.OTP), "VERIFICATION_ERROR"),
        ((Method.MOBILE_AUTHENTICATOR,), "INVALID_CREDENTIALS"),
        ((Method.SECURITY_KEY,), "INVALID_CREDENTIALS"),
        ((Method.FEDERATED,), "INVALID_CREDENTIALS"),
    ],
)
def test_failed_sign_in_round_trips(factors: tuple[Method, ...], reason: str) -> None:
    intent = _intent(factors, success=False)
    events = _parse_all(emitter.emit_signin(intent, random.Random(3)))
    steps = _check_flow(intent, events)
    # Every factor was attempted, the last one failed.
    assert [f for s in steps for f in s.factors] == list(factors)
    assert [s.outcome for s in steps] == [Outcome.SUCCESS] * (len(factors) - 1) + [Outcome.FAILURE]
    assert steps[-1].reason is not None
    assert steps[-1].passwordless == is_passwordless(factors[-1:])
    start = events[-1]
    assert start.event_type == "user.session.start"
    assert start.outcome is Outcome.FAILURE
    assert start.reason == reason
    assert not any(e.event_type == "user.authentication.sso" for e in events)


def test_push_is_announced_before_it_is_answered() -> None:
    events = _parse_all(
        emitter.emit_signin(_intent((Method.PASSWORD, Method.PUSH)), random.Random(5))
    )
    types = [e.event_type for e in events]
    sent = types.index("system.push.send_factor_verify_push")
    assert events[sent].kind is Kind.OTHER
    assert events[sent + 1].method is Method.PUSH


def test_same_intent_and_rng_state_give_the_same_records() -> None:
    intent = _intent((Method.PASSWORD, Method.PUSH))
    first = emitter.emit_signin(intent, random.Random(11))
    second = emitter.emit_signin(intent, random.Random(11))
    assert msgspec.json.encode(first) == msgspec.json.encode(second)


def test_records_are_unique_across_sign_ins() -> None:
    rng = random.Random(2)
    ids: set[str] = set()
    sessions: set[str] = set()
    count = 0
    for n in range(300):
        factors = COMBINATIONS[n % len(COMBINATIONS)]
        records = emitter.emit_signin(_intent(factors, person=PEOPLE[n % 3], n=n), rng)
        ids.update(r["uuid"] for r in records)
        sessions.add(records[0]["authenticationContext"]["externalSessionId"])
        count += len(records)
    assert len(ids) == count
    assert len(sessions) == 300


def test_records_have_the_log_event_shape() -> None:
    records = emitter.emit_signin(_intent((Method.MOBILE_AUTHENTICATOR,)), random.Random(4))
    for record in records:
        assert list(record) == sorted(record)  # Okta returns LogEvent keys in this order
        assert record["version"] == "0"
        assert record["published"].endswith("Z") and len(record["published"]) == 24
        assert record["actor"]["id"].startswith("00u") and len(record["actor"]["id"]) == 20
        assert len(record["transaction"]["id"]) == 27
    fastpass = records[1]
    assert fastpass["device"]["registered"] is True
    assert fastpass["client"]["userAgent"]["rawUserAgent"].startswith(("B7F62B65BN", "OktaVerify"))


@pytest.mark.parametrize(
    "bad",
    [
        _intent((Method.PASSWORD, Method.UNKNOWN)),
        _intent(()),
        SignInIntent(
            "ab" * 16, WHEN, PEOPLE[0], "Microsoft 365", (Method.PASSWORD,), True, "1.2.3.4", False
        ),
    ],
)
def test_what_okta_cannot_log_raises(bad: SignInIntent) -> None:
    with pytest.raises(ValueError):
        emitter.emit_signin(bad, random.Random(0))


def test_supported_methods_are_all_parseable() -> None:
    assert Method.UNKNOWN not in emitter.SUPPORTED_METHODS
    assert set(PASSWORDLESS) <= emitter.SUPPORTED_METHODS
    assert {Method.PASSWORD, Method.PUSH, Method.OTP, Method.SMS} <= emitter.SUPPORTED_METHODS


# -- enrollment --------------------------------------------------------------------------------

ENROLLABLE = sorted(emitter.SUPPORTED_METHODS - {Method.FEDERATED}, key=lambda m: m.value)


@pytest.mark.parametrize("action", ["registered", "removed"])
@pytest.mark.parametrize("method", ENROLLABLE, ids=lambda m: m.value)
def test_enrollment_round_trips(method: Method, action: str) -> None:
    intent = EnrollmentIntent("9f" * 16, WHEN, PEOPLE[1], method, action)  # type: ignore[arg-type]
    records = emitter.emit_enrollment(intent, random.Random(0))
    assert len(records) == 1
    raw = msgspec.json.encode(records[0])
    assert okta.recognizes(top_level(raw))
    event = okta.parse(raw)
    assert isinstance(event, EnrollmentEvent)
    assert event.kind is Kind.ENROLLMENT
    assert event.action == action
    assert event.method is method
    assert event.passwordless_factor == is_passwordless_factor(method)
    assert event.user == PEOPLE[1].login
    assert event.outcome is Outcome.SUCCESS
    assert intent.time <= event.time < intent.time + timedelta(milliseconds=1)
    assert event.event_type == (
        "user.mfa.factor.activate" if action == "registered" else "user.mfa.factor.deactivate"
    )


def test_enrollment_of_an_idp_raises() -> None:
    intent = EnrollmentIntent("9f" * 16, WHEN, PEOPLE[1], Method.FEDERATED, "registered")
    with pytest.raises(ValueError):
        emitter.emit_enrollment(intent, random.Random(0))


def test_some_sign_ins_start_at_the_app_and_end_with_its_sso() -> None:
    ends: Counter[str] = Counter()
    for n in range(256):  # the 9th byte of the uid decides
        uid = f"00000000c0ffee00{n:02x}adbeef00112233"
        intent = SignInIntent(uid, WHEN, PEOPLE[0], "Salesforce", (Method.PASSWORD,), True, "::1")
        ends[_parse_all(emitter.emit_signin(intent, random.Random(n)))[-1].event_type] += 1
    assert ends == {"user.authentication.sso": 77, "user.session.start": 256 - 77}
