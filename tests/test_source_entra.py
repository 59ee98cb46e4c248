"""Microsoft Entra ID parser: Graph and Event Hub shapes, sign-ins, audits, rejects."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome, Source
from pipeline.sources import entra
from pipeline.sources._common import RejectedEvent, top_level

FIXTURES = Path(__file__).parent / "fixtures" / "entra"
ALL_FIXTURES = sorted(FIXTURES.glob("*.json"))


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign_in(name: str) -> AuthEvent:
    event = entra.parse(load(name))
    assert isinstance(event, AuthEvent)
    assert event.source is Source.ENTRA
    return event


def enrollment(name: str) -> EnrollmentEvent:
    event = entra.parse(load(name))
    assert isinstance(event, EnrollmentEvent)
    return event


def test_fixtures_present() -> None:
    assert len(ALL_FIXTURES) >= 20


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_recognizes_every_fixture(path: Path) -> None:
    assert entra.recognizes(top_level(path.read_bytes()))


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_every_fixture_parses_and_compact_bytes_and_str_agree(path: Path) -> None:
    raw = path.read_bytes()
    compact = msgspec.json.encode(msgspec.json.decode(raw))
    assert entra.parse(raw) == entra.parse(compact) == entra.parse(raw.decode())


@pytest.mark.parametrize(
    "top",
    [
        # Okta System Log
        {
            "uuid": "a",
            "published": "2024-01-01T00:00:00Z",
            "eventType": "user.session.start",
            "actor": {},
            "outcome": {},
        },
        # Duo v2 authentication log and admin log
        {
            "txid": "x",
            "timestamp": 1,
            "access_device": {},
            "auth_device": {},
            "factor": "duo_push",
            "result": "success",
            "user": {"name": "a"},
        },
        {"action": "user_update", "object": "a", "username": "admin", "timestamp": 1},
        # PingOne activity
        {
            "id": "1",
            "recordedAt": "2024-01-01T00:00:00Z",
            "action": {"type": "USER.ACCESS_ALLOWED"},
            "resources": [],
            "result": {"status": "SUCCESS"},
        },
        # ServiceNow incident, Jira issue
        {"sys_id": "1", "number": "INC0010001", "short_description": "x"},
        {"id": "1", "key": "HELP-1", "fields": {}},
        # Another Azure service's diagnostic record is not Entra's
        {
            "time": "2024-01-01T00:00:00Z",
            "category": "AuditEvent",
            "operationName": "VaultGet",
            "properties": {},
            "resourceId": "/SUBSCRIPTIONS/X/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/V",
        },
    ],
)
def test_does_not_recognize_other_vendors(top: dict) -> None:
    assert not entra.recognizes(top_level(json.dumps(top)))


def test_recognizes_other_entra_category_by_resource_id() -> None:
    raw = json.dumps(
        {
            "time": "2024-01-01T00:00:00Z",
            "category": "ProvisioningLogs",
            "operationName": "x",
            "properties": {"id": "p1"},
            "resourceId": "/tenants/t/providers/Microsoft.aadiam",
        }
    )
    assert entra.recognizes(top_level(raw))
    event = entra.parse(raw)
    assert event.kind is Kind.OTHER and event.event_type == "ProvisioningLogs"
    assert event.event_id == "p1" and event.passwordless is None


# --- sign-ins ---------------------------------------------------------------------------
def test_password_only_success() -> None:
    event = sign_in("graph_signin_password_only.json")
    assert event.kind is Kind.AUTHENTICATION
    assert event.outcome is Outcome.SUCCESS
    assert event.method is Method.PASSWORD and event.raw_method == "Password"
    assert event.passwordless is False
    assert event.factors == [Method.PASSWORD] and event.raw_factors == ["Password"]
    assert event.user == "adelev@contoso.com"
    assert event.time == datetime(2024, 5, 14, 8, 2, 11, 619583, tzinfo=UTC)
    assert event.event_id == "66ea54eb-6301-4ee5-be62-ff5a759b0100"
    assert event.session == "d79f5bee-5860-4832-928f-3133e22ae912"  # correlationId
    assert event.event_type == "interactiveUser"
    assert event.interactive is True
    assert event.app == "Graph Explorer"
    assert event.src_ip == "131.107.159.37"
    assert event.country == "US"
    assert event.reason is None


def test_password_plus_push_is_password() -> None:
    event = sign_in("graph_signin_password_push.json")
    assert event.kind is Kind.AUTHENTICATION and event.outcome is Outcome.SUCCESS
    assert event.factors == [Method.PASSWORD, Method.PUSH]
    assert event.raw_factors == ["Password", "Mobile app notification"]
    assert event.method is Method.PASSWORD and event.passwordless is False
    assert event.user == "meganb@contoso.com"


@pytest.mark.parametrize(
    ("name", "second", "raw"),
    [
        ("graph_signin_password_sms.json", Method.SMS, "Text message"),
        ("eh_signin_password_otp.json", Method.OTP, "OATH verification code"),
    ],
)
def test_password_plus_code_is_password(name: str, second: Method, raw: str) -> None:
    event = sign_in(name)
    assert event.factors == [Method.PASSWORD, second]
    assert event.raw_factors[1] == raw
    assert event.method is Method.PASSWORD and event.passwordless is False


def test_failed_push_after_password_is_a_failure_with_both_factors() -> None:
    event = sign_in("graph_signin_push_denied.json")
    assert event.kind is Kind.AUTHENTICATION
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "Authentication failed during strong authentication request."
    assert event.factors == [Method.PASSWORD, Method.PUSH]  # the failing step counts
    assert event.method is Method.PASSWORD and event.passwordless is False


def test_wrong_password_is_a_failure() -> None:
    event = sign_in("graph_signin_bad_password.json")
    assert event.outcome is Outcome.FAILURE
    assert event.reason == "Error validating credentials due to invalid username or password."
    assert event.factors == [Method.PASSWORD] and event.passwordless is False
    assert event.user == "diegos@contoso.com"


@pytest.mark.parametrize(
    ("name", "method", "raw"),
    [
        ("graph_signin_whfb.json", Method.WINDOWS_HELLO, "Windows Hello for Business"),
        ("graph_signin_fido2.json", Method.SECURITY_KEY, "FIDO2 security key"),
        ("eh_signin_passkey_device_bound.json", Method.SECURITY_KEY, "Passkey (device-bound)"),
        (
            "eh_signin_passkey_authenticator.json",
            Method.PLATFORM_PASSKEY,
            "Passkey (Microsoft Authenticator)",
        ),
        ("eh_signin_passkey_synced.json", Method.SYNCED_PASSKEY, "Passkey (synced)"),
        ("eh_signin_phone_sign_in.json", Method.MOBILE_AUTHENTICATOR, "Passwordless phone sign-in"),
        ("eh_signin_certificate.json", Method.CERTIFICATE, "X.509 Certificate"),
    ],
)
def test_passwordless_patterns(name: str, method: Method, raw: str) -> None:
    event = sign_in(name)
    assert event.kind is Kind.AUTHENTICATION and event.outcome is Outcome.SUCCESS
    assert event.method is method and event.raw_method == raw
    assert event.factors == [method] and event.raw_factors == [raw]
    assert event.passwordless is True
    assert event.interactive is True


def test_event_hub_sign_in_reads_properties_and_envelope() -> None:
    event = sign_in("eh_signin_phone_sign_in.json")
    assert event.event_id == "26e3c4b5-d1f8-4d3a-9f26-b1c2d3e4f500"
    assert event.event_type == "SignInLogs"
    assert event.time == datetime(2024, 6, 4, 8, 0, tzinfo=UTC)
    assert event.session == "9d0e1f2a-3b4c-4d5e-8f6a-8b9c0d1e2f3a"
    assert event.user == "meganb@contoso.com"
    assert event.country == "GB"
    assert event.app == "OfficeHome"


def test_unknown_method_string_is_kept() -> None:
    event = sign_in("graph_signin_unknown_method.json")
    assert event.kind is Kind.AUTHENTICATION
    assert event.method is Method.UNKNOWN
    assert event.raw_method == "QR code" and event.raw_factors == ["QR code"]
    assert event.passwordless is False


def test_unknown_method_string_after_password() -> None:
    record = json.loads(load("graph_signin_password_push.json"))
    record["authenticationDetails"][1]["authenticationMethod"] = "Holographic handshake"
    event = entra.parse(json.dumps(record))
    assert event.factors == [Method.PASSWORD, Method.UNKNOWN]
    assert event.raw_factors == ["Password", "Holographic handshake"]
    assert event.method is Method.PASSWORD


def test_method_names_match_case_insensitively() -> None:
    record = json.loads(load("graph_signin_whfb.json"))
    record["authenticationDetails"][0]["authenticationMethod"] = "WINDOWS HELLO FOR BUSINESS"
    assert entra.parse(json.dumps(record)).method is Method.WINDOWS_HELLO


def test_non_interactive_graph_sign_in_is_other_but_keeps_classification() -> None:
    event = sign_in("graph_signin_noninteractive.json")
    assert event.kind is Kind.OTHER
    assert event.interactive is False
    assert event.event_type == "nonInteractiveUser"
    assert event.factors == [Method.WINDOWS_HELLO]  # "Previously satisfied" adds no factor
    assert event.method is Method.WINDOWS_HELLO and event.passwordless is None


def test_non_interactive_event_hub_record_is_other() -> None:
    event = sign_in("eh_signin_noninteractive.json")
    assert event.kind is Kind.OTHER and event.interactive is False
    assert event.event_type == "NonInteractiveUserSignInLogs"
    assert event.outcome is Outcome.FAILURE
    assert event.reason is not None and event.reason.startswith("Device Authentication Required")
    assert event.factors == [] and event.method is None and event.passwordless is None
    assert event.session == "3ad2b5b1-ef09-4c50-81ad-853aef57674d"


def test_all_steps_previously_satisfied_is_session_reuse() -> None:
    event = sign_in("eh_signin_previously_satisfied.json")
    assert event.kind is Kind.OTHER
    assert event.interactive is True
    assert event.factors == [] and event.method is None and event.passwordless is None


def test_claim_in_token_step_without_method_adds_no_factor() -> None:
    record = json.loads(load("graph_signin_password_push.json"))
    record["authenticationDetails"][1].update(
        authenticationMethod=None,
        authenticationStepResultDetail="MFA requirement satisfied by claim in the token",
    )
    event = entra.parse(json.dumps(record))
    assert event.kind is Kind.AUTHENTICATION
    assert event.factors == [Method.PASSWORD]


def test_succeeded_sign_in_ignores_a_declined_step() -> None:
    record = json.loads(load("graph_signin_password_sms.json"))
    declined = dict(record["authenticationDetails"][1])
    declined.update(authenticationMethod="Mobile app notification", succeeded=False)
    record["authenticationDetails"].insert(1, declined)
    event = entra.parse(json.dumps(record))
    assert event.outcome is Outcome.SUCCESS
    assert event.factors == [Method.PASSWORD, Method.SMS]


def test_steps_after_the_failing_step_were_not_attempted() -> None:
    record = json.loads(load("graph_signin_bad_password.json"))
    never = dict(record["authenticationDetails"][0])
    never.update(authenticationMethod="Mobile app notification", succeeded=False)
    record["authenticationDetails"].append(never)
    event = entra.parse(json.dumps(record))
    assert event.factors == [Method.PASSWORD]


def test_service_principal_sign_in_is_other() -> None:
    event = sign_in("eh_signin_service_principal.json")
    assert event.kind is Kind.OTHER
    assert event.interactive is False
    assert event.user is None
    assert event.method is None and event.passwordless is None
    assert event.event_type == "ServicePrincipalSignInLogs"


def test_graph_v1_sign_in_without_authentication_details() -> None:
    record = json.loads(load("graph_signin_password_only.json"))
    for beta_only in ("authenticationDetails", "signInEventTypes", "sessionId"):
        del record[beta_only]
    event = entra.parse(json.dumps(record))
    assert event.kind is Kind.AUTHENTICATION
    assert event.factors == [] and event.method is Method.UNKNOWN and event.passwordless is False
    assert event.event_type == "signIn"


def test_event_hub_status_missing_falls_back_to_result_type() -> None:
    record = json.loads(load("eh_signin_passkey_synced.json"))
    del record["properties"]["status"]
    record["resultType"] = "50126"
    record["resultDescription"] = "Invalid username or password."
    event = entra.parse(json.dumps(record))
    assert event.outcome is Outcome.FAILURE and event.reason == "Invalid username or password."


# --- audits -----------------------------------------------------------------------------
def test_user_registered_authenticator_push() -> None:
    event = enrollment("graph_audit_registered_push.json")
    assert event.kind is Kind.ENROLLMENT and event.action == "registered"
    assert event.outcome is Outcome.SUCCESS
    assert event.method is Method.PUSH and event.passwordless_factor is False
    assert event.raw_method == "User registered Authenticator App with Notification and Code"
    assert event.user == "meganb@contoso.com"
    assert event.event_type == "User registered security info"
    assert event.event_id == "Authentication Methods_7d1c4e9a-2b6f-4a83-9c05-e8f3b1a7d264_K7Q2P"
    assert event.session == "8a9b0c1d-2e3f-4a4b-9c5d-7e8f9a0b1c2d"
    assert event.time == datetime(2024, 5, 10, 9, 12, 44, 551237, tzinfo=UTC)
    assert event.passwordless is None


def test_event_hub_fido2_registration() -> None:
    event = enrollment("eh_audit_registered_fido2.json")
    assert event.action == "registered"
    assert event.method is Method.SECURITY_KEY and event.passwordless_factor is True
    assert event.user == "diegos@contoso.com"
    assert event.time == datetime(2024, 5, 20, 16, 3, 10, 220000, tzinfo=UTC)


def test_user_deleted_sms_is_a_removal() -> None:
    event = enrollment("graph_audit_deleted_sms.json")
    assert event.action == "removed" and event.method is Method.SMS
    assert event.passwordless_factor is False
    assert event.event_type == "User deleted security info"


def test_admin_registered_tap_targets_the_user_not_the_admin() -> None:
    event = enrollment("graph_audit_admin_tap.json")
    assert event.action == "registered"
    assert event.user == "adelev@contoso.com"
    assert event.method is Method.OTP and event.passwordless_factor is False


@pytest.mark.parametrize(
    ("name", "activity"),
    [
        ("eh_audit_registered_all_required.json", "User registered all required security info"),
        ("graph_audit_add_passkey_synced.json", "Add Passkey (synced)"),
        ("graph_audit_changed_default.json", "User changed default security info"),
        ("eh_audit_add_user.json", "Add user"),
    ],
)
def test_other_audit_activities_are_other(name: str, activity: str) -> None:
    event = sign_in(name)
    assert event.kind is Kind.OTHER
    assert event.event_type == activity
    assert event.method is None and event.passwordless is None
    assert event.user is not None


@pytest.mark.parametrize(
    ("reason", "method"),
    [
        (
            "User registered Passwordless Microsoft Authenticator Authentication Method",
            Method.MOBILE_AUTHENTICATOR,
        ),
        ("User registered Windows Hello For Business Authentication Method", Method.WINDOWS_HELLO),
        ("User registered Passkey (synced)", Method.SYNCED_PASSKEY),
        ("User deleted Microsoft Authenticator Authentication Method", Method.PUSH),
        ("User registered Authenticator App with Code", Method.OTP),
        ("User registered Mobile Phone Call and SMS", Method.SMS),
        ("User registered Alternate Mobile Phone Call", Method.VOICE),
        ("Admin registered phone method for user", Method.SMS),
        ("User registered Email", Method.EMAIL),
        ("User registered App password", Method.PASSWORD),
        ("User registered Security questions", Method.UNKNOWN),
    ],
)
def test_reason_keywords(reason: str, method: Method) -> None:
    record = json.loads(load("graph_audit_registered_push.json"))
    record["resultReason"] = reason
    event = entra.parse(json.dumps(record))
    assert isinstance(event, EnrollmentEvent)
    assert event.method is method and event.raw_method == reason


def test_failed_deletion_keeps_its_outcome() -> None:
    record = json.loads(load("graph_audit_deleted_sms.json"))
    record.update(result="failure", resultReason="User failed to delete Mobile Phone SMS")
    event = entra.parse(json.dumps(record))
    assert isinstance(event, EnrollmentEvent)
    assert event.outcome is Outcome.FAILURE and event.action == "removed"


def test_numeric_audit_result() -> None:
    record = json.loads(load("graph_audit_registered_push.json"))
    record["result"] = 0
    assert entra.parse(json.dumps(record)).outcome is Outcome.SUCCESS


# --- malformed input --------------------------------------------------------------------
def _without(name: str, *path: str) -> str:
    record = json.loads(load(name))
    node = record
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return json.dumps(record)


def _with(name: str, value: object, *path: str) -> str:
    record = json.loads(load(name))
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(record)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": "1", "createdDateTime": ', "invalid JSON"),
        (b"not json at all", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[]", "unexpected shape"),
        (b'[{"id": "1"}]', "unexpected shape"),
        (b"null", "unexpected shape"),
        (b'"a string"', "unexpected shape"),
        (b"42", "unexpected shape"),
        (b"{}", "not an Entra sign-in or audit record"),
        (_with("graph_signin_password_only.json", 12345, "id"), "unexpected shape"),
        (
            _with("graph_signin_password_only.json", "soon", "createdDateTime"),
            "unreadable timestamp",
        ),
        (_with("graph_signin_password_only.json", None, "createdDateTime"), "missing timestamp"),
        (_with("graph_signin_password_only.json", "x", "status", "errorCode"), "unexpected shape"),
        (
            _with("graph_signin_password_only.json", {"a": 1}, "authenticationDetails"),
            "unexpected shape",
        ),
        (
            _with("graph_signin_password_only.json", [1, 2], "authenticationDetails"),
            "unexpected shape",
        ),
        (_with("graph_signin_password_only.json", "yes", "isInteractive"), "unexpected shape"),
        (_with("eh_signin_passkey_synced.json", [], "properties"), "unexpected shape"),
        (_with("eh_signin_passkey_synced.json", None, "properties"), "without `properties`"),
        (_with("graph_audit_registered_push.json", ["x"], "targetResources"), "unexpected shape"),
        (_without("graph_audit_registered_push.json", "activityDateTime"), "missing timestamp"),
        (
            _with("graph_audit_registered_push.json", "", "activityDisplayName"),
            "without `activityDisplayName`",
        ),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(raw: bytes | str, reason: str) -> None:
    with pytest.raises(RejectedEvent) as caught:
        entra.parse(raw)
    assert reason in caught.value.reason


def test_event_hub_audit_without_activity_name_uses_operation_name() -> None:
    raw = _with("eh_audit_add_user.json", None, "properties", "activityDisplayName")
    event = entra.parse(raw)
    assert event.event_type == "Add user"


def test_reject_is_the_only_exception_for_odd_values() -> None:
    base = json.loads(load("graph_signin_password_push.json"))
    odd_values: list[object] = [None, 0, -1, 1.5, True, "", "x", [], {}, [None], [{}], {"a": []}]
    for key in list(base):
        for value in odd_values:
            record = dict(base)
            record[key] = value
            with contextlib.suppress(RejectedEvent):
                entra.parse(json.dumps(record))
    for value in odd_values:
        steps = [dict(base["authenticationDetails"][0], authenticationMethod=value)]
        with contextlib.suppress(RejectedEvent):
            entra.parse(json.dumps(dict(base, authenticationDetails=steps)))


# --- records as real shippers deliver them ----------------------------------------------------
# Our own Event Hub records (Azure Monitor resource log schema,
# https://learn.microsoft.com/azure/azure-monitor/essentials/resource-logs-schema) in the shapes
# real shippers reported:
#   eh_adfs_signin_dotnet_time: an AD FS sign-in (ADFSSignInLogs) whose envelope `time` is in
#       .NET's month-first format (elastic/integrations#16537)
#   eh_service_principal_signin_dotnet_time: ServicePrincipalSignInLogs, month-first `time`
#       (elastic/integrations#15977), `durationMs` as a string (elastic/integrations#15976)
#   eh_signin_without_created_datetime: SignInLogs whose `properties` lack `createdDateTime`
#   eh_audit_update_service_principal: AuditLogs, a managed identity updating a service
#       principal (`Directory_<correlationId>_…` id, 7-digit fractions)


def test_adfs_sign_in_with_a_dotnet_time_is_kept() -> None:
    """Azure wrote `time` as "12/12/2025 3:03:58 PM" (elastic/integrations#15976, #15977):
    the record was a dead letter before. AD FS sign-ins (ADFSSignInLogs) stay `other`: the
    Entra sign-in of a federated user is logged in SignInLogs too, so counting both would
    count one sign-in twice."""
    event = entra.parse(load("eh_adfs_signin_dotnet_time.json"))
    assert event.kind is Kind.OTHER
    assert event.event_type == "ADFSSignInLogs"
    assert event.event_id == "86de3704-35ee-4724-9d32-e3177f9131fb"
    assert event.time == datetime(2026, 2, 17, 15, 58, 32, tzinfo=UTC)  # createdDateTime
    assert event.user == "ana.lima@example.com"


def test_service_principal_sign_in_with_a_dotnet_time() -> None:
    event = entra.parse(load("eh_service_principal_signin_dotnet_time.json"))
    assert event.kind is Kind.OTHER and event.interactive is False
    assert event.event_id == "be56f6a5-2e9a-4c34-b2ee-05fef0151470"
    assert event.time == datetime(2026, 1, 8, 7, 19, 40, 518362, tzinfo=UTC)  # 7th digit cut


def test_sign_in_without_created_datetime_takes_the_envelope_time() -> None:
    event = sign_in("eh_signin_without_created_datetime.json")
    assert event.kind is Kind.AUTHENTICATION
    assert event.time == datetime(2025, 10, 21, 13, 47, 8, 605193, tzinfo=UTC)  # 7 digits
    assert event.user == "joana.reis@example.com"


def test_audit_record_as_event_hubs_delivers_it() -> None:
    event = entra.parse(load("eh_audit_update_service_principal.json"))
    assert event.kind is Kind.OTHER
    assert event.event_type == "Update service principal"
    assert event.event_id == "Directory_ca3b2e83-3bc6-464b-ad11-367de4e1e6c4_QTZRM_724685909"
    assert event.time == datetime(2025, 9, 30, 6, 52, 14, 903671, tzinfo=UTC)


def _without_own_time(time: str) -> bytes:
    """The AD FS sign-in record as SignInLogs without `createdDateTime`, `time` as given."""
    record = json.loads(load("eh_adfs_signin_dotnet_time.json"))
    record.update(category="SignInLogs", time=time)
    del record["properties"]["createdDateTime"]
    return json.dumps(record).encode()


# The `time` values of Elastic's corner-case tests (signinlogs and auditlogs
# test-time-formats-corner-cases.log), each with the instant Elastic reads from it.
@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("01/09/2007 09:41:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("1/9/2007 09:41:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("01/09/2007 09:41:00 AM", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("1/9/2007 9:41:00 AM", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("1/9/2007 10:41:00 AM +01:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("2007-01-09T09:41:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),  # documented UTC
        ("2007-01-09T09:41:00.22Z", datetime(2007, 1, 9, 9, 41, 0, 220000, tzinfo=UTC)),
        ("2007-01-09T09:41:00.6816663Z", datetime(2007, 1, 9, 9, 41, 0, 681666, tzinfo=UTC)),
        ("2007-01-09T09:41:00.535404056Z", datetime(2007, 1, 9, 9, 41, 0, 535404, tzinfo=UTC)),
        ("2007-01-09T09:41:00.992099+00:00", datetime(2007, 1, 9, 9, 41, 0, 992099, tzinfo=UTC)),
        ("2007-01-09T11:41:00+02:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        # afternoon and midnight in the 12-hour clock
        ("11/14/2025 1:48:53 PM", datetime(2025, 11, 14, 13, 48, 53, tzinfo=UTC)),
        ("11/14/2025 12:05:00 AM", datetime(2025, 11, 14, 0, 5, tzinfo=UTC)),
    ],
)
def test_envelope_time_forms(time: str, expected: datetime) -> None:
    assert sign_in_time(_without_own_time(time)) == expected


def sign_in_time(raw: bytes) -> datetime:
    event = entra.parse(raw)
    assert isinstance(event, AuthEvent) and event.kind is Kind.AUTHENTICATION
    return event.time


@pytest.mark.parametrize(
    ("time", "reason"),
    [
        ("13/14/2025 1:48:53 AM", "unreadable timestamp"),  # no 13th month
        ("11/14/2025 13:48:53 PM", "unreadable timestamp"),
        ("2007-01-09", "has no time of day"),
        ("yesterday", "unreadable timestamp"),
    ],
)
def test_envelope_time_that_cannot_be_placed_is_rejected(time: str, reason: str) -> None:
    with pytest.raises(RejectedEvent, match=reason):
        entra.parse(_without_own_time(time))


def test_unreadable_created_datetime_falls_back_to_the_envelope_time() -> None:
    record = json.loads(load("eh_adfs_signin_dotnet_time.json"))
    record["category"] = "SignInLogs"
    record["properties"]["createdDateTime"] = "not a date"
    event = entra.parse(json.dumps(record))
    assert event.time == datetime(2026, 2, 17, 16, 5, 9, tzinfo=UTC)  # "2/17/2026 4:05:09 PM"
    del record["time"]
    with pytest.raises(RejectedEvent, match="unreadable timestamp `createdDateTime`"):
        entra.parse(json.dumps(record))


def test_graph_created_datetime_without_zone_is_utc() -> None:
    """Graph: "The Timestamp type ... is always in UTC time" (signIn resource)."""
    raw = _with("graph_signin_password_only.json", "2024-05-14T08:02:11", "createdDateTime")
    assert entra.parse(raw).time == datetime(2024, 5, 14, 8, 2, 11, tzinfo=UTC)


def _reshipped(record: dict) -> list[bytes]:
    """One record as different shippers serialize it: compact, pretty, keys reversed."""
    reversed_keys = {key: record[key] for key in reversed(list(record))}
    return [
        json.dumps(record, separators=(",", ":")).encode(),
        json.dumps(record, indent=4).encode(),
        json.dumps(reversed_keys).encode(),
    ]


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("graph_signin_password_only.json", ("id",)),
        ("eh_signin_passkey_synced.json", ("properties", "id")),
        ("graph_audit_registered_push.json", ("id",)),
        ("eh_adfs_signin_dotnet_time.json", ("properties", "id")),
    ],
)
def test_record_without_id_gets_an_id_derived_from_its_content(
    name: str, path: tuple[str, ...]
) -> None:
    record = json.loads(load(name))
    node = record
    for key in path[:-1]:
        node = node[key]
    original = entra.parse(load(name))
    del node[path[-1]]
    ids = {entra.parse(variant).event_id for variant in _reshipped(record)}
    assert len(ids) == 1
    (derived,) = ids
    assert derived.startswith("derived:") and len(derived) == 40
    assert {**entra.parse(json.dumps(record)).__dict__, "event_id": 0} == {
        **original.__dict__,
        "event_id": 0,
    }
    node[path[-1]] = ""  # an empty id is no id either, and the content differs
    assert entra.parse(json.dumps(record)).event_id not in (derived, "")


def test_record_without_id_or_time_is_rejected_for_its_time() -> None:
    raw = json.loads(_with("graph_signin_password_only.json", None, "createdDateTime"))
    del raw["id"]
    with pytest.raises(RejectedEvent, match="missing timestamp `createdDateTime`"):
        entra.parse(json.dumps(raw))
