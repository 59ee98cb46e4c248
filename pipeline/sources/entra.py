"""Microsoft Entra ID: sign-in and audit logs, in both shapes users ship them.

1. Microsoft Graph: `GET /beta/auditLogs/signIns` (signIn resource; `authenticationDetails`
   and `signInEventTypes` are beta-only, v1.0 records parse but carry no factors) and
   `GET /v1.0/auditLogs/directoryAudits` (directoryAudit resource).
   - "signIn resource type", https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta
   - "directoryAudit resource type",
     https://learn.microsoft.com/graph/api/resources/directoryaudit?view=graph-rest-1.0
2. Azure Monitor diagnostic settings (Event Hub, storage account): one record is an envelope
   `{time, resourceId, operationName, category, resultType, correlationId, properties}` whose
   `properties` holds the same fields as the Graph resources ("This schema uses the same
   attribute names as the sign-in resource"). Event Hub delivers batches `{"records": [...]}`;
   the reader (`pipeline.sources.records`) splits them, `parse` takes one record.
   - "Interpret the Azure AD sign-in logs schema in Azure Monitor",
     https://learn.microsoft.com/entra/identity/monitoring-health/reference-azure-monitor-sign-ins-log-schema
   - "Stream Microsoft Entra logs to an Azure event hub",
     https://learn.microsoft.com/entra/identity/monitoring-health/howto-stream-logs-to-event-hub

One sign-in record is one authentication: Entra logs the factors of a sign-in as the steps of
`authenticationDetails` inside the record, not as events of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import msgspec

from pipeline.classify import is_passwordless, is_passwordless_factor, primary_method
from pipeline.model import (
    AuthEvent,
    Kind,
    Method,
    NormalizedEvent,
    Outcome,
    Source,
    parsed_event,
)
from pipeline.sources._common import (
    RawEvent,
    RejectedEvent,
    decode,
    derived_id,
    enrollment_event,
    normalize_user,
    other_event,
    parse_time,
)

SOURCE = Source.ENTRA

# Enum members bound once: attribute access on an Enum class costs ~0.2 us per lookup.
_SUCCESS, _FAILURE, _NO_OUTCOME = Outcome.SUCCESS, Outcome.FAILURE, Outcome.UNKNOWN
_AUTHENTICATION, _OTHER = Kind.AUTHENTICATION, Kind.OTHER
_UNKNOWN = Method.UNKNOWN

# --- authenticationDetails[].authenticationMethod -> canonical method ---------------------
# Keys are compared lower-cased: the portal and the APIs do not agree on capitalisation.
METHODS: dict[str, Method] = {
    # "authenticationDetail resource type" (Graph beta), authenticationMethod possible values:
    # Password, SMS, Voice, Authenticator App, Software OATH token, ...
    # https://learn.microsoft.com/graph/api/resources/authenticationdetail?view=graph-rest-beta
    "Password": Method.PASSWORD,
    "SMS": Method.SMS,
    "Voice": Method.VOICE,
    "Authenticator App": Method.PUSH,  # Authenticator used as the MFA step: a notification
    "Software OATH token": Method.OTP,
    # "Use the sign-in logs to review Microsoft Entra multifactor authentication events":
    # text message, Microsoft Authenticator app notification, phone call; "OATH verification
    # code is logged as the authentication method for both OATH hardware and software
    # tokens"; passwordless methods "Passwordless Phone Sign-in, FIDO2, and Windows Hello for
    # Business". https://learn.microsoft.com/entra/identity/authentication/howto-mfa-reporting
    "Text message": Method.SMS,
    "Mobile app notification": Method.PUSH,
    "Phone call": Method.VOICE,
    "Phone call approval (Authentication phone)": Method.VOICE,
    "Phone call approval (Alternate phone)": Method.VOICE,
    "Phone call approval (Office phone)": Method.VOICE,
    "OATH verification code": Method.OTP,
    "Hardware OATH token": Method.OTP,
    "Passwordless phone sign-in": Method.MOBILE_AUTHENTICATOR,
    "Passwordless Microsoft Authenticator": Method.MOBILE_AUTHENTICATOR,
    "Microsoft Authenticator (passwordless phone sign-in)": Method.MOBILE_AUTHENTICATOR,
    "Windows Hello for Business": Method.WINDOWS_HELLO,
    "FIDO2 security key": Method.SECURITY_KEY,
    # "How to enable synced passkeys (FIDO2) in Microsoft Entra ID": device-bound passkeys are
    # security keys or Microsoft Authenticator; Authenticator passkeys are logged under their
    # own name, so the remaining device-bound passkeys are hardware security keys. Synced
    # passkeys (iCloud Keychain, Google Password Manager) are "Passkey (synced)".
    # https://learn.microsoft.com/entra/identity/authentication/how-to-authentication-synced-passkeys
    "Passkey (device-bound)": Method.SECURITY_KEY,
    "Passkey (other device-bound)": Method.SECURITY_KEY,
    "Passkey (Microsoft Authenticator)": Method.PLATFORM_PASSKEY,
    "Passkey (synced)": Method.SYNCED_PASSKEY,
    # "Microsoft Entra passkeys on Windows": a device-bound passkey in the Windows Hello
    # container, not Windows Hello for Business.
    # https://learn.microsoft.com/entra/identity/authentication/how-to-authentication-entra-passkeys-on-windows
    "Passkey (Windows Hello)": Method.PLATFORM_PASSKEY,
    # "Passwordless authentication options for Microsoft Entra ID": Platform Credential for
    # macOS is a Secure Enclave-bound credential.
    # https://learn.microsoft.com/entra/identity/authentication/concept-authentication-passwordless
    "Platform Credential for macOS": Method.PLATFORM_PASSKEY,
    "macOS Platform Credential": Method.PLATFORM_PASSKEY,
    # "Microsoft Entra certificate-based authentication technical deep dive".
    # https://learn.microsoft.com/entra/identity/authentication/concept-certificate-based-authentication-technical-deep-dive
    "X.509 Certificate": Method.CERTIFICATE,
    "Certificate-based authentication": Method.CERTIFICATE,
    # "Configure Temporary Access Pass": a time-limited passcode issued by an admin for
    # onboarding and recovery; a one-time code, not a passwordless credential.
    # https://learn.microsoft.com/entra/identity/authentication/howto-authentication-temporary-access-pass
    "Temporary Access Pass": Method.OTP,
    # "Email one-time passcode authentication" (B2B guests).
    # https://learn.microsoft.com/entra/external-id/one-time-passcode
    "Email OTP": Method.EMAIL,
    "Email verification code": Method.EMAIL,
    # Sign-in completed at a federated identity provider (AD FS, other IdPs).
    "Federated": Method.FEDERATED,
    "Federated authentication": Method.FEDERATED,
}
_METHODS_LOWER: dict[str, Method] = {name.lower(): method for name, method in METHODS.items()}

# Steps satisfied by a claim of an earlier sign-in add no factor ("authenticationDetail
# resource type": Satisfied by token, Previously satisfied; howto-mfa-reporting: "satisfied
# by claim in the token").
_REUSED = frozenset({"previously satisfied", "satisfied by token"})

# --- Event Hub categories ("Configure Microsoft Entra diagnostic settings for activity logs",
# https://learn.microsoft.com/entra/identity/monitoring-health/howto-configure-diagnostic-settings)
_USER_SIGN_INS = frozenset({"SignInLogs", "SignIn"})  # "SignIn": the 2018 preview schema
_NON_INTERACTIVE = frozenset({"NonInteractiveUserSignInLogs"})
_SERVICE_SIGN_INS = frozenset({"ServicePrincipalSignInLogs", "ManagedIdentitySignInLogs"})
_AUDITS = frozenset({"AuditLogs", "Audit"})
_CATEGORIES = _USER_SIGN_INS | _NON_INTERACTIVE | _SERVICE_SIGN_INS | _AUDITS
# signIn.signInEventTypes (beta) values that are not a person signing in.
_SERVICE_EVENT_TYPES = frozenset({"servicePrincipal", "managedIdentity"})

# --- Audit activities ("Microsoft Entra audit log activity reference", Authentication Methods
# service; https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities)
_REGISTERED = frozenset({"User registered security info", "Admin registered security info"})
_REMOVED = frozenset({"User deleted security info", "Admin deleted security info"})
# Not enrollments, on purpose: "User registered all required security info" marks the end of
# the combined-registration wizard, whose every method has its own "User registered security
# info" record (counting it too would double the enrollment); changing the default method or
# updating a phone number adds or removes no factor; "Add Passkey (device-bound|synced)" is
# the companion record of the same FIDO2 registration (AAGUID details).

# The method of a security-info record is named in its `resultReason`: "User registered
# *method*" ("Troubleshoot combined registration", audit events table,
# https://learn.microsoft.com/entra/identity/authentication/howto-registration-mfa-sspr-combined-troubleshoot).
# Observed values: "User registered Authenticator App with Notification and Code", "... with
# Code", "Mobile Phone SMS", "Mobile Phone Call and SMS", "Fido2 Authentication Method",
# "Microsoft Authenticator Authentication Method", "Admin registered temporary access pass
# method for user" ("Security operations for privileged accounts",
# https://learn.microsoft.com/entra/architecture/security-operations-privileged-accounts).
# The reason is free text, so it is matched by keyword, most specific first.
REASON_KEYWORDS: tuple[tuple[str, Method], ...] = (
    ("temporary access pass", Method.OTP),
    ("passwordless", Method.MOBILE_AUTHENTICATOR),
    ("windows hello", Method.WINDOWS_HELLO),
    ("passkey (synced)", Method.SYNCED_PASSKEY),
    ("passkey (microsoft authenticator)", Method.PLATFORM_PASSKEY),
    # A FIDO2 record does not say which kind of passkey: the generic FIDO2 label.
    ("fido", Method.SECURITY_KEY),
    ("passkey", Method.SECURITY_KEY),
    ("security key", Method.SECURITY_KEY),
    ("certificate", Method.CERTIFICATE),
    ("notification", Method.PUSH),
    ("microsoft authenticator", Method.PUSH),
    ("oath", Method.OTP),
    ("authenticator app", Method.OTP),  # "Authenticator App with Code": TOTP only
    ("sms", Method.SMS),
    ("office phone", Method.VOICE),
    ("call", Method.VOICE),
    ("phone", Method.SMS),  # "Admin registered phone method for user": SMS-capable number
    ("email", Method.EMAIL),
    ("app password", Method.PASSWORD),
)


# --- Typed shapes: only the fields read, everything else is skipped by msgspec ------------
# gc=False: decoded JSON holds no reference cycles, so the collector need not track them.
class _Status(msgspec.Struct, rename="camel", gc=False):
    error_code: int | None = None
    failure_reason: str | None = None


class _Step(msgspec.Struct, rename="camel", gc=False):
    authentication_method: str | None = None
    succeeded: bool | None = None
    authentication_step_result_detail: str | None = None


class _Location(msgspec.Struct, rename="camel", gc=False):
    country_or_region: str | None = None


class _Actor(msgspec.Struct, rename="camel", gc=False):
    user_principal_name: str | None = None


class _Initiator(msgspec.Struct, gc=False):
    user: _Actor | None = None


class _Target(msgspec.Struct, rename="camel", gc=False):
    type: str | None = None
    user_principal_name: str | None = None


class _Record(msgspec.Struct, rename="camel", gc=False):
    """A Graph signIn, a Graph directoryAudit, or an Event Hub envelope (whose `properties`
    is one of the first two): the three share their field names, so one struct reads all."""

    id: str | None = None
    correlation_id: str | None = None
    category: str | None = None
    # signIn
    created_date_time: str | None = None
    user_principal_name: str | None = None
    app_display_name: str | None = None
    resource_display_name: str | None = None
    ip_address: str | None = None
    session_id: str | None = None
    is_interactive: bool | None = None
    sign_in_event_types: list[str] | None = None
    status: _Status | None = None
    authentication_details: list[_Step] | None = None
    # an object in a signIn, the region code (a string) on an Event Hub envelope
    location: _Location | str | None = None
    # directoryAudit
    activity_date_time: str | None = None
    activity_display_name: str | None = None
    result: str | int | None = None
    result_reason: str | None = None
    initiated_by: _Initiator | None = None
    target_resources: list[_Target] | None = None
    # Event Hub envelope
    time: str | None = None
    operation_name: str | None = None
    result_type: str | None = None
    result_description: str | None = None
    caller_ip_address: str | None = None
    properties: _Record | None = None


def recognizes(top: Mapping[str, msgspec.Raw]) -> bool:
    """A Graph signIn, a Graph directoryAudit, or an Entra diagnostic-settings record."""
    if "createdDateTime" in top and ("authenticationDetails" in top or "status" in top):
        return True
    if "activityDisplayName" in top and "loggedByService" in top:
        return True
    if "category" in top and "operationName" in top and "properties" in top:
        try:
            category = msgspec.json.decode(top["category"])
            resource = msgspec.json.decode(top["resourceId"]) if "resourceId" in top else None
        except msgspec.DecodeError:
            return False
        if isinstance(category, str) and category in _CATEGORIES:
            return True
        return isinstance(resource, str) and "/providers/microsoft.aadiam" in resource.lower()
    return False


def parse(raw: RawEvent) -> NormalizedEvent:
    """One Entra record -> one normalized event, or `RejectedEvent`."""
    record = decode(raw, _Record)
    if record.operation_name is not None or record.properties is not None:
        body = record.properties
        if body is None:
            raise RejectedEvent("Event Hub record without `properties`")
        category = record.category or ""
        if category in _AUDITS:
            return _audit(body, record, raw)
        if category in _CATEGORIES:
            return _sign_in(body, record, category, raw)
        return _other_record(body, record, category, raw)
    if record.activity_display_name is not None:
        return _audit(record, None, raw)
    if record.created_date_time is not None or record.authentication_details is not None:
        return _sign_in(record, None, None, raw)
    raise RejectedEvent("not an Entra sign-in or audit record (no createdDateTime/activity)")


def _sign_in(
    body: _Record, envelope: _Record | None, category: str | None, raw: RawEvent
) -> AuthEvent:
    when = _time(body.created_date_time, "createdDateTime", envelope)
    event_id = body.id or derived_id(raw)
    event_types = body.sign_in_event_types or ()
    if category is not None:
        service = category in _SERVICE_SIGN_INS
        interactive = category in _USER_SIGN_INS and body.is_interactive is not False
        event_type = category
    else:
        service = not _SERVICE_EVENT_TYPES.isdisjoint(event_types)
        interactive = body.is_interactive is not False and "nonInteractiveUser" not in event_types
        event_type = event_types[0] if event_types else "signIn"

    error_code = body.status.error_code if body.status is not None else None
    if error_code is None and envelope is not None and envelope.result_type is not None:
        error_code = _int_or_none(envelope.result_type)
    outcome = _NO_OUTCOME if error_code is None else _SUCCESS if error_code == 0 else _FAILURE
    reason = None
    if outcome is _FAILURE:
        reason = body.status.failure_reason if body.status is not None else None
        if reason is None and envelope is not None:
            reason = envelope.result_description

    steps = body.authentication_details or ()
    factors, raw_factors, reused = _factors(steps, failed=outcome is _FAILURE)
    # Every step satisfied by an earlier sign-in's claim: a session reuse, not a new one.
    session_reuse = bool(steps) and reused == len(steps)
    kind = _AUTHENTICATION
    if service or not interactive or session_reuse:
        kind = _OTHER
        interactive = interactive and not service

    method: Method | None = None
    raw_method: str | None = None
    passwordless: bool | None = None
    if kind is _AUTHENTICATION or factors:
        method = primary_method(factors)
        # the vendor string of the primary factor (none for the `unknown` of no factors)
        raw_method = raw_factors[factors.index(method)] if method in factors else None
    if kind is _AUTHENTICATION:
        # Only a user authentication gets a verdict; a token refresh keeps its method only.
        passwordless = is_passwordless(factors)

    country = None
    if isinstance(body.location, _Location):
        country = body.location.country_or_region
    elif envelope is not None and isinstance(envelope.location, str):
        country = envelope.location
    return parsed_event(
        AuthEvent,
        {
            "source": SOURCE,
            "event_id": event_id,
            "time": when,
            "user": normalize_user(body.user_principal_name),
            "kind": kind,
            "outcome": outcome,
            "method": method,
            "raw_method": raw_method,
            "passwordless": passwordless,
            # correlationId groups the records of one sign-in flow (an MFA interrupt and its
            # completion share it); sessionId spans every later token refresh of the session.
            "session": body.correlation_id
            or (envelope and envelope.correlation_id)
            or body.session_id,
            "event_type": event_type,
            "factors": factors,
            "raw_factors": raw_factors,
            "interactive": interactive,
            "app": body.app_display_name or body.resource_display_name,
            "src_ip": body.ip_address or (envelope and envelope.caller_ip_address),
            "country": country or None,
            "reason": reason,
        },
    )


def _factors(steps: Sequence[_Step], failed: bool) -> tuple[list[Method], list[str], int]:
    """The factors used, in order: succeeded steps, plus the step that failed a failed
    sign-in (steps after it were never attempted). Claims reused from earlier add none."""
    factors: list[Method] = []
    raw_factors: list[str] = []
    reused = 0
    for step in steps:
        name = step.authentication_method
        if not name:
            detail = step.authentication_step_result_detail
            if detail and "claim" in detail.lower():
                reused += 1  # "MFA requirement satisfied by claim in the token"
            continue
        key = name.strip().lower()
        if key in _REUSED:
            reused += 1
            continue
        if step.succeeded is True:
            factors.append(_METHODS_LOWER.get(key, _UNKNOWN))
            raw_factors.append(name)
        elif step.succeeded is False and failed:
            factors.append(_METHODS_LOWER.get(key, _UNKNOWN))
            raw_factors.append(name)
            break
    return factors, raw_factors, reused


def _audit(body: _Record, envelope: _Record | None, raw: RawEvent) -> NormalizedEvent:
    activity = body.activity_display_name or (envelope and envelope.operation_name)
    if not activity:
        raise RejectedEvent("audit record without `activityDisplayName`")
    when = _time(body.activity_date_time, "activityDateTime", envelope)
    event_id = body.id or derived_id(raw)
    outcome = _audit_outcome(body.result)
    user = normalize_user(_target_user(body))
    session = body.correlation_id or (envelope and envelope.correlation_id)
    reason = body.result_reason or None

    if activity in _REGISTERED or activity in _REMOVED:
        method = _reason_method(reason)
        return enrollment_event(
            source=SOURCE,
            event_id=event_id,
            time=when,
            user=user,
            outcome=outcome,
            method=method,
            raw_method=reason,  # the reason is the only place the method is named
            session=session,
            event_type=activity,
            action="registered" if activity in _REGISTERED else "removed",
            passwordless_factor=is_passwordless_factor(method),
        )
    reason = reason if outcome is _FAILURE else None
    return other_event(SOURCE, event_id, when, user, outcome, session, activity, reason=reason)


def _other_record(body: _Record, envelope: _Record, category: str, raw: RawEvent) -> AuthEvent:
    """Another Entra diagnostic category (provisioning, risk events, AD FS sign-ins...): kept
    as `other`. A correlation id ties the records of one flow, so it is no record id."""
    if body.created_date_time is not None:
        when = _time(body.created_date_time, "createdDateTime", envelope)
    else:
        when = _time(body.activity_date_time, "activityDateTime", envelope)
    event_id = body.id or derived_id(raw)
    return other_event(
        SOURCE,
        event_id,
        when,
        normalize_user(body.user_principal_name),
        _NO_OUTCOME,
        envelope.correlation_id or body.correlation_id,
        category or envelope.operation_name or "unknown",
    )


def _reason_method(reason: str | None) -> Method:
    if not reason:
        return _UNKNOWN
    text = reason.lower()
    for keyword, method in REASON_KEYWORDS:
        if keyword in text:
            return method
    return _UNKNOWN


def _target_user(body: _Record) -> str | None:
    """The user whose security info changed: the target (an admin may be the initiator)."""
    for target in body.target_resources or ():
        if target.user_principal_name and (target.type or "User") == "User":
            return target.user_principal_name
    if body.initiated_by is not None and body.initiated_by.user is not None:
        return body.initiated_by.user.user_principal_name
    return None


def _audit_outcome(result: str | int | None) -> Outcome:
    # operationResult: success, failure, timeout, unknownFutureValue (0..3 when numeric).
    if result == "success" or result == 0:
        return _SUCCESS
    if result in ("failure", "timeout", 1, 2):
        return _FAILURE
    return _NO_OUTCOME


def _time(value: str | None, field: str, envelope: _Record | None) -> datetime:
    """The record's own time, else (missing or unreadable) its Event Hub envelope's `time`.
    Both are documented UTC: Graph "Timestamp type ... is always in UTC time" (signIn /
    directoryAudit resources), Azure Monitor "time: The timestamp (UTC) of the event"
    (resource log common schema). Azure also writes `time` in .NET's month-first general
    format ("11/14/2025 1:48:53 AM", elastic/integrations#15977). docs/sources/entra.md."""
    return parse_time(
        value,
        field,
        fallback=envelope.time if envelope is not None else None,
        fallback_field="time",
        naive_is_utc=True,
        month_first=True,
    )


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
