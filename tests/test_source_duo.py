"""Cisco Duo parser: authentication log v2, activity, administrator, offline enrollment and
telephony records (fixtures under tests/fixtures/duo, shaped like Duo's documented samples)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome, Source
from pipeline.sources import duo
from pipeline.sources._common import RejectedEvent, top_level

FIXTURES = Path(__file__).parent / "fixtures" / "duo"
ALL_FIXTURES = sorted(FIXTURES.glob("*.json"))


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict[str, Any]:
    return json.loads(raw(name))


def auth(name: str) -> AuthEvent:
    event = duo.parse(raw(name))
    assert isinstance(event, AuthEvent)
    return event


def enrollment(name: str) -> EnrollmentEvent:
    event = duo.parse(raw(name))
    assert isinstance(event, EnrollmentEvent)
    return event


# --- Authentication log v2 -------------------------------------------------------------------
def test_push_success_is_a_password_backed_mfa_not_passwordless() -> None:
    event = auth("auth_push_success")
    assert event.source is Source.DUO
    assert event.kind is Kind.AUTHENTICATION
    assert event.outcome is Outcome.SUCCESS
    assert event.method is Method.PUSH
    assert event.raw_method == "duo_push"
    assert event.factors == [Method.PUSH]
    assert event.raw_factors == ["duo_push"]
    assert event.passwordless is False
    assert event.user == "narroway@example.com"  # e-mail, lower-cased
    assert event.time == datetime(2020, 2, 13, 18, 56, 20, 351346, tzinfo=UTC)
    assert event.event_id == event.session == "340a23e3-23f3-23c1-87dc-1491a23dfdbb"
    assert event.event_type == "authentication"
    assert event.app == "Microsoft Azure Active Directory"
    assert event.src_ip == "203.0.113.45"
    assert event.country == "United States"
    assert event.reason is None
    assert event.interactive is True


def test_push_denied_is_a_failure_with_duo_reason() -> None:
    event = auth("auth_push_denied")
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "user_mistake"
    assert event.method is Method.PUSH
    assert event.passwordless is False


def test_fraud_is_a_failure_and_user_falls_back_to_username() -> None:
    event = auth("auth_push_fraud")  # "email": "" -> user.name
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "user_marked_fraud"
    assert event.user == "narroway"


@pytest.mark.parametrize(
    ("name", "method", "raw_method", "outcome"),
    [
        ("auth_verified_push_success", Method.PUSH, "verified_duo_push", Outcome.SUCCESS),
        ("auth_passcode_failure", Method.OTP, "duo_mobile_passcode", Outcome.FAILURE),
        ("auth_sms_passcode_success", Method.SMS, "sms_passcode", Outcome.SUCCESS),
        ("auth_phone_call_success", Method.VOICE, "phone_call", Outcome.SUCCESS),
        ("auth_phone_call_timeout", Method.VOICE, "phone_call", Outcome.FAILURE),
        ("auth_bypass_code", Method.OTP, "bypass_code", Outcome.SUCCESS),
    ],
)
def test_second_factor_methods_alone_are_not_passwordless(
    name: str, method: Method, raw_method: str, outcome: Outcome
) -> None:
    event = auth(name)
    assert event.kind is Kind.AUTHENTICATION
    assert (event.method, event.raw_method, event.outcome) == (method, raw_method, outcome)
    assert event.factors == [method]
    assert event.passwordless is False


def test_invalid_passcode_keeps_reason() -> None:
    event = auth("auth_passcode_failure")
    assert event.reason == "invalid_passcode"


@pytest.mark.parametrize(
    ("name", "method", "raw_method"),
    [
        ("auth_webauthn_security_key", Method.SECURITY_KEY, "WebAuthn Security Key"),
        ("auth_webauthn_touch_id", Method.PLATFORM_PASSKEY, "WebAuthn Chrome Touch ID"),
        ("auth_webauthn_windows_hello", Method.WINDOWS_HELLO, "WebAuthn Credential"),
        ("auth_webauthn_passkey", Method.SYNCED_PASSKEY, "WebAuthn Credential"),
    ],
)
def test_webauthn_authenticators_are_passwordless(
    name: str, method: Method, raw_method: str
) -> None:
    event = auth(name)
    assert event.kind is Kind.AUTHENTICATION
    assert event.outcome is Outcome.SUCCESS
    assert event.method is method
    assert event.raw_method == raw_method
    assert event.factors == [method]
    assert event.passwordless is True


def test_failed_webauthn_still_classifies_the_attempted_factor() -> None:
    event = auth("auth_webauthn_security_key_cancelled")
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "user_cancelled"
    assert event.method is Method.SECURITY_KEY
    assert event.passwordless is True


@pytest.mark.parametrize("name", ["auth_remembered_device", "auth_trusted_network"])
def test_session_reuse_is_kind_other(name: str) -> None:
    event = auth(name)
    assert event.kind is Kind.OTHER
    assert event.outcome is Outcome.SUCCESS
    assert event.method is None
    assert event.passwordless is None
    assert event.factors == [] and event.raw_factors == []
    assert event.raw_method == fixture(name)["factor"]
    assert event.event_type == "authentication"


def test_denied_before_any_factor_has_no_factor() -> None:
    event = auth("auth_deny_unenrolled")  # factor not_available, email null
    assert event.kind is Kind.AUTHENTICATION
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "deny_unenrolled_user"
    assert event.factors == []
    assert event.method is Method.UNKNOWN
    assert event.raw_method == "not_available"
    assert event.passwordless is False
    assert event.user == "jdoe"


def test_unknown_factor_string_is_kept_not_a_crash() -> None:
    event = auth("auth_unknown_factor")
    assert event.method is Method.UNKNOWN
    assert event.factors == [Method.UNKNOWN]
    assert event.raw_method == "duo_desktop_attestation"
    assert event.raw_factors == ["duo_desktop_attestation"]
    assert event.passwordless is False


def test_inline_enrollment_record_is_an_enrollment() -> None:
    event = enrollment("auth_enrollment")
    assert event.kind is Kind.ENROLLMENT
    assert event.action == "registered"
    assert event.outcome is Outcome.SUCCESS
    assert event.user == "narroway"
    assert event.event_id == event.session == "2a4c6e80-1b3d-4f5a-8c7e-9d0f1a2b3c4d"
    assert event.event_type == "enrollment"
    assert event.method is Method.UNKNOWN
    assert event.raw_method == "not_available"
    assert event.passwordless is None
    assert event.passwordless_factor is False


def test_epoch_timestamp_is_used_when_isotimestamp_is_missing() -> None:
    record = fixture("auth_push_success")
    del record["isotimestamp"]
    event = duo.parse(json.dumps(record))
    assert event.time == datetime(2020, 2, 13, 18, 56, 20, tzinfo=UTC)


def test_upper_case_result_from_older_docs() -> None:
    record = fixture("auth_push_success") | {"result": "SUCCESS"}
    assert duo.parse(json.dumps(record)).outcome is Outcome.SUCCESS


def test_unknown_result_is_outcome_unknown() -> None:
    record = fixture("auth_push_success") | {"result": "pending"}
    assert duo.parse(json.dumps(record)).outcome is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("device", "method"),
    [
        ("Windows Hello", Method.WINDOWS_HELLO),
        ("Touch ID", Method.PLATFORM_PASSKEY),
        ("Face ID", Method.PLATFORM_PASSKEY),
        ("Android Biometrics", Method.PLATFORM_PASSKEY),
        ("Passkey", Method.SYNCED_PASSKEY),
        ("Security Key", Method.SECURITY_KEY),
        ("YubiKey 5C NFC", Method.SECURITY_KEY),
        (None, Method.SECURITY_KEY),
    ],
)
def test_webauthn_credential_is_refined_by_its_name(device: str | None, method: Method) -> None:
    assert duo.classify_factor("WebAuthn Credential", device) is method


def test_every_mapped_factor_is_a_canonical_method() -> None:
    assert set(duo.FACTORS.values()) <= set(Method)
    assert duo.classify_factor("never-seen") is Method.UNKNOWN


# --- Activity log ----------------------------------------------------------------------------
def test_self_service_platform_authenticator_registration() -> None:
    event = enrollment("activity_webauthn_platform_create")
    assert event.action == "registered"
    assert event.outcome is Outcome.SUCCESS
    assert event.user == "sogilby@example.com"  # the actor's e-mail from actor.details
    assert event.method is Method.PLATFORM_PASSKEY
    assert event.raw_method == "Touch ID"
    assert event.passwordless_factor is True
    assert event.event_id == "5f0c2b1e-8a47-4d0e-b6f1-2c9e7a3d4b58"
    assert event.event_type == "webauthncredential_create"
    assert event.time == datetime(2024, 4, 2, 15, 51, 22, 591015, tzinfo=UTC)
    assert event.passwordless is None


def test_security_key_not_authorized_for_passwordless_and_failed() -> None:
    event = enrollment("activity_webauthn_security_key_failed")
    assert event.outcome is Outcome.FAILURE
    assert event.method is Method.SECURITY_KEY
    assert event.raw_method == "Security key"
    assert event.passwordless_factor is False  # "passwordless_authorized": false
    assert event.user == "sogilby"  # no e-mail in actor.details: the username


def test_webauthn_credential_removal() -> None:
    event = enrollment("activity_webauthn_delete")
    assert event.action == "removed"
    assert event.method is Method.WINDOWS_HELLO
    assert event.passwordless_factor is True
    assert event.user == "jsmith@example.com"


def test_phone_added_and_removed() -> None:
    added = enrollment("activity_phone_create")
    assert (added.action, added.method, added.raw_method) == ("registered", Method.PUSH, "phone")
    assert added.passwordless_factor is False
    assert added.user == "abc@example.com"
    removed = enrollment("activity_phone_delete")  # a landline
    assert (removed.action, removed.method) == ("removed", Method.VOICE)
    assert removed.passwordless_factor is False


def test_u2f_token_is_a_security_key_that_cannot_go_passwordless() -> None:
    event = enrollment("activity_u2ftoken_create")
    assert event.method is Method.SECURITY_KEY
    assert event.raw_method == "u2f_token"
    assert event.passwordless_factor is False
    assert event.user == "jdoe@example.com"


def test_other_activity_actions_are_kept_as_other() -> None:
    event = auth("activity_phone_activation_code_regenerated")
    assert event.kind is Kind.OTHER
    assert event.event_type == "phone_activation_code_regenerated"
    assert event.method is None and event.passwordless is None
    assert event.outcome is Outcome.UNKNOWN  # the record has no outcome
    assert event.user is None  # an administrator acted; the phone's owner is not named
    bypass = auth("activity_bypass_create")
    assert bypass.kind is Kind.OTHER
    assert bypass.user == "test"  # target.type user_bypass: the user the codes are for


# --- Administrator / Offline Enrollment logs ---------------------------------------------------
def test_admin_phone_delete_is_a_removal_without_naming_the_admin() -> None:
    event = enrollment("admin_phone_delete")
    assert event.action == "removed"
    assert event.method is Method.PUSH  # an iOS smartphone
    assert event.user is None  # `username` is the administrator, not the phone's owner
    assert event.event_id.startswith("derived:")  # the v1 administrator log has no id
    assert event.time == datetime(2024, 2, 1, 16, 20, 5, tzinfo=UTC)


def test_admin_description_naming_the_user_is_read() -> None:
    record = fixture("admin_phone_delete")
    record["description"] = json.dumps({"number": "+17345552342", "username": "JSmith"})
    event = duo.parse(json.dumps(record))
    assert isinstance(event, EnrollmentEvent)
    assert event.user == "jsmith"
    assert event.method is Method.SMS  # no platform or type stated


def test_admin_event_id_is_stable_and_distinct() -> None:
    first = duo.parse(raw("admin_user_update")).event_id
    assert duo.parse(raw("admin_user_update")).event_id == first
    assert duo.parse(raw("admin_phone_delete")).event_id != first


def test_other_admin_actions_and_unreadable_isotimestamp() -> None:
    event = auth("admin_user_update")
    assert event.kind is Kind.OTHER
    assert event.event_type == "user_update"
    broken = auth("admin_activation_begin_bad_iso")  # "2021-07-20T11: 41: 31+00: 00"
    assert broken.time == datetime(2021, 7, 20, 11, 41, 31, tzinfo=UTC)


def test_offline_enrollment_is_a_second_factor_enrollment() -> None:
    event = enrollment("offline_enrollment_provisioned")
    assert event.action == "registered"
    assert event.user == "abc"
    assert event.method is Method.OTP
    assert event.raw_method == "duo_otp"
    assert event.passwordless_factor is False
    assert event.event_type == "o2fa_user_provisioned"


# --- Telephony log -----------------------------------------------------------------------------
def test_telephony_records_are_other() -> None:
    v2 = auth("telephony_v2")
    assert v2.kind is Kind.OTHER
    assert v2.event_id == "220ac1f4-6e2b-4b3c-9d8e-1f2a3b4c5d6e"
    assert v2.session == "9c1f4a0e-2b7d-4c55-9a61-0d3e8f7b2a10"  # the authentication's txid
    assert v2.event_type == "telephony:sms"
    assert v2.user is None
    v1 = auth("telephony_v1")
    assert v1.kind is Kind.OTHER
    assert v1.event_id.startswith("derived:")
    assert v1.time == datetime(2020, 3, 20, 15, 38, 12, tzinfo=UTC)


# --- Malformed input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"txid": "abc", "factor": "duo_push", ', "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[]", "unexpected shape"),
        (b'[{"txid": "abc"}]', "unexpected shape"),
        (b"null", "unexpected shape"),
        (b'"duo_push"', "unexpected shape"),
        (b"{}", "not a Duo log record"),
        (b'{"txid": 42, "factor": "duo_push", "timestamp": 1700000000}', "unexpected shape"),
        (b'{"txid": "t", "factor": ["duo_push"], "timestamp": 1700000000}', "unexpected shape"),
        (b'{"txid": "t", "factor": "duo_push", "user": "jdoe", "timestamp": 1}', "unexpected"),
        (b'{"txid": "t", "factor": "duo_push"}', "missing timestamp"),
        (b'{"txid": "t", "factor": "duo_push", "isotimestamp": "yesterday"}', "unreadable"),
        (b'{"txid": "t", "factor": "duo_push", "isotimestamp": "2024-01-01T00:00:00"}', "timezone"),
        (b'{"txid": "t", "factor": "duo_push", "timestamp": 1e300}', "unreadable"),
        (b'{"txid": "t", "isotimestamp": "0001-01-01T00:00:00+14:00"}', "unreadable"),
        (b'{"activity_id": "", "action": {"name": "phone_create"}, "ts": "x"}', "unreadable"),
        (b'{"activity_id": "a", "action": null, "ts": "2024-01-01T00:00:00Z"}', "action"),
        (b'{"activity_id": "a", "action": {"name": "phone_create"}, "actor": "x"}', "unexpected"),
        (b'{"action": "", "object": null, "username": "x", "timestamp": 1}', "action"),
        (b'{"telephony_id": "", "credits": 1}', "missing timestamp"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(RejectedEvent) as caught:
        duo.parse(payload)
    assert reason in caught.value.reason


@pytest.mark.parametrize("value", [None, 42, 3.5, ["x"], {"txid": "t"}])
def test_non_raw_inputs_are_rejected(value: Any) -> None:
    with pytest.raises(RejectedEvent):
        duo.parse(value)


def test_nulls_everywhere_do_not_crash() -> None:
    record = {key: None for key in fixture("auth_push_success")}
    record |= {"txid": "t-1", "timestamp": 1700000000}
    event = duo.parse(json.dumps(record))
    assert isinstance(event, AuthEvent)
    assert event.user is None and event.app is None and event.src_ip is None
    assert event.method is Method.UNKNOWN and event.outcome is Outcome.UNKNOWN


def test_str_and_bytes_inputs_agree() -> None:
    assert duo.parse(raw("auth_push_success").decode()) == duo.parse(raw("auth_push_success"))


# --- Shape detection ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.stem)
def test_recognizes_every_fixture_and_parses_it(path: Path) -> None:
    data = path.read_bytes()
    assert duo.recognizes(top_level(data))
    assert duo.parse(data).source is Source.DUO


OTHER_VENDORS: list[dict[str, Any]] = [
    {  # Okta System Log
        "uuid": "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a",
        "published": "2024-08-13T15:58:20.353Z",
        "eventType": "user.session.start",
        "actor": {"id": "00u1", "type": "User"},
        "target": [],
        "outcome": {"result": "SUCCESS"},
    },
    {  # Entra Graph sign-in
        "id": "66ea54eb-6301-4ee5-be62-ff5a759b0100",
        "createdDateTime": "2024-01-01T00:00:00Z",
        "userPrincipalName": "a@b.c",
        "authenticationDetails": [],
        "status": {"errorCode": 0},
    },
    {"id": "x", "activityDisplayName": "Register security info", "loggedByService": "x"},
    {  # Entra Event Hub record
        "time": "2024-01-01T00:00:00Z",
        "resourceId": "/tenants/x",
        "operationName": "Sign-in activity",
        "category": "SignInLogs",
        "properties": {},
    },
    {  # PingOne activity
        "id": "p",
        "recordedAt": "2024-01-01T00:00:00Z",
        "action": {"type": "USER.ACCESS_ALLOWED"},
        "resources": [],
        "result": {"status": "SUCCESS"},
    },
    {"sys_id": "abc", "number": "INC0012345"},
    {"id": "10001", "key": "HELP-42", "fields": {}},
]


@pytest.mark.parametrize("event", OTHER_VENDORS, ids=lambda e: next(iter(e)))
def test_does_not_recognize_other_vendors(event: dict[str, Any]) -> None:
    assert not duo.recognizes(top_level(json.dumps(event)))


# --- Records as real shippers deliver them ------------------------------------------------------
# Our own records in the shapes of the Admin API logs (https://duo.com/docs/adminapi):
#   auth_push_approved_v2: Authentication Logs v2, the documented example's field set
#   activity_webauthn_create_failure: Activity Logs, a failed security-key registration
#   admin_set_password_spaced_iso: Administrator Logs v1 with `isotimestamp` written
#       "2025-05-06T09: 12: 45+00: 00", as real administrator records carry it
#       (docs/sources/duo.md)
#   offline_enrollment_windows_logon: Offline Enrollment Logs (`o2fa_user_provisioned`)
#   telephony_v1_admin_login_call: Telephony Logs v1 (no id; `isotimestamp` + `timestamp`)
#   telephony_v2_auth_call: Telephony Logs v2 (`telephony_id`, `txid`, `ts`)
@pytest.mark.parametrize(
    ("name", "kind", "event_id", "time"),
    [
        (
            "auth_push_approved_v2",
            Kind.AUTHENTICATION,
            "5f763fae-b825-423b-802b-927a195c8baf",
            datetime(2025, 3, 11, 8, 42, 17, 204519, tzinfo=UTC),
        ),
        (
            "activity_webauthn_create_failure",
            Kind.ENROLLMENT,
            "ee760c99-132e-488a-b3fc-580483d767f2",
            datetime(2025, 4, 22, 13, 5, 48, 730162, tzinfo=UTC),
        ),
        (  # "2025-05-06T09: 12: 45+00: 00": the Unix `timestamp` places it
            "admin_set_password_spaced_iso",
            Kind.OTHER,
            None,
            datetime(2025, 5, 6, 9, 12, 45, tzinfo=UTC),
        ),
        (
            "offline_enrollment_windows_logon",
            Kind.ENROLLMENT,
            None,
            datetime(2025, 1, 15, 10, 27, 33, tzinfo=UTC),
        ),
        (
            "telephony_v1_admin_login_call",
            Kind.OTHER,
            None,
            datetime(2025, 2, 3, 16, 44, 9, tzinfo=UTC),
        ),
        (
            "telephony_v2_auth_call",
            Kind.OTHER,
            "f8427796-cf11-4d4e-a0b8-34b1387a1e4c",
            datetime(2025, 2, 3, 17, 2, 51, 418305, tzinfo=UTC),
        ),
    ],
)
def test_records_as_shippers_deliver_them_parse(
    name: str, kind: Kind, event_id: str | None, time: datetime
) -> None:
    """`None`: a log that has no record id (v1 administrator, offline enrollment, telephony)."""
    event = duo.parse(raw(name))
    assert event.kind is kind
    assert event.time == time
    if event_id is None:
        assert event.event_id.startswith("derived:")
    else:
        assert event.event_id == event_id
    assert duo.recognizes(top_level(raw(name)))


def _reshipped(record: dict[str, Any]) -> list[bytes]:
    """One record as shippers serialize it: DuoLogSync's `json.dumps(log)` (", " and ": "
    separators), compact, pretty, keys reversed."""
    reversed_keys = {key: record[key] for key in reversed(list(record))}
    return [
        json.dumps(record).encode(),
        json.dumps(record, separators=(",", ":")).encode(),
        json.dumps(record, indent=2).encode(),
        json.dumps(reversed_keys).encode(),
    ]


@pytest.mark.parametrize(
    ("name", "id_key"),
    [
        ("auth_push_approved_v2", "txid"),
        ("activity_webauthn_create_failure", "activity_id"),
        ("telephony_v2_auth_call", "telephony_id"),
        ("admin_set_password_spaced_iso", None),
    ],
)
def test_record_without_its_id_gets_an_id_derived_from_its_content(
    name: str, id_key: str | None
) -> None:
    record = fixture(name)
    original = duo.parse(raw(name))
    if id_key is not None:
        del record[id_key]
    ids = {duo.parse(variant).event_id for variant in _reshipped(record)}
    assert len(ids) == 1
    (derived,) = ids
    assert derived.startswith("derived:") and len(derived) == 40
    assert duo.recognizes(top_level(json.dumps(record)))
    event = duo.parse(json.dumps(record))
    session = None if id_key == "txid" else original.session  # the txid is the session
    assert {**event.__dict__, "event_id": 0} == {
        **original.__dict__,
        "event_id": 0,
        "session": session,
    }
    assert duo.parse(json.dumps({**record, "timestamp": 1})).event_id != derived


def test_auth_record_without_txid_or_time_is_rejected_for_its_time() -> None:
    record = fixture("auth_push_approved_v2")
    for key in ("txid", "isotimestamp", "timestamp"):
        del record[key]
    with pytest.raises(RejectedEvent, match="missing timestamp `isotimestamp`"):
        duo.parse(json.dumps(record))


@pytest.mark.parametrize(
    ("iso", "epoch", "expected"),
    [
        # auth log v2 (Admin API "Authentication Logs"): ISO with microseconds and +00:00
        (
            "2020-02-13T18:56:20.351346+00:00",
            1581620180,
            datetime(2020, 2, 13, 18, 56, 20, 351346, tzinfo=UTC),
        ),
        # the Unix seconds alone, or beside an ISO string that cannot be read
        (None, 1581620180, datetime(2020, 2, 13, 18, 56, 20, tzinfo=UTC)),
        ("2020-02-13T18:56:20", 1581620180, datetime(2020, 2, 13, 18, 56, 20, tzinfo=UTC)),
        (
            "2020-02-13T18:56:20.351346Z",
            None,
            datetime(2020, 2, 13, 18, 56, 20, 351346, tzinfo=UTC),
        ),
    ],
)
def test_auth_time_forms(iso: str | None, epoch: int | None, expected: datetime) -> None:
    record = fixture("auth_push_approved_v2")
    record.update(isotimestamp=iso, timestamp=epoch)
    assert duo.parse(json.dumps(record)).time == expected


def test_zoneless_iso_without_epoch_is_rejected() -> None:
    """Duo does not document `isotimestamp` as UTC without its offset: not guessed."""
    record = fixture("auth_push_approved_v2")
    record.update(isotimestamp="2020-02-13T18:56:20", timestamp=None)
    with pytest.raises(RejectedEvent, match="has no timezone"):
        duo.parse(json.dumps(record))
