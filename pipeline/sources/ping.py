"""Ping Identity: PingOne audit activities and PingFederate security audit records.

Two products, one source (`ping`); every raw event is one JSON object of either shape:

* PingOne audit activity: the Platform API `GET /environments/{id}/activities` item, and the
  same body delivered by a PingOne webhook in "Ping Activity Format" (`id`, `recordedAt`,
  `createdAt`, `correlationId`, `actors`, `action{type,description}`, `resources[]`,
  `result{status,description}`, `_embedded`).
  Sources: "Audit Activities" (audit reporting data model)
  https://developer.pingidentity.com/pingone-api/platform/audit-activities.html ;
  "Obtaining logging data from PingOne" (sample activity)
  https://docs.pingidentity.com/solution-guides/customer_use_cases/htg_obtain_logging_data_p1.html
* PingFederate security audit log (`audit.log`) written as JSON through log4j2's
  JsonTemplateLayout: one object per line whose keys are the documented audit fields
  (`trackingid`, `event`, `subject`, `ip`, `app`, `connectionid`, `status`, `adapterid`,
  `description`, ...) plus the transaction time (`timestamp`, or `@timestamp`).
  Sources: "Security audit logging"
  https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/pf_security_audit_loggin.html
  "Logging in JSON format"
  https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/pf_logging_json_format.html

How one sign-in is logged: both products write one record per factor check, tied together by
an id (PingOne `correlationId`, PingFederate `trackingid`), so every factor check is
`kind: authentication_step` with that id as `session`; the records around them (sessions,
SSO, flows, admin changes) are `kind: other`. Full reasoning and tables: docs/sources/ping.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

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

SOURCE = Source.PING

# Enum members bound once: attribute access on an Enum class costs ~0.2 us per lookup.
_SUCCESS, _FAILURE, _NO_OUTCOME = Outcome.SUCCESS, Outcome.FAILURE, Outcome.UNKNOWN
_STEP, _OTHER = Kind.AUTHENTICATION_STEP, Kind.OTHER
_UNKNOWN = Method.UNKNOWN

# ---------------------------------------------------------------------------------------------
# Raw method strings -> canonical methods
# ---------------------------------------------------------------------------------------------

# PingOne: the raw method of a factor-check activity is the MFA device `type` of the device
# used (PingOne MFA device types), or the check itself where no device is involved.
# FIDO2 devices are qualified with the WebAuthn authenticator attachment and backup state of
# the credential, joined with ":" (e.g. "FIDO2:platform:backupState"), because PingOne has a
# single FIDO2 device type for platform, synced and roaming passkeys.
P1_METHODS: dict[str, Method] = {
    # "Audit Reporting Events" (PASSWORD.CHECK_SUCCEEDED / PASSWORD.CHECK_FAILED)
    # https://developer.pingidentity.com/pingone-api/platform/reference/audit-reporting-events.html
    "PASSWORD": Method.PASSWORD,
    # "MFA Devices" (device types EMAIL, SMS, VOICE, TOTP, MOBILE, FIDO2, OATH_TOKEN)
    # https://developer.pingidentity.com/pingone-api/mfa/users/mfa-devices.html
    "OTP": Method.OTP,  # an OTP check whose activity names no device
    "SMS": Method.SMS,
    "VOICE": Method.VOICE,
    "EMAIL": Method.EMAIL,
    "TOTP": Method.OTP,
    "OATH_TOKEN": Method.OTP,
    # A MOBILE device checked inside an MFA step is a push approval (PingOne MFA app / SDK).
    "MOBILE": Method.PUSH,
    # "Update Device Authentication Policy (env with PingID integration)": desktop, yubikey
    # https://developer.pingidentity.com/pingone-api/mfa/device-authentication-policy/update_mfa_policy_pingid_env.html
    "DESKTOP": Method.OTP,  # PingID desktop app: one-time passcodes
    "YUBIKEY": Method.SECURITY_KEY,
    # Legacy FIDO device types: the `security_key` and `platform` authenticators of the MFA
    # policy, pingidentity/terraform-provider-pingone resource `pingone_mfa_policy`
    # https://github.com/pingidentity/terraform-provider-pingone
    "PLATFORM": Method.PLATFORM_PASSKEY,
    "SECURITY_KEY": Method.SECURITY_KEY,
    # "MFA Devices: FIDO2 devices" + W3C WebAuthn Level 3 "authenticator attachment" and
    # "backup state" (BS flag: the credential is synced) https://www.w3.org/TR/webauthn-3/
    "FIDO2:platform": Method.PLATFORM_PASSKEY,
    "FIDO2:platform:backupState": Method.SYNCED_PASSKEY,
    "FIDO2:cross-platform": Method.SECURITY_KEY,
    "FIDO2:cross-platform:backupState": Method.SYNCED_PASSKEY,  # phone passkey over hybrid
    # FIDO2 with no attachment told: counted as a device-bound passkey (passwordless either
    # way, so the active-use rate does not depend on the guess)
    "FIDO2": Method.PLATFORM_PASSKEY,
    # "MFA Authentication Code": sign on by scanning a QR code with the mobile app, "without
    # any data entry, such as providing a username, password, or entering a one-time passcode"
    # https://developer.pingidentity.com/pingone-api/mfa/mfa-authentication/mfa-authentication-code.html
    "AUTHENTICATION_CODE": Method.MOBILE_AUTHENTICATOR,
}

# A registered MOBILE device is the PingOne MFA app, which can sign in on its own with an
# authentication code: as an enrolled factor it is passwordless-capable.
P1_ENROLLED_METHODS: dict[str, Method] = {**P1_METHODS, "MOBILE": Method.MOBILE_AUTHENTICATOR}

# PingFederate: the raw method is the `adapterid` of an AUTHN_ATTEMPT, the adapter *instance*
# id that the administrator chose. Keys are lower-cased; the table holds the ids Ping's own
# samples and common deployments use for each adapter type (extend it for a deployment's own
# ids). Any other id becomes Method.UNKNOWN with the id kept in raw_method.
PF_ADAPTERS: dict[str, Method] = {
    # HTML Form Adapter (com.pingidentity.adapters.htmlform.idp.HtmlFormIdpAuthnAdapter),
    # "HTML Form Adapter" https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/pf_html_form_adapt.html
    # ("HTMLFormPD" is the instance id of Ping's Docker baseline server profile)
    "htmlformpd": Method.PASSWORD,
    "htmlform": Method.PASSWORD,
    "htmlformadapter": Method.PASSWORD,
    # HTTP Basic Adapter (com.pingidentity.adapters.httpbasic.idp.HttpBasicIdpAuthnAdapter),
    # "Bundled adapters" https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/pf_bundled_adapt.html
    "httpbasic": Method.PASSWORD,
    # PingID Adapter (com.pingidentity.adapters.pingid.PingIDAdapter, "Bundled adapters") as
    # the second factor after the HTML Form Adapter, as in "Customer IAM configuration"
    # https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/pf_customer_iam_config.html
    "pingid": Method.PUSH,
    "pingidadapter": Method.PUSH,
    # PingID Adapter instance configured for passwordless sign-on (first in the policy, no
    # form before it): the app approval is the primary factor. Site convention id.
    "pingidpasswordless": Method.MOBILE_AUTHENTICATOR,
    # PingOne MFA IdP Adapter, "PingOne MFA Integration Kit" (push / OTP second factor)
    # https://docs.pingidentity.com/integrations/pingone/pingone_mfa_integration_kit/pf_p1_mfa_ik_authentication_flows.html
    "pingonemfa": Method.PUSH,
    # X.509 Certificate IdP Adapter: "client X.509 certificate authentication" (smart card),
    # "Overview of X.509 integrations" https://docs.pingidentity.com/integrations/x509/pf_is_overview_of_x509_integrations.html
    "x509": Method.CERTIFICATE,
    "x509certificate": Method.CERTIFICATE,
    "certificateadapter": Method.CERTIFICATE,
    # Kerberos Adapter (com.pingidentity.adapters.kerberos.KerberosAuthenticationAdapter): it
    # validates the Kerberos ticket of the Windows domain logon and takes "the username, the
    # domain, and the security identifiers" from it, "Kerberos Adapter"
    # https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/pf_kerberos_adapt.html
    # The factor of that logon (password or Windows Hello) never reaches PingFederate, so it is
    # `federated`: delegated to another authority, neither password nor passwordless.
    "kerberos": Method.FEDERATED,
    "kerberosadapter": Method.FEDERATED,
    "iwa": Method.FEDERATED,
}

# Adapters that collect no credential (Identifier First only asks who the user is): their
# AUTHN_ATTEMPT records are not factor checks. "Identifier First Adapter"
# https://docs.pingidentity.com/pingfederate/13.0/administrators_reference_guide/pf_identifier_first_adapter.html
PF_NON_FACTOR_ADAPTERS: frozenset[str] = frozenset({"identifierfirst", "idfirst"})

# ---------------------------------------------------------------------------------------------
# PingOne action types ("Audit Reporting Events")
# ---------------------------------------------------------------------------------------------

_P1_PASSWORD_CHECKS = frozenset({"PASSWORD.CHECK_SUCCEEDED", "PASSWORD.CHECK_FAILED"})
_P1_OTP_CHECKS = frozenset({"OTP.CHECK_SUCCESS", "OTP.CHECK_FAILED", "OTP.CHECK_INVALID"})
_P1_ASSERTION_CHECKS = frozenset({"ASSERTION.CHECK_SUCCESS", "ASSERTION.CHECK_FAILED"})
_P1_FAILED_CHECKS = frozenset(
    {"PASSWORD.CHECK_FAILED", "OTP.CHECK_FAILED", "OTP.CHECK_INVALID", "ASSERTION.CHECK_FAILED"}
)
_P1_PUSH_CHECK = "AUTHENTICATION.UPDATED"  # device authentication completed / failed
_P1_CODE_CHECK = "AUTHENTICATION_CODE.UPDATED"  # authentication code claimed by the app
_P1_DEVICE_EVENTS: dict[str, Literal["registered", "removed"]] = {
    "DEVICE.CREATED": "registered",
    "DEVICE.ACTIVATED": "registered",
    "DEVICE.DELETED": "removed",
}
_P1_OUTCOMES: dict[str, Outcome] = {
    "SUCCESS": Outcome.SUCCESS,
    "FAILED": Outcome.FAILURE,
    "FAILURE": Outcome.FAILURE,
}
_PF_OUTCOMES: dict[str, Outcome] = {
    "success": Outcome.SUCCESS,
    "failure": Outcome.FAILURE,
    "inprogress": Outcome.UNKNOWN,
}

# ---------------------------------------------------------------------------------------------
# Raw shapes: only the fields read. One struct covers both products so each event is decoded
# once; which product it is follows from the keys present. gc=False: decoded JSON holds no
# reference cycles, so the collector need not track them.
# ---------------------------------------------------------------------------------------------


class _Ref(msgspec.Struct, frozen=True, gc=False):
    id: str | None = None
    name: str | None = None
    type: str | None = None


class _Action(msgspec.Struct, frozen=True, gc=False):
    type: str
    description: str | None = None


class _Actors(msgspec.Struct, frozen=True, gc=False):
    client: _Ref | None = None
    user: _Ref | None = None


class _Result(msgspec.Struct, frozen=True, gc=False):
    status: str | None = None
    description: str | None = None


class _Device(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    id: str | None = None
    type: str | None = None
    status: str | None = None
    authenticator_attachment: str | None = None
    backup_state: bool | None = None


class _Embedded(msgspec.Struct, frozen=True, gc=False):
    device: _Device | None = None


class _Record(msgspec.Struct, frozen=True, gc=False):
    # PingOne activity
    id: str | None = None
    recorded_at: str | None = msgspec.field(name="recordedAt", default=None)
    created_at: str | None = msgspec.field(name="createdAt", default=None)
    correlation_id: str | None = msgspec.field(name="correlationId", default=None)
    actors: _Actors | None = None
    action: _Action | None = None
    resources: list[_Ref] | None = None
    result: _Result | None = None
    embedded: _Embedded | None = msgspec.field(name="_embedded", default=None)
    # PingFederate audit record (MDC values are strings)
    trackingid: str | None = None
    event: str | None = None
    timestamp: str | None = None
    at_timestamp: str | None = msgspec.field(name="@timestamp", default=None)
    subject: str | None = None
    ip: str | None = None
    app: str | None = None
    connectionid: str | None = None
    connectionname: str | None = None
    status: str | None = None
    adapterid: str | None = None
    description: str | None = None


# ---------------------------------------------------------------------------------------------
# Contract
# ---------------------------------------------------------------------------------------------


def recognizes(top: Mapping[str, msgspec.Raw]) -> bool:
    """PingOne activity (`recordedAt` + `action`, a pair no other vendor's record has) or a
    PingFederate audit record (`trackingid` + `event`, PingFederate's lower-case MDC keys)."""
    return ("recordedAt" in top and "action" in top) or ("trackingid" in top and "event" in top)


def parse(raw: RawEvent) -> NormalizedEvent:
    """One raw PingOne activity or PingFederate audit record -> one normalized event."""
    record = decode(raw, _Record)
    if record.action is not None:
        return _pingone(record, record.action, raw)
    if record.event is not None:
        return _pingfederate(record, record.event, raw)
    raise RejectedEvent("neither a PingOne activity (`action`) nor a PingFederate record (`event`)")


# ---------------------------------------------------------------------------------------------
# PingOne
# ---------------------------------------------------------------------------------------------


def _pingone(rec: _Record, action: _Action, raw: RawEvent) -> NormalizedEvent:
    if not action.type:
        raise RejectedEvent("empty `action.type`")
    time = parse_time(
        rec.recorded_at, "recordedAt", fallback=rec.created_at, fallback_field="createdAt"
    )
    # An activity without its id (a shipper dropped it): one derived from the record.
    event_id = rec.id or derived_id(raw)
    kind = action.type
    result = rec.result
    status = result.status if result is not None else None
    outcome = _P1_OUTCOMES.get(status or "", _NO_OUTCOME)
    if kind in _P1_FAILED_CHECKS:
        outcome = _FAILURE
    user = _p1_user(rec)
    session = rec.correlation_id or None
    device = rec.embedded.device if rec.embedded is not None else None

    raw_method: str | None = None
    if kind in _P1_PASSWORD_CHECKS:
        raw_method = "PASSWORD"
    elif kind in _P1_OTP_CHECKS:
        raw_method = device.type if device is not None and device.type else "OTP"
    elif kind in _P1_ASSERTION_CHECKS:
        raw_method = _fido_raw(device)
    elif kind == _P1_CODE_CHECK:
        raw_method = "AUTHENTICATION_CODE"
    elif kind == _P1_PUSH_CHECK and device is not None and device.type == "MOBILE":
        raw_method = "MOBILE"
    elif kind in _P1_DEVICE_EVENTS and outcome is _SUCCESS:
        # A device created ACTIVATION_REQUIRED cannot sign in yet: DEVICE.ACTIVATED follows,
        # so only a device created already ACTIVE is registered by DEVICE.CREATED.
        created = kind == "DEVICE.CREATED"
        if not created or (device is not None and device.status == "ACTIVE"):
            device_raw = _device_raw(device)
            method = P1_ENROLLED_METHODS.get(device_raw, _UNKNOWN) if device_raw else _UNKNOWN
            return enrollment_event(
                source=SOURCE,
                event_id=event_id,
                time=time,
                user=user,
                outcome=outcome,
                method=method,
                raw_method=device_raw or None,
                session=session,
                event_type=kind,
                action=_P1_DEVICE_EVENTS[kind],
                passwordless_factor=is_passwordless_factor(method),
            )

    reason = result.description if result is not None and outcome is _FAILURE else None
    app = rec.actors.client.name if rec.actors is not None and rec.actors.client else None
    if raw_method is None:
        return other_event(
            SOURCE, event_id, time, user, outcome, session, kind, app=app, reason=reason
        )
    method = P1_METHODS.get(raw_method, _UNKNOWN)
    return _step(
        event_id, time, user, outcome, session, kind, [method], [raw_method], app, None, reason
    )


def _p1_user(rec: _Record) -> str | None:
    """The user the activity is about: the USER resource, else the acting user."""
    for resource in rec.resources or ():
        if resource.type == "USER" and resource.name:
            return normalize_user(resource.name)
    if rec.actors is not None and rec.actors.user is not None:
        return normalize_user(rec.actors.user.name)
    return None


def _device_raw(device: _Device | None) -> str | None:
    if device is None or not device.type:
        return None
    return _fido_raw(device) if device.type == "FIDO2" else device.type


def _fido_raw(device: _Device | None) -> str:
    if device is None or not device.type:
        return "FIDO2"
    if device.type != "FIDO2" or not device.authenticator_attachment:
        return device.type
    if device.backup_state:
        return f"FIDO2:{device.authenticator_attachment}:backupState"
    return f"FIDO2:{device.authenticator_attachment}"


# ---------------------------------------------------------------------------------------------
# PingFederate
# ---------------------------------------------------------------------------------------------


def _pingfederate(rec: _Record, event: str, raw: RawEvent) -> NormalizedEvent:
    if not event:
        raise RejectedEvent("empty `event`")
    # `%d` of PingFederate's log4j2 pattern is the server's local time without a zone: such a
    # value is rejected (no zone), never guessed.
    time = parse_time(
        rec.timestamp, "timestamp", fallback=rec.at_timestamp, fallback_field="@timestamp"
    )
    status = rec.status or ""
    outcome = _PF_OUTCOMES.get(status, _NO_OUTCOME)
    adapters = _pf_adapters(rec.adapterid)
    # PingFederate writes no id per record: the documented fields that tell records apart
    # within one tracking id make the key (deduplication needs it stable across re-reads);
    # without a tracking id, an id derived from the whole record.
    stamp = rec.timestamp or rec.at_timestamp
    event_id = (
        f"{rec.trackingid}|{stamp}|{event}|{status}|{rec.adapterid or ''}"
        if rec.trackingid
        else derived_id(raw)
    )
    session = rec.trackingid or None
    user = normalize_user(rec.subject)
    # the partner's name where the template writes it, else the target URL / partner id
    app = rec.connectionname or rec.app or rec.connectionid or None
    reason = (rec.description or None) if outcome is _FAILURE else None
    ip = rec.ip or None
    factor_check = (
        event == "AUTHN_ATTEMPT"
        and outcome is not _NO_OUTCOME
        and not any(a.lower() in PF_NON_FACTOR_ADAPTERS for a in adapters)
    )
    if not factor_check:
        return other_event(
            SOURCE,
            event_id,
            time,
            user,
            outcome,
            session,
            event,
            app=app,
            src_ip=ip,
            reason=reason,
        )
    methods = [PF_ADAPTERS.get(a.lower(), _UNKNOWN) for a in adapters] or [_UNKNOWN]
    return _step(event_id, time, user, outcome, session, event, methods, adapters, app, ip, reason)


def _pf_adapters(value: str | None) -> list[str]:
    """`adapterid` holds one id, or several as "[a, b]" (documented for SSO records)."""
    value = (value or "").strip()
    if value.startswith("["):
        return [part.strip() for part in value.strip("[]").split(",") if part.strip()]
    return [value] if value else []


# ---------------------------------------------------------------------------------------------
# Normalized events
# ---------------------------------------------------------------------------------------------


def _step(
    event_id: str,
    time: datetime,
    user: str | None,
    outcome: Outcome,
    session: str | None,
    event_type: str,
    factors: list[Method],
    raw_factors: list[str],
    app: str | None,
    src_ip: str | None,
    reason: str | None,
) -> AuthEvent:
    method = primary_method(factors)
    # raw_method: the vendor string of the primary factor (factors and raw_factors align)
    raw_method = raw_factors[factors.index(method)] if raw_factors else None
    return parsed_event(
        AuthEvent,
        {
            "source": SOURCE,
            "event_id": event_id,
            "time": time,
            "user": user,
            "kind": _STEP,
            "outcome": outcome,
            "method": method,
            "raw_method": raw_method,
            "passwordless": is_passwordless(factors),
            "session": session,
            "event_type": event_type,
            "factors": factors,
            "raw_factors": raw_factors,
            "interactive": True,
            "app": app,
            "src_ip": src_ip,
            "country": None,
            "reason": reason,
        },
    )
