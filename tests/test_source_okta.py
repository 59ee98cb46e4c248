"""Okta System Log parser: fixtures are complete LogEvents shaped like the documented object
and like real Classic / Identity Engine records (see docs/sources/okta.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.classify import is_passwordless, primary_method
from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome, Source
from pipeline.sources import okta
from pipeline.sources._common import RejectedEvent, top_level

FIXTURES = Path(__file__).parent / "fixtures" / "okta"
ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json"))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict:
    return json.loads(raw(name))


def step(name: str) -> AuthEvent:
    event = okta.parse(raw(name))
    assert isinstance(event, AuthEvent)
    return event


def enrollment(name: str) -> EnrollmentEvent:
    event = okta.parse(raw(name))
    assert isinstance(event, EnrollmentEvent)
    return event


# -- shape detection ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_recognizes_every_fixture(name: str) -> None:
    assert okta.recognizes(top_level(raw(name)))


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_parses_to_okta(name: str) -> None:
    event = okta.parse(raw(name))
    assert event.source is Source.OKTA
    assert event.event_id
    assert event.time.tzinfo is not None


@pytest.mark.parametrize(
    "other",
    [
        # Entra Graph sign-in
        {
            "id": "66ea54eb",
            "createdDateTime": "2024-03-01T10:00:00Z",
            "userPrincipalName": "a@b.c",
            "authenticationDetails": [],
            "status": {"errorCode": 0},
        },
        # Entra Graph directoryAudit
        {
            "id": "x",
            "activityDisplayName": "User registered security info",
            "loggedByService": "Authentication Methods",
            "activityDateTime": "2024-03-01T10:00:00Z",
        },
        # Entra Event Hub record
        {
            "time": "2024-03-01T10:00:00Z",
            "resourceId": "/tenants/x",
            "operationName": "Sign-in activity",
            "category": "SignInLogs",
            "properties": {},
        },
        # Duo authentication log v2 and admin log
        {
            "txid": "340a23e3",
            "timestamp": 1709287200,
            "access_device": {},
            "auth_device": {},
            "factor": "duo_push",
            "result": "success",
            "user": {"name": "a"},
        },
        {"action": "user_update", "object": "a", "username": "admin", "timestamp": 1709287200},
        # PingOne activity
        {
            "id": "x",
            "recordedAt": "2024-03-01T10:00:00Z",
            "action": {"type": "USER.ACCESS_ALLOWED"},
            "resources": [],
        },
        # ServiceNow incident, Jira issue
        {"sys_id": "x", "number": "INC0010001"},
        {"key": "HELP-1", "fields": {}},
        # An EventBridge event that is not Okta's
        {
            "version": "0",
            "id": "x",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "detail": {"state": "running"},
        },
    ],
)
def test_does_not_recognize_other_vendors(other: dict) -> None:
    assert not okta.recognizes(top_level(json.dumps(other)))


# -- Classic Engine sign-in --------------------------------------------------------------------


def test_classic_session_start_with_password_is_a_password_step() -> None:
    event = step("classic_session_start_password.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.event_type == "user.session.start"
    assert event.event_id == "b9ab9263-a4ae-4780-9981-377ec8f2da86"
    assert event.time == datetime(2024, 3, 4, 8, 2, 11, 406000, tzinfo=UTC)
    assert event.user == "alice.nguyen@example.com"  # lower-cased login
    assert event.outcome is Outcome.SUCCESS
    assert event.method is Method.PASSWORD
    assert event.raw_method == "PASSWORD"
    assert event.factors == [Method.PASSWORD]
    assert event.passwordless is False
    assert event.session == "102GALFw8CzRT2KXoqnca8Jdg"
    assert event.src_ip == "73.109.45.201"
    assert event.country == "United States"
    assert event.reason is None


def test_classic_push_step_shares_the_session_of_the_password_step() -> None:
    password = step("classic_session_start_password.json")
    push = step("classic_mfa_push.json")
    assert push.kind is Kind.AUTHENTICATION_STEP
    assert push.method is Method.PUSH
    assert push.raw_method == "OKTA_VERIFY_PUSH"
    assert push.passwordless is False
    assert push.session == password.session
    # Folded, password + push is a password sign-in.
    folded = password.factors + push.factors
    assert primary_method(folded) is Method.PASSWORD
    assert is_passwordless(folded) is False


def test_classic_failed_password_keeps_reason_and_has_no_session() -> None:
    event = step("classic_session_start_failure.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "INVALID_CREDENTIALS"
    assert event.method is Method.PASSWORD
    assert event.passwordless is False
    # "There is no session granted to the user's client since the sign-in failure."
    assert event.session is None


def test_classic_denied_push_is_a_failed_push_step() -> None:
    event = step("classic_deny_push.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.PUSH
    assert event.raw_method == "OKTA_VERIFY_PUSH"
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "User rejected Okta Verify push"
    assert event.user == "bob.keller@example.com"


def test_classic_iwa_desktop_sso_is_federated() -> None:
    event = step("classic_session_start_iwa.json")
    assert event.method is Method.FEDERATED
    assert event.raw_method == "IWA"
    assert event.passwordless is False


# -- Identity Engine sign-in -------------------------------------------------------------------

OIE_SESSION = "idxyzP_uMC7Rea35TYTYjVUuA"


def test_policy_evaluation_is_other_but_keeps_the_session() -> None:
    event = step("oie_policy_evaluate_sign_on.json")
    assert event.kind is Kind.OTHER
    assert event.method is None
    assert event.raw_method is None
    assert event.passwordless is None
    assert event.factors == []
    assert event.session == OIE_SESSION
    assert event.outcome is Outcome.UNKNOWN  # CHALLENGE is neither success nor failure
    assert event.reason == "Sign-on policy evaluation resulted in CHALLENGE"


def test_oie_password_step() -> None:
    event = step("oie_password_success.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.PASSWORD
    assert event.raw_method == "Password"
    assert event.passwordless is False
    assert event.session == OIE_SESSION
    assert event.outcome is Outcome.SUCCESS


def test_oie_push_verify_step_with_app() -> None:
    event = step("oie_push_verify.json")
    assert event.event_type == "user.authentication.verify"
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.PUSH
    assert event.raw_method == "Okta Verify: Get a push notification"
    assert event.raw_factors == ["Okta Verify: Get a push notification"]
    assert event.passwordless is False
    assert event.session == OIE_SESSION
    assert event.app == "Salesforce"


def test_oie_sign_in_folds_on_session_to_password() -> None:
    names = [
        "oie_policy_evaluate_sign_on.json",
        "oie_password_success.json",
        "oie_push_verify.json",
        "oie_session_start_success.json",
        "oie_sso.json",
    ]
    events = [step(name) for name in names]
    assert {e.session for e in events} == {OIE_SESSION}
    steps = [e for e in events if e.kind is Kind.AUTHENTICATION_STEP]
    assert [e.event_type for e in steps] == [
        "user.authentication.auth_via_mfa",
        "user.authentication.verify",
    ]
    factors = [f for e in steps for f in e.factors]
    assert factors == [Method.PASSWORD, Method.PUSH]
    assert primary_method(factors) is Method.PASSWORD
    assert not is_passwordless(factors)


def test_session_start_without_credential_type_invents_no_factor() -> None:
    event = step("oie_session_start_success.json")
    assert event.kind is Kind.OTHER
    assert event.method is None
    assert event.passwordless is None
    assert event.outcome is Outcome.SUCCESS
    assert event.session == OIE_SESSION
    assert event.app == "Salesforce"


def test_sso_is_other() -> None:
    event = step("oie_sso.json")
    assert event.kind is Kind.OTHER
    assert event.method is None
    assert event.session == OIE_SESSION
    assert event.user == "alice.nguyen@example.com"


def test_oie_failed_password_step_and_failed_session_start() -> None:
    failed = step("oie_password_failure.json")
    assert failed.kind is Kind.AUTHENTICATION_STEP
    assert failed.outcome is Outcome.FAILURE
    assert failed.reason == "INVALID_CREDENTIALS"
    assert failed.method is Method.PASSWORD
    assert failed.passwordless is False
    start = step("oie_session_start_failure.json")
    assert start.kind is Kind.OTHER
    assert start.outcome is Outcome.FAILURE
    assert start.reason == "INVALID_CREDENTIALS"
    assert start.session == failed.session == "idxLW553XTNSo-z-E6y3Myslg"
    assert start.app == "Okta Admin Console"


def test_oie_denied_push_is_a_failed_push_step() -> None:
    event = step("oie_push_denied.json")
    assert event.method is Method.PUSH
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "INVALID_CREDENTIALS"
    assert event.passwordless is False


def test_okta_verify_code_is_otp() -> None:
    event = step("oie_totp.json")
    assert event.method is Method.OTP
    assert event.raw_method == "Okta Verify: totp"
    assert event.passwordless is False


def test_fastpass_is_a_passwordless_mobile_authenticator() -> None:
    event = step("oie_fastpass.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.MOBILE_AUTHENTICATOR
    assert event.raw_method == "Okta Verify: Use Okta FastPass"
    assert event.passwordless is True
    assert event.session == "idxaPWMZtseTdOgAHzfbBtWQA"
    assert event.user == "carla.diaz@example.com"


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("oie_webauthn_security_key.json", Method.SECURITY_KEY),
        ("oie_webauthn_generic_device_bound.json", Method.SECURITY_KEY),
        ("oie_webauthn_windows_hello.json", Method.WINDOWS_HELLO),
        ("oie_webauthn_platform_mac.json", Method.PLATFORM_PASSKEY),
        ("oie_webauthn_synced_icloud.json", Method.SYNCED_PASSKEY),
        ("oie_webauthn_synced_generic.json", Method.SYNCED_PASSKEY),
        ("oie_smart_card.json", Method.CERTIFICATE),
    ],
)
def test_passwordless_patterns(name: str, method: Method) -> None:
    event = step(name)
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is method
    assert event.factors == [method]
    assert event.passwordless is True
    assert event.outcome is Outcome.SUCCESS


def test_webauthn_raw_string_keeps_the_authenticator_name() -> None:
    assert step("oie_webauthn_windows_hello.json").raw_method == "Windows Hello: webauthn"
    assert step("oie_webauthn_synced_generic.json").raw_method == (
        "Security Key or Biometric Authenticator: webauthn"
    )


@pytest.mark.parametrize(
    ("name", "method", "raw_method"),
    [
        ("oie_sms.json", Method.SMS, "Phone: sms"),
        ("oie_voice.json", Method.VOICE, "Phone: voice"),
        ("oie_email.json", Method.EMAIL, "email"),  # same name: not repeated
        ("oie_auth_via_idp.json", Method.FEDERATED, "ASSERTION"),
    ],
)
def test_other_factors_are_not_passwordless(name: str, method: Method, raw_method: str) -> None:
    event = step(name)
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is method
    assert event.raw_method == raw_method
    assert event.passwordless is False


def test_unknown_method_string_is_kept_not_a_crash() -> None:
    event = step("oie_unknown_method.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.UNKNOWN
    assert event.raw_method == "Acme Quantum Token: Use quantum entanglement"
    assert event.raw_factors == ["Acme Quantum Token: Use quantum entanglement"]
    assert event.passwordless is False


def test_unmapped_debug_factor_alone_is_an_unknown_step() -> None:
    record = load("classic_mfa_push.json")
    record["debugContext"]["debugData"]["factor"] = "NEW_FACTOR_2031"
    event = okta.parse(json.dumps(record))
    assert isinstance(event, AuthEvent)
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.UNKNOWN
    assert event.raw_method == "NEW_FACTOR_2031"


def test_lower_case_method_type_used_and_authenticator_key() -> None:
    # Okta writes methodTypeUsed both as a label and as the API's method type.
    record = load("oie_push_verify.json")
    record["target"][1]["detailEntry"]["methodTypeUsed"] = "signed_nonce"
    event = okta.parse(json.dumps(record))
    assert isinstance(event, AuthEvent)
    assert event.method is Method.MOBILE_AUTHENTICATOR
    assert event.passwordless is True


def test_unknown_external_session_id_is_no_session() -> None:
    record = load("oie_sso.json")
    record["authenticationContext"]["externalSessionId"] = "unknown"
    event = okta.parse(json.dumps(record))
    assert event.session is None


# -- enrollment --------------------------------------------------------------------------------


def test_okta_verify_enrollment_on_a_registered_device_is_fastpass() -> None:
    event = enrollment("oie_activate_okta_verify_fastpass.json")
    assert event.kind is Kind.ENROLLMENT
    assert event.action == "registered"
    assert event.method is Method.MOBILE_AUTHENTICATOR
    assert event.passwordless_factor is True
    assert event.passwordless is None
    assert event.raw_method == "Okta Verify"
    assert event.user == "carla.diaz@example.com"
    assert event.event_type == "user.mfa.factor.activate"
    assert event.outcome is Outcome.SUCCESS


def test_okta_verify_enrollment_without_device_is_push() -> None:
    record = load("oie_activate_okta_verify_fastpass.json")
    record["device"] = None
    event = okta.parse(json.dumps(record))
    assert isinstance(event, EnrollmentEvent)
    assert event.method is Method.PUSH
    assert event.passwordless_factor is False


def test_windows_hello_enrollment() -> None:
    event = enrollment("oie_activate_windows_hello.json")
    assert event.action == "registered"
    assert event.method is Method.WINDOWS_HELLO
    assert event.raw_method == "Windows Hello: FIDO_WEBAUTHN"
    assert event.passwordless_factor is True


def test_classic_google_authenticator_enrollment() -> None:
    event = enrollment("classic_mfa_activate_google_authenticator.json")
    assert event.action == "registered"
    assert event.method is Method.OTP
    assert event.raw_method == "token:software:totp"
    assert event.passwordless_factor is False
    assert event.session == "102cUNe6LfAwR5GjxlMsX7U1A"


def test_removal_by_an_admin_is_the_target_users() -> None:
    event = enrollment("oie_deactivate_sms.json")
    assert event.action == "removed"
    assert event.method is Method.SMS
    assert event.raw_method == "Phone: sms"
    assert event.user == "bob.keller@example.com"  # not the admin who acted
    assert event.passwordless_factor is False


def test_reset_all_removes_every_factor() -> None:
    event = enrollment("oie_reset_all.json")
    assert event.action == "removed"
    assert event.method is None
    assert event.raw_method is None
    assert event.passwordless_factor is False
    assert event.user == "carla.diaz@example.com"


# -- other events ------------------------------------------------------------------------------


def test_user_lifecycle_is_other() -> None:
    event = step("user_lifecycle_create.json")
    assert event.kind is Kind.OTHER
    assert event.event_type == "user.lifecycle.create"
    assert event.user == "it.admin@example.com"
    assert event.method is None
    assert event.passwordless is None


def test_oauth_token_grant_is_other_not_a_factor() -> None:
    event = step("app_oauth2_token_grant.json")
    assert event.kind is Kind.OTHER
    assert event.session == OIE_SESSION
    assert event.factors == []


# -- Log Streaming envelope --------------------------------------------------------------------


def test_eventbridge_envelope_is_read_like_the_bare_event() -> None:
    wrapped = step("eventbridge_fastpass.json")
    bare = step("oie_fastpass.json")
    assert wrapped.event_id == "9a0b1c2d-6a7b-11ee-8754-050a89ee763e"  # the LogEvent uuid
    assert wrapped.model_dump(exclude={"event_id"}) == bare.model_dump(exclude={"event_id"})


# -- malformed input ---------------------------------------------------------------------------


def test_invalid_json_is_rejected() -> None:
    with pytest.raises(RejectedEvent, match="invalid JSON"):
        okta.parse(b'{"uuid": "x", "published": ')


def test_json_array_is_rejected() -> None:
    with pytest.raises(RejectedEvent, match="unexpected shape"):
        okta.parse(b"[" + raw("oie_fastpass.json") + b"]")


@pytest.mark.parametrize("body", [b"null", b"42", b'"text"', b"{}"])
def test_non_events_are_rejected(body: bytes) -> None:
    with pytest.raises(RejectedEvent):
        okta.parse(body)


def test_missing_published_is_rejected() -> None:
    record = load("oie_fastpass.json")
    record["published"] = None
    with pytest.raises(RejectedEvent, match="published"):
        okta.parse(json.dumps(record))


def test_unreadable_published_is_rejected() -> None:
    record = load("oie_fastpass.json")
    record["published"] = "yesterday"
    with pytest.raises(RejectedEvent, match="unreadable timestamp"):
        okta.parse(json.dumps(record))


def test_missing_event_type_is_rejected() -> None:
    record = load("oie_fastpass.json")
    del record["eventType"]
    with pytest.raises(RejectedEvent, match="eventType"):
        okta.parse(json.dumps(record))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("published",), 1709625600),
        (("uuid",), 12345),
        (("target",), "User"),
        (("target",), [["not", "an", "object"]]),
        (("actor",), ["a"]),
        (("outcome", "result"), True),
        (("authenticationContext",), "idx123"),
        (("debugContext", "debugData", "factor"), {"name": "push"}),
    ],
)
def test_wrong_types_are_rejected(path: tuple[str, ...], value: object) -> None:
    record = load("oie_push_verify.json")
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(RejectedEvent, match="unexpected shape"):
        okta.parse(json.dumps(record))


def test_minimal_event_with_nulls_is_other() -> None:
    body = {
        "uuid": "u-1",
        "published": "2024-03-01T00:00:00.000Z",
        "eventType": "user.session.start",
        "actor": None,
        "authenticationContext": None,
        "client": None,
        "outcome": None,
        "target": None,
        "debugContext": None,
        "device": None,
    }
    event = okta.parse(json.dumps(body))
    assert isinstance(event, AuthEvent)
    assert event.kind is Kind.OTHER
    assert event.outcome is Outcome.UNKNOWN
    assert event.user is None
    assert event.session is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(
        [
            "actor",
            "client",
            "outcome",
            "target",
            "authenticationContext",
            "debugContext",
            "device",
            "detail",
            "published",
            "eventType",
            "uuid",
            "displayMessage",
        ]
    ),
    value=_json,
    name=st.sampled_from(ALL_FIXTURES),
)
def test_any_value_in_any_field_gives_an_event_or_a_reject(
    key: str, value: object, name: str
) -> None:
    record = load(name)
    record[key] = value
    try:
        event = okta.parse(msgspec.json.encode(record))
    except RejectedEvent as exc:
        assert exc.reason
    else:
        assert event.source is Source.OKTA


# -- records as real shippers deliver them -------------------------------------------------------
# Our own Classic records of one `/api/v1/authn` sign-in: `user.session.start` and
# `policy.evaluate_sign_on` sharing one `externalSessionId` and `transaction.id`, complete
# LogEvents (https://developer.okta.com/docs/reference/api/system-log/) with their null fields.


@pytest.mark.parametrize(
    ("name", "event_type", "time"),
    [
        (
            "authn_session_start.json",
            "user.session.start",
            datetime(2025, 6, 3, 7, 41, 12, 306000, tzinfo=UTC),
        ),
        (
            "authn_policy_evaluate_sign_on.json",
            "policy.evaluate_sign_on",
            datetime(2025, 6, 3, 7, 41, 12, 351000, tzinfo=UTC),
        ),
    ],
)
def test_records_as_shippers_deliver_them_parse(name: str, event_type: str, time: datetime) -> None:
    event = okta.parse(raw(name))
    assert event.event_type == event_type
    assert event.time == time
    assert event.event_id == load(name)["uuid"]
    assert event.user == "ana.lima@example.com"


def _reversed(value: object) -> object:
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {key: _reversed(item) for key, item in reversed(value.items())}
    if isinstance(value, list):
        return [_reversed(item) for item in value]
    return value


def _reshipped(record: dict) -> list[bytes]:
    """One record as different shippers serialize it: compact, pretty-printed, keys in another
    order, non-ASCII escaped or not."""
    return [
        json.dumps(record, separators=(",", ":")).encode(),
        json.dumps(record, indent=2, ensure_ascii=False).encode(),
        json.dumps(_reversed(record)).encode(),
        json.dumps(record, sort_keys=True, ensure_ascii=True).encode(),
    ]


def test_record_without_uuid_gets_an_id_derived_from_its_content() -> None:
    record = load("oie_fastpass.json")
    del record["uuid"]
    record["displayMessage"] = "Évaluation"  # non-ASCII: escaped by some shippers, not others
    variants = _reshipped(record)
    assert len(set(variants)) == len(variants)
    ids = {okta.parse(variant).event_id for variant in variants}
    assert len(ids) == 1
    (derived,) = ids
    assert derived.startswith("derived:") and len(derived) == len("derived:") + 32
    assert okta.recognizes(top_level(variants[0]))  # `auto` still finds Okta
    # everything but the id is read as from the record with its uuid
    with_uuid = okta.parse(raw("oie_fastpass.json"))
    without = okta.parse(variants[0])
    assert {**without.__dict__, "event_id": None} == {**with_uuid.__dict__, "event_id": None}
    # another record (one second later) has another id; an empty uuid is no uuid
    later = dict(record, published="2024-03-09T16:02:41.367Z")
    assert okta.parse(json.dumps(later)).event_id not in (derived, "")
    assert okta.parse(json.dumps(dict(record, uuid=""))).event_id.startswith("derived:")


def test_record_without_uuid_or_time_is_rejected_for_its_time() -> None:
    record = load("oie_fastpass.json")
    del record["uuid"]
    del record["published"]
    with pytest.raises(RejectedEvent, match="missing timestamp `published`"):
        okta.parse(json.dumps(record))


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        # the System Log's own form (LogEvent example, developer.okta.com system-log)
        ("2017-09-01T17:43:54.000Z", datetime(2017, 9, 1, 17, 43, 54, tzinfo=UTC)),
        # the same instant as a shipper may rewrite it
        ("2017-09-01T17:43:54Z", datetime(2017, 9, 1, 17, 43, 54, tzinfo=UTC)),
        ("2017-09-01 17:43:54.000Z", datetime(2017, 9, 1, 17, 43, 54, tzinfo=UTC)),
        ("2017-09-01T19:43:54.000+0200", datetime(2017, 9, 1, 17, 43, 54, tzinfo=UTC)),
    ],
)
def test_published_forms(published: str, expected: datetime) -> None:
    record = dict(load("oie_fastpass.json"), published=published)
    assert okta.parse(json.dumps(record)).time == expected


@pytest.mark.parametrize(
    ("published", "reason"),
    [
        # Okta does not document `published` as UTC: a zoneless value is not guessed
        ("2017-09-01T17:43:54.000", "has no timezone"),
        ("2017-09-01", "has no time of day"),
        ("09/01/2017 17:43:54", "day/month order"),
    ],
)
def test_published_that_cannot_be_placed_is_rejected(published: str, reason: str) -> None:
    record = dict(load("oie_fastpass.json"), published=published)
    with pytest.raises(RejectedEvent, match=reason):
        okta.parse(json.dumps(record))
