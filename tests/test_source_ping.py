"""Ping Identity parser: PingOne audit activities and PingFederate audit records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome, Source
from pipeline.sources import ping
from pipeline.sources._common import RejectedEvent, top_level

FIXTURES = Path(__file__).parent / "fixtures" / "ping"
ALL_FIXTURES = sorted(FIXTURES.glob("*.json"))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body(name: str) -> dict[str, Any]:
    return json.loads(raw(name))


def parse(name: str) -> AuthEvent | EnrollmentEvent:
    event = ping.parse(raw(name))
    assert isinstance(event, AuthEvent | EnrollmentEvent)
    return event


def auth(name: str) -> AuthEvent:
    event = ping.parse(raw(name))
    assert isinstance(event, AuthEvent)
    return event


# --------------------------------------------------------------------------------- recognizes


def test_fixtures_are_there() -> None:
    assert len(ALL_FIXTURES) >= 25


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_recognizes_every_fixture(path: Path) -> None:
    assert ping.recognizes(top_level(path.read_bytes()))


@pytest.mark.parametrize(
    "other",
    [
        # Okta System Log
        {
            "uuid": "x",
            "published": "2025-01-01T00:00:00Z",
            "eventType": "user.session.start",
            "actor": {"id": "00u1"},
        },
        # Entra Graph sign-in and directoryAudit
        {
            "id": "x",
            "createdDateTime": "2025-01-01T00:00:00Z",
            "userPrincipalName": "a@b",
            "status": {"errorCode": 0},
            "authenticationDetails": [],
        },
        {"id": "x", "activityDisplayName": "Register security info", "loggedByService": "x"},
        # Entra Event Hub record
        {
            "time": "2025-01-01T00:00:00Z",
            "resourceId": "/tenants/x",
            "operationName": "Sign-in",
            "category": "SignInLogs",
            "properties": {},
        },
        # Duo authentication log v2 and admin log
        {
            "txid": "x",
            "timestamp": 1,
            "event_type": "authentication",
            "factor": "duo_push",
            "access_device": {},
            "auth_device": {},
        },
        {"action": "user_update", "object": "x", "username": "admin", "timestamp": 1},
        # ServiceNow, Jira
        {"sys_id": "x", "number": "INC0010001"},
        {"key": "HELP-1", "fields": {}},
    ],
)
def test_does_not_recognize_other_vendors(other: dict[str, Any]) -> None:
    assert not ping.recognizes(top_level(msgspec.json.encode(other)))


def test_source() -> None:
    assert ping.SOURCE is Source.PING


# ----------------------------------------------------------------------------------- PingOne


def test_password_check_succeeded() -> None:
    event = auth("p1_password_check_succeeded.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.source is Source.PING
    assert event.outcome is Outcome.SUCCESS
    assert event.method is Method.PASSWORD
    assert event.raw_method == "PASSWORD"
    assert event.factors == [Method.PASSWORD]
    assert event.raw_factors == ["PASSWORD"]
    assert event.passwordless is False
    assert event.user == "ana.lima@example.com"
    assert event.time == datetime(2025, 3, 4, 9, 15, 2, 512000, tzinfo=UTC)
    assert event.event_id == "6a1b0f4e-2c3d-4e5f-8a9b-0c1d2e3f4a01"
    assert event.event_type == "PASSWORD.CHECK_SUCCEEDED"
    assert event.session == "b2f7c9e4-1a3d-4f5b-8c6e-7d9a0b1c2e3f"
    assert event.app == "Workday"
    assert event.reason is None


def test_password_check_failed_keeps_reason() -> None:
    event = auth("p1_password_check_failed.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.outcome is Outcome.FAILURE
    assert event.method is Method.PASSWORD
    assert event.passwordless is False
    assert event.reason == "The provided password did not match provisioned password"
    # no acting user on a failed check: the USER resource still names who it was about
    assert event.user == "ana.lima@example.com"


def test_password_then_push_share_the_session_and_are_not_passwordless() -> None:
    password = auth("p1_password_check_succeeded.json")
    push = auth("p1_mfa_push_approved.json")
    assert push.kind is Kind.AUTHENTICATION_STEP
    assert push.method is Method.PUSH
    assert push.raw_method == "MOBILE"
    assert push.passwordless is False
    assert push.session == password.session
    assert push.time > password.time
    # the sign-in, as the session's steps together
    factors = password.factors + push.factors
    assert factors == [Method.PASSWORD, Method.PUSH]
    from pipeline.classify import is_passwordless, primary_method

    assert not is_passwordless(factors)
    assert primary_method(factors) is Method.PASSWORD


def test_session_created_is_other_in_the_same_session() -> None:
    event = auth("p1_session_created.json")
    assert event.kind is Kind.OTHER
    assert event.passwordless is None
    assert event.method is None
    assert event.raw_method is None
    assert event.factors == []
    assert event.session == auth("p1_password_check_succeeded.json").session


@pytest.mark.parametrize(
    ("name", "method", "raw_method", "outcome"),
    [
        ("p1_otp_check_sms.json", Method.SMS, "SMS", Outcome.SUCCESS),
        ("p1_otp_check_totp_failed.json", Method.OTP, "TOTP", Outcome.FAILURE),
    ],
)
def test_otp_checks(name: str, method: Method, raw_method: str, outcome: Outcome) -> None:
    event = auth(name)
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is method
    assert event.raw_method == raw_method
    assert event.outcome is outcome
    assert event.passwordless is False


def test_otp_failure_reason() -> None:
    assert auth("p1_otp_check_totp_failed.json").reason == "Invalid OTP"


@pytest.mark.parametrize(
    ("name", "method", "raw_method"),
    [
        ("p1_assertion_platform_passkey.json", Method.PLATFORM_PASSKEY, "FIDO2:platform"),
        ("p1_assertion_synced_passkey.json", Method.SYNCED_PASSKEY, "FIDO2:platform:backupState"),
        ("p1_assertion_security_key.json", Method.SECURITY_KEY, "FIDO2:cross-platform"),
        ("p1_authentication_code_claimed.json", Method.MOBILE_AUTHENTICATOR, "AUTHENTICATION_CODE"),
    ],
)
def test_passwordless_patterns(name: str, method: Method, raw_method: str) -> None:
    event = auth(name)
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.outcome is Outcome.SUCCESS
    assert event.method is method
    assert event.raw_method == raw_method
    assert event.factors == [method]
    assert event.raw_factors == [raw_method]
    assert event.passwordless is True
    assert event.user == "ana.lima@example.com"


def test_failed_assertion_still_classifies_the_factor() -> None:
    event = auth("p1_assertion_check_failed.json")
    assert event.outcome is Outcome.FAILURE
    assert event.method is Method.SECURITY_KEY
    assert event.passwordless is True
    assert event.reason is not None and "user verification" in event.reason


def test_unknown_device_type_is_unknown_not_a_crash() -> None:
    event = auth("p1_unknown_device_type.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.UNKNOWN
    assert event.raw_method == "WHATSAPP"
    assert event.raw_factors == ["WHATSAPP"]
    assert event.passwordless is False


def test_checks_without_embedded_device_fall_back() -> None:
    otp = body("p1_otp_check_sms.json")
    del otp["_embedded"]
    event = ping.parse(json.dumps(otp))
    assert event.method is Method.OTP and event.raw_method == "OTP"
    fido = body("p1_assertion_security_key.json")
    del fido["_embedded"]
    event = ping.parse(json.dumps(fido))
    assert event.method is Method.PLATFORM_PASSKEY and event.raw_method == "FIDO2"
    assert event.passwordless is True
    push = body("p1_mfa_push_approved.json")
    del push["_embedded"]
    assert ping.parse(json.dumps(push)).kind is Kind.OTHER


@pytest.mark.parametrize(
    "legacy", [("PLATFORM", Method.PLATFORM_PASSKEY), ("SECURITY_KEY", Method.SECURITY_KEY)]
)
def test_legacy_fido_device_types(legacy: tuple[str, Method]) -> None:
    record = body("p1_assertion_platform_passkey.json")
    record["_embedded"]["device"] = {"id": "d", "type": legacy[0], "status": "ACTIVE"}
    event = ping.parse(json.dumps(record))
    assert event.method is legacy[1]
    assert event.raw_method == legacy[0]


def test_device_created_pending_activation_is_not_an_enrollment() -> None:
    event = parse("p1_device_created_fido2_pending.json")
    assert isinstance(event, AuthEvent)
    assert event.kind is Kind.OTHER
    assert event.event_type == "DEVICE.CREATED"


def test_device_activated_is_the_registration() -> None:
    event = parse("p1_device_activated_fido2.json")
    assert isinstance(event, EnrollmentEvent)
    assert event.kind is Kind.ENROLLMENT
    assert event.action == "registered"
    assert event.method is Method.PLATFORM_PASSKEY
    assert event.raw_method == "FIDO2:platform"
    assert event.passwordless_factor is True
    assert event.passwordless is None
    assert event.outcome is Outcome.SUCCESS
    assert event.user == "ana.lima@example.com"
    assert event.event_id == "15c0bef3-d7e8-490a-9fa0-b1c2d3e4f501"
    assert event.event_type == "DEVICE.ACTIVATED"
    assert event.time == datetime(2025, 3, 3, 8, 0, 19, 871000, tzinfo=UTC)


def test_device_created_active_is_a_registration() -> None:
    event = parse("p1_device_created_email_active.json")
    assert isinstance(event, EnrollmentEvent)
    assert event.action == "registered"
    assert event.method is Method.EMAIL
    assert event.passwordless_factor is False


def test_device_deleted_is_a_removal() -> None:
    event = parse("p1_device_deleted_mobile.json")
    assert isinstance(event, EnrollmentEvent)
    assert event.action == "removed"
    assert event.method is Method.MOBILE_AUTHENTICATOR
    assert event.raw_method == "MOBILE"
    assert event.passwordless_factor is True


def test_failed_device_event_is_other() -> None:
    record = body("p1_device_activated_fido2.json")
    record["action"]["type"] = "DEVICE.ACTIVATED"
    record["result"] = {"status": "FAILED", "description": "Attestation verification failed"}
    event = ping.parse(json.dumps(record))
    assert event.kind is Kind.OTHER
    assert event.outcome is Outcome.FAILURE


def test_device_event_without_device_is_an_unknown_enrollment() -> None:
    record = body("p1_device_deleted_mobile.json")
    del record["_embedded"]
    event = ping.parse(json.dumps(record))
    assert isinstance(event, EnrollmentEvent)
    assert event.method is Method.UNKNOWN
    assert event.raw_method is None
    assert event.passwordless_factor is False


def test_documentation_sample_is_other() -> None:
    event = auth("p1_user_access_allowed_doc_sample.json")
    assert event.kind is Kind.OTHER
    assert event.outcome is Outcome.SUCCESS
    assert event.user == "matthewpollicove@pingidentity.com"
    assert event.event_type == "USER.ACCESS_ALLOWED"
    assert event.app == "PingOne Admin Console"
    assert event.time == datetime(2021, 4, 6, 16, 27, 34, 783000, tzinfo=UTC)


def test_admin_change_is_other_by_the_acting_admin() -> None:
    event = auth("p1_application_created.json")
    assert event.kind is Kind.OTHER
    assert event.user == "it.admin@example.com"  # no USER resource: the acting user
    assert event.passwordless is None


def test_created_at_stands_in_for_recorded_at() -> None:
    record = body("p1_password_check_succeeded.json")
    del record["recordedAt"]
    assert ping.parse(json.dumps(record)).time == datetime(2025, 3, 4, 9, 15, 2, 530000, tzinfo=UTC)


# ------------------------------------------------------------------------------ PingFederate


def test_pf_html_form_success() -> None:
    event = auth("pf_authn_attempt_htmlform_success.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.outcome is Outcome.SUCCESS
    assert event.method is Method.PASSWORD
    assert event.raw_method == "HTMLFormPD"
    assert event.passwordless is False
    assert event.user == "ana.lima@example.com"
    assert event.session == "tid:h9wE_LPjisS3-EpV4D4u9uH3yCA"
    assert event.src_ip == "203.0.113.24"
    assert event.app == "Workday"
    assert event.event_type == "AUTHN_ATTEMPT"
    assert event.time == datetime(2025, 3, 4, 9, 20, 11, 482000, tzinfo=UTC)
    assert event.event_id == (
        "tid:h9wE_LPjisS3-EpV4D4u9uH3yCA|2025-03-04T09:20:11.482Z|AUTHN_ATTEMPT|success|HTMLFormPD"
    )


def test_pf_failure_keeps_description_and_converts_time() -> None:
    event = auth("pf_authn_attempt_htmlform_failure.json")
    assert event.outcome is Outcome.FAILURE
    assert event.method is Method.PASSWORD
    assert event.reason == "Authentication failed: invalid username or password"
    assert event.time == datetime(2025, 3, 5, 23, 2, 44, 913000, tzinfo=UTC)  # from -05:00
    assert event.user == "bruno.costa@example.com"


def test_pf_password_then_pingid_push() -> None:
    form = auth("pf_authn_attempt_htmlform_success.json")
    waiting = auth("pf_authn_attempt_pingid_inprogress.json")
    push = auth("pf_authn_attempt_pingid_success.json")
    assert waiting.kind is Kind.OTHER and waiting.outcome is Outcome.UNKNOWN
    assert push.kind is Kind.AUTHENTICATION_STEP
    assert push.method is Method.PUSH
    assert push.raw_method == "PingIDAdapter"
    assert push.passwordless is False
    assert form.session == waiting.session == push.session
    assert len({form.event_id, waiting.event_id, push.event_id}) == 3


def test_pf_sso_and_session_records_are_other() -> None:
    for name in ("pf_sso_success.json", "pf_authn_session_created.json", "pf_oauth_token.json"):
        event = auth(name)
        assert event.kind is Kind.OTHER
        assert event.passwordless is None
        assert event.method is None
    assert auth("pf_sso_success.json").session == "tid:h9wE_LPjisS3-EpV4D4u9uH3yCA"


@pytest.mark.parametrize(
    ("name", "method", "passwordless"),
    [
        ("pf_authn_attempt_x509_success.json", Method.CERTIFICATE, True),
        ("pf_authn_attempt_pingid_passwordless.json", Method.MOBILE_AUTHENTICATOR, True),
        ("pf_authn_attempt_kerberos_success.json", Method.FEDERATED, False),
    ],
)
def test_pf_adapters(name: str, method: Method, passwordless: bool) -> None:
    event = auth(name)
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is method
    assert event.passwordless is passwordless


def test_pf_identifier_first_is_not_a_factor() -> None:
    event = auth("pf_authn_attempt_identifierfirst.json")
    assert event.kind is Kind.OTHER
    assert event.session == auth("pf_authn_attempt_pingid_passwordless.json").session


def test_pf_unknown_adapter_is_unknown_not_a_crash() -> None:
    event = auth("pf_authn_attempt_unknown_adapter.json")
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.UNKNOWN
    assert event.raw_method == "CorpBadgeReader"
    assert event.passwordless is False


def test_pf_adapter_ids_are_case_insensitive_and_lists_are_split() -> None:
    record = body("pf_authn_attempt_htmlform_success.json")
    record["adapterid"] = "[htmlformpd, X509Certificate]"
    event = ping.parse(json.dumps(record))
    assert event.factors == [Method.PASSWORD, Method.CERTIFICATE]
    assert event.raw_factors == ["htmlformpd", "X509Certificate"]
    assert event.method is Method.PASSWORD
    assert event.raw_method == "htmlformpd"
    assert event.passwordless is False


def test_pf_at_timestamp_and_empty_fields() -> None:
    record = body("pf_authn_attempt_x509_success.json")
    record["@timestamp"] = record.pop("timestamp")
    record["subject"] = ""
    record["ip"] = ""
    event = ping.parse(json.dumps(record))
    assert event.time == datetime(2025, 3, 6, 6, 45, 3, 220000, tzinfo=UTC)
    assert event.user is None
    assert event.src_ip is None


def test_pf_attempt_without_adapter_is_unknown() -> None:
    record = body("pf_authn_attempt_htmlform_success.json")
    record["adapterid"] = ""
    event = ping.parse(json.dumps(record))
    assert event.kind is Kind.AUTHENTICATION_STEP
    assert event.method is Method.UNKNOWN
    assert event.raw_method is None


# ----------------------------------------------------------------------------------- rejects


def _p1(**changes: Any) -> bytes:
    record = body("p1_password_check_succeeded.json")
    for key, value in changes.items():
        if value is ...:
            del record[key]
        else:
            record[key] = value
    return json.dumps(record).encode()


def _pf(**changes: Any) -> bytes:
    record = body("pf_authn_attempt_htmlform_success.json")
    for key, value in changes.items():
        if value is ...:
            del record[key]
        else:
            record[key] = value
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"id": "x", "recordedAt": ', "invalid JSON"),
        (b"", "invalid JSON"),
        (b"not json at all", "invalid JSON"),
        (b"[]", "unexpected shape"),
        (json.dumps([body("p1_password_check_succeeded.json")]).encode(), "unexpected shape"),
        (b"null", "unexpected shape"),
        (b"42", "unexpected shape"),
        (b"{}", "neither"),
        (_p1(id=1234), "unexpected shape"),
        (_p1(recordedAt=..., createdAt=...), "missing timestamp"),
        (_p1(recordedAt="yesterday", createdAt=...), "unreadable timestamp"),
        (_p1(recordedAt="2025-03-04T09:15:02", createdAt=...), "no timezone"),
        (_p1(recordedAt="0001-01-01T00:00:00+01:00", createdAt=...), "unreadable timestamp"),
        (_p1(recordedAt="soon", createdAt="later"), "`recordedAt`"),  # the first one's reason
        (_p1(action="PASSWORD.CHECK_SUCCEEDED"), "unexpected shape"),
        (_p1(action={"description": "no type"}), "unexpected shape"),
        (_p1(action={"type": ""}), "empty `action.type`"),
        (_p1(resources={"type": "USER"}), "unexpected shape"),
        (_p1(resources=[None]), "unexpected shape"),
        (_p1(actors=[]), "unexpected shape"),
        (_p1(result="SUCCESS"), "unexpected shape"),
        (_p1(_embedded={"device": "FIDO2"}), "unexpected shape"),
        (_pf(timestamp="2025-03-04 09:20:11,482"), "no timezone"),  # log4j %d: local time
        (_pf(timestamp=...), "missing timestamp"),
        (_pf(timestamp=1741080011), "unexpected shape"),
        (_pf(event=7), "unexpected shape"),
        (_pf(event=""), "empty `event`"),
        (_pf(adapterid=["HTMLFormPD"]), "unexpected shape"),
    ],
)
def test_rejects_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(RejectedEvent) as caught:
        ping.parse(data)
    assert words in caught.value.reason


def test_parse_accepts_str_and_bytes() -> None:
    text = raw("p1_password_check_succeeded.json").decode()
    assert ping.parse(text) == ping.parse(text.encode())


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_no_other_exception_on_mangled_fixtures(path: Path) -> None:
    """Every field of every fixture replaced by values of the wrong type: a reject or an
    event, never another exception."""
    record = json.loads(path.read_bytes())
    for key in list(record):
        for wrong in (None, 0, 1.5, True, "", "x", [], {}, [1], {"a": 1}):
            mangled = {**record, key: wrong}
            try:
                event = ping.parse(json.dumps(mangled))
            except RejectedEvent as exc:
                assert exc.reason
            else:
                assert event.source is Source.PING


# ------------------------------------------------------- records as real shippers deliver them
# Our own PingOne activities ("Audit Activities",
# https://developer.pingidentity.com/pingone-api/platform/audit-activities.html):
# an application created with no `actors` recorded, and one an administrator updated in the
# admin console (`actors.client` "adminui", `actors.user`).


@pytest.mark.parametrize(
    ("name", "event_type", "event_id", "time", "user"),
    [
        (
            "p1_application_created_without_actors.json",
            "APPLICATION.CREATED",
            "34b05623-d007-497e-9c65-6ab7eb43d1b3",
            datetime(2025, 5, 19, 4, 27, 36, 842000, tzinfo=UTC),
            None,
        ),
        (
            "p1_application_updated_by_admin.json",
            "APPLICATION.UPDATED",
            "335a7eb0-a855-4f41-9264-a2d7cd3a1e84",
            datetime(2025, 5, 19, 9, 3, 21, 560000, tzinfo=UTC),
            "rui.alves@example.net",
        ),
    ],
)
def test_activities_as_delivered_parse(
    name: str, event_type: str, event_id: str, time: datetime, user: str | None
) -> None:
    event = auth(name)
    assert event.kind is Kind.OTHER
    assert event.event_type == event_type
    assert event.time == time  # recordedAt, not createdAt
    assert event.event_id == event_id
    assert event.user == user
    assert event.app == ("adminui" if user else None)


def test_unreadable_recorded_at_falls_back_to_created_at() -> None:
    event = ping.parse(_p1(recordedAt="not a time", createdAt="2025-03-04T09:15:02.117Z"))
    assert event.time == datetime(2025, 3, 4, 9, 15, 2, 117000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2025-03-04T09:20:11.482Z", datetime(2025, 3, 4, 9, 20, 11, 482000, tzinfo=UTC)),
        # log4j2 JsonTemplateLayout's timestamp resolver pattern with an offset
        ("2025-03-04T10:20:11.482+0100", datetime(2025, 3, 4, 9, 20, 11, 482000, tzinfo=UTC)),
        ("2025-03-04 04:20:11,482-05:00", datetime(2025, 3, 4, 9, 20, 11, 482000, tzinfo=UTC)),
    ],
)
def test_pingfederate_time_forms(stamp: str, expected: datetime) -> None:
    assert ping.parse(_pf(timestamp=stamp)).time == expected


def test_pingfederate_at_timestamp_is_the_fallback() -> None:
    event = ping.parse(_pf(timestamp=..., **{"@timestamp": "2025-03-04T09:20:11.482Z"}))
    assert event.time == datetime(2025, 3, 4, 9, 20, 11, 482000, tzinfo=UTC)


def _reshipped(record: dict[str, Any]) -> list[bytes]:
    """One record as different shippers serialize it: compact, pretty, keys reversed."""
    reversed_keys = {key: record[key] for key in reversed(list(record))}
    return [
        json.dumps(record, separators=(",", ":")).encode(),
        json.dumps(record, indent=2).encode(),
        json.dumps(reversed_keys).encode(),
    ]


@pytest.mark.parametrize(
    ("name", "id_key"),
    [
        ("p1_password_check_succeeded.json", "id"),
        ("pf_authn_attempt_htmlform_success.json", "trackingid"),
    ],
)
def test_record_without_its_id_gets_an_id_derived_from_its_content(name: str, id_key: str) -> None:
    record = body(name)
    original = ping.parse(raw(name))
    del record[id_key]
    ids = {ping.parse(variant).event_id for variant in _reshipped(record)}
    assert len(ids) == 1
    (derived,) = ids
    assert derived.startswith("derived:") and len(derived) == 40
    event = ping.parse(json.dumps(record))
    same = {**event.__dict__, "event_id": 0, "session": 0}
    assert same == {**original.__dict__, "event_id": 0, "session": 0}
    if id_key == "trackingid":
        assert event.session is None  # the tracking id is the session; there is none
    record["subject"] = "someone.else@example.com"
    assert ping.parse(json.dumps(record)).event_id != derived


def test_activity_without_id_or_time_is_rejected_for_its_time() -> None:
    with pytest.raises(RejectedEvent, match="missing timestamp `recordedAt`"):
        ping.parse(_p1(id=..., recordedAt=..., createdAt=...))
