"""Cisco Duo: Admin API logs -> normalized events.

How a Duo authentication is classified, in one place. Shapes read (one raw event each):

- Authentication log v2 (`GET /admin/v2/logs/authentication`, one item of
  `response.authlogs`): one Duo authentication -> `AuthEvent(kind=authentication)`; an item
  with `event_type: enrollment` (inline enrollment in the Duo Prompt) -> `EnrollmentEvent`.
- Activity log (`GET /admin/v2/logs/activity`): credential added / removed (WebAuthn
  credential, phone, U2F token) -> `EnrollmentEvent`; every other action -> `kind: other`.
- Administrator log (`GET /admin/v1/logs/administrator`) and Offline Enrollment log
  (`GET /admin/v1/logs/offline_enrollment`, same shape, `o2fa_*` actions): credential
  changes -> `EnrollmentEvent`; the rest -> `kind: other`.
- Telephony log (v2 `telephony_id`/`ts`, legacy v1 `credits`/`isotimestamp`) -> `kind: other`.

Sources (full table in docs/sources/duo.md):
- [ADMINAPI] Duo Admin API, "Authentication Logs", "Activity Logs", "Administrator Logs",
  "Telephony Logs", "Offline Enrollment Logs": https://duo.com/docs/adminapi
  (field descriptions and enumerations as reproduced in Panther's Duo schema,
  panther-labs/panther-docs docs/gitbook/data-onboarding/supported-logs/duo.md, and in the
  `factors` filter list of rapid7/insightconnect-plugins plugins/duo_admin).
- [SECOPS-ACT] Google SecOps, "Collect Duo Activity logs", event identifier table:
  https://cloud.google.com/chronicle/docs/ingestion/default-parsers/collect-duo-activity
- [PASSWORDLESS] Duo Passwordless: https://duo.com/docs/passwordless and the end-user guide
  https://guide.duo.com/passwordless (authenticator names: Touch ID, Face ID, Windows Hello,
  Android Biometrics, Passkeys, Security Keys).
- Sample records: the Admin API doc sample (txid 340a23e3-...) as kept in elastic/integrations
  packages/cisco_duo/data_stream/*/_dev/test/pipeline, and DataDog/integrations-core
  cisco_duo/assets/logs/cisco-duo_tests.yaml.

Semantics (why a Duo record alone is classified the way it is):
- Duo usually runs as the second factor after a password checked by another IdP or by the
  application itself; its record then names only the Duo factor. The shared rule is applied
  to what the record shows: a push, passcode, SMS or call alone is not passwordless (no
  passwordless-capable factor), a WebAuthn platform authenticator / security key is. The
  documented v2 fields carry no marker of a password checked by Duo SSO itself, so no
  password is ever added to a Duo record's factors (see docs/sources/duo.md).
- `remembered_device` / `trusted_network`: no factor was checked; Duo reused an earlier
  authentication (remembered-device session, or a trusted network). That is a session reuse,
  like Entra's "Previously satisfied": `kind: other`, method and passwordless null, so the
  active-use rate counts only sign-ins where a factor was actually presented.
- `raw_method` is the record's own `factor` string; a Duo authentication has exactly one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from pipeline.classify import (
    PASSWORDLESS_METHODS,
    is_passwordless,
    is_passwordless_factor,
    primary_method,
)
from pipeline.model import (
    AuthEvent,
    EnrollmentEvent,
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

SOURCE = Source.DUO

# Enum members bound once: attribute access on an Enum class costs ~0.2 us per lookup.
_SUCCESS, _NO_OUTCOME = Outcome.SUCCESS, Outcome.UNKNOWN
_AUTHENTICATION, _OTHER = Kind.AUTHENTICATION, Kind.OTHER
_UNKNOWN = Method.UNKNOWN

# --- Authentication log v2: `factor` -> canonical method -----------------------------------
FACTORS: dict[str, Method] = {
    # [ADMINAPI] Authentication Logs, `factor` ("One of: phone_call, passcode, yubikey_passcode,
    # digipass_go_7_token, hardware_token, duo_mobile_passcode, bypass_code, sms_passcode,
    # sms_refresh, duo_push, u2f_token, remembered_device, trusted_network") and the `factors`
    # filter list (adds yubikey_code, not_available): https://duo.com/docs/adminapi#authentication-logs
    "duo_push": Method.PUSH,
    "phone_call": Method.VOICE,
    "sms_passcode": Method.SMS,
    "sms_refresh": Method.SMS,  # the user asked for a new batch of SMS passcodes
    "passcode": Method.OTP,
    "duo_mobile_passcode": Method.OTP,
    "hardware_token": Method.OTP,
    "yubikey_passcode": Method.OTP,
    "yubikey_code": Method.OTP,
    "digipass_go_7_token": Method.OTP,
    "bypass_code": Method.OTP,  # helpdesk-issued one-time code
    # U2F (CTAP1) key: a security key, though U2F itself cannot sign in without a password.
    "u2f_token": Method.SECURITY_KEY,
    # Google SecOps, "Change log for DUO_AUTH", 2024-07-24 ("duo_mobile_passcode_hotp" -> OTP):
    # https://cloud.google.com/chronicle/docs/ingestion/parser-list/duo-auth-changelog
    "duo_mobile_passcode_hotp": Method.OTP,
    "duo_mobile_passcode_totp": Method.OTP,  # TOTP twin of the above (inferred)
    # Verified Duo Push (number matching), a push: https://duo.com/docs/policy#verified-duo-push
    "verified_duo_push": Method.PUSH,
    # [ADMINAPI] `factors` filter values for WebAuthn (the Universal Prompt's factor names);
    # [PASSWORDLESS] platform authenticators and roaming FIDO2 security keys.
    "WebAuthn Security Key": Method.SECURITY_KEY,
    "WebAuthn Chrome Touch ID": Method.PLATFORM_PASSKEY,
    "WebAuthn Credential": Method.SECURITY_KEY,  # refined by the credential's name below
}

# Factors that are not a factor: no credential was checked in this record.
SESSION_REUSE: frozenset[str] = frozenset({"remembered_device", "trusted_network"})
NO_FACTOR: frozenset[str] = frozenset({"not_available"})

# "WebAuthn Credential" names the credential in `auth_device.name`, which Duo labels after the
# authenticator ([PASSWORDLESS] guide: Touch ID, Face ID, Windows Hello, Android Biometrics,
# Passkeys, Security Keys). Checked in order; first match wins.
WEBAUTHN_NAMES: tuple[tuple[str, Method], ...] = (
    ("windows hello", Method.WINDOWS_HELLO),
    ("touch id", Method.PLATFORM_PASSKEY),
    ("face id", Method.PLATFORM_PASSKEY),
    ("android biometric", Method.PLATFORM_PASSKEY),
    ("platform", Method.PLATFORM_PASSKEY),
    ("passkey", Method.SYNCED_PASSKEY),
    ("security key", Method.SECURITY_KEY),
    ("yubikey", Method.SECURITY_KEY),
)

# [ADMINAPI] `result`: success, denied, failure, error, fraud (older docs: upper case).
RESULTS: dict[str, Outcome] = {
    "success": Outcome.SUCCESS,
    "denied": Outcome.FAILURE,
    "failure": Outcome.FAILURE,
    "fraud": Outcome.FAILURE,
    "error": Outcome.FAILURE,
}

# --- Activity / Administrator / Offline Enrollment logs: credential changes ------------------
# [SECOPS-ACT] event identifiers (webauthncredential_*, phone_*, u2ftoken_*) and the
# Administrator Logs actions (phone_create, phone_delete, phone_associate, phone_disassociate).
CREDENTIAL_ACTIONS: dict[str, Literal["registered", "removed"]] = {
    "webauthncredential_create": "registered",
    "webauthncredential_delete": "removed",
    "phone_create": "registered",
    "phone_associate": "registered",
    "phone_delete": "removed",
    "phone_disassociate": "removed",
    "u2ftoken_create": "registered",
    "u2ftoken_delete": "removed",
    # [ADMINAPI] Offline Enrollment Logs: Duo for Windows Logon offline access.
    "o2fa_user_provisioned": "registered",
    "o2fa_user_reenrolled": "registered",
    "o2fa_user_deprovisioned": "removed",
}

# WebAuthn credential `authenticator_type` / `credential_name` (activity `target.details`):
# "Security key" as in the Activity Logs sample; the others are Duo's authenticator labels
# ([PASSWORDLESS] guide). Exact, lower-cased.
AUTHENTICATOR_TYPES: dict[str, Method] = {
    "security key": Method.SECURITY_KEY,
    "touch id": Method.PLATFORM_PASSKEY,
    "face id": Method.PLATFORM_PASSKEY,
    "face id or touch id": Method.PLATFORM_PASSKEY,
    "android biometrics": Method.PLATFORM_PASSKEY,
    "platform authenticator": Method.PLATFORM_PASSKEY,
    "windows hello": Method.WINDOWS_HELLO,
    "passkey": Method.SYNCED_PASSKEY,
}

# Offline Enrollment `description.factor` ([ADMINAPI] Offline Enrollment Logs sample:
# "duo_otp"); offline access is a second factor to the Windows password.
OFFLINE_FACTORS: dict[str, Method] = {
    "duo_otp": Method.OTP,
    "security_key": Method.SECURITY_KEY,
}

MOBILE_OS = ("ios", "android")


# --- Typed shapes: only the fields read -----------------------------------------------------
# gc=False: decoded JSON holds no reference cycles, so the collector need not track them.
class _Location(msgspec.Struct, gc=False):
    country: str | None = None


class _IpAddress(msgspec.Struct, gc=False):
    address: str | None = None


class _AccessDevice(msgspec.Struct, gc=False):
    ip: str | _IpAddress | None = None  # auth log: a string; activity log: {"address": ...}
    location: _Location | None = None


class _AuthDevice(msgspec.Struct, gc=False):
    name: str | None = None


class _Named(msgspec.Struct, gc=False):
    name: str | None = None


class _Party(msgspec.Struct, gc=False):
    """Activity `actor` / `target`: `details` is a JSON document serialized into a string."""

    type: str | None = None
    key: str | None = None
    name: str | None = None
    details: str | dict[str, Any] | None = None


class _Outcome(msgspec.Struct, gc=False):
    result: str | None = None


class _Record(msgspec.Struct, gc=False):
    """Every Duo log shape at once, so one decode serves them all (auth log is the hot path)."""

    # Authentication log v2
    txid: str | None = None
    factor: str | None = None
    result: str | None = None
    reason: str | None = None
    event_type: str | None = None
    email: str | None = None
    isotimestamp: str | None = None
    timestamp: int | float | None = None
    user: _Named | None = None
    application: _Named | None = None
    access_device: _AccessDevice | None = None
    auth_device: _AuthDevice | None = None
    # Administrator / Offline Enrollment (action: str) and Activity (action: {"name": ...})
    action: str | _Named | None = None
    object: str | None = None
    username: str | None = None
    description: str | None = None
    # Activity log
    activity_id: str | None = None
    ts: str | None = None
    actor: _Party | None = None
    target: _Party | None = None
    outcome: _Outcome | None = None
    # Telephony log
    telephony_id: str | None = None
    context: str | None = None
    phone: str | None = None
    credits: int | None = None
    type: str | None = None


class _Details(msgspec.Struct, gc=False):
    """Keys read from `target.details` / `actor.details` / administrator `description`."""

    authenticator_type: str | None = None
    credential_name: str | None = None
    passwordless_authorized: bool | None = None
    os: str | None = None
    platform: str | None = None
    type: str | None = None
    email: str | None = None
    username: str | None = None
    user: str | None = None
    factor: str | None = None


_EMPTY_DETAILS = _Details()
_RAW_TYPES = (bytes, bytearray, memoryview, str)


# --- Shape detection ------------------------------------------------------------------------
def recognizes(top: Mapping[str, msgspec.Raw]) -> bool:
    """Duo's own keys: `txid` (or, without it, a timestamp) + a factor/device key (auth
    log), `activity_id` + `akey`, or `akey` + `ts` (activity), `telephony_id` or `credits` +
    `phone` (telephony), `action` + `object` + `username` (administrator / offline
    enrollment; PingOne's `action` comes with `recordedAt`/`resources`, never with `object`
    or `username`)."""
    if ("txid" in top or "isotimestamp" in top or "timestamp" in top) and (
        "factor" in top or "auth_device" in top or "access_device" in top
    ):
        return True
    if ("activity_id" in top and ("akey" in top or "actor" in top)) or (
        "akey" in top and "ts" in top
    ):
        return True
    if "telephony_id" in top or ("credits" in top and "phone" in top):
        return True
    return (
        "action" in top
        and "object" in top
        and "username" in top
        and ("timestamp" in top or "isotimestamp" in top)
    )


# --- Parsing ---------------------------------------------------------------------------------
def parse(raw: RawEvent) -> NormalizedEvent:
    """One Duo log record -> one normalized event, or `RejectedEvent` with the reason."""
    if not isinstance(raw, _RAW_TYPES):
        raise RejectedEvent(f"not a raw JSON event: {type(raw).__name__}")
    rec = decode(raw, _Record)
    if rec.activity_id is not None or isinstance(rec.action, _Named):
        return _activity(rec, raw)
    if rec.telephony_id is not None or rec.credits is not None:
        return _telephony(rec, raw)
    if rec.txid is not None or rec.factor is not None:
        return _authentication(rec, raw)
    if isinstance(rec.action, str):
        return _administrator(rec, raw)
    raise RejectedEvent("not a Duo log record: no txid, activity_id, telephony_id or action")


def classify_factor(factor: str, device_name: str | None = None) -> Method:
    """The canonical method of one Duo `factor` string (unmapped -> unknown)."""
    method = FACTORS.get(factor, _UNKNOWN)
    if factor == "WebAuthn Credential" and device_name:
        name = device_name.lower()
        for needle, named in WEBAUTHN_NAMES:
            if needle in name:
                return named
    return method


_FACTOR_CACHE: dict[tuple[str, str | None], Method] = {}


def _factor(raw: str, device: str | None) -> Method:
    """`classify_factor`, memoized for the documented strings (a handful of keys)."""
    key = (raw, device if raw == "WebAuthn Credential" else None)
    method = _FACTOR_CACHE.get(key)
    if method is None:
        method = classify_factor(*key)
        if raw in FACTORS and len(_FACTOR_CACHE) < 4096:
            _FACTOR_CACHE[key] = method
    return method


def _authentication(rec: _Record, raw: RawEvent) -> NormalizedEvent:
    time = _time(rec)
    txid = rec.txid or None  # the Duo transaction: id and session
    event_id = txid or derived_id(raw)
    user = normalize_user(rec.email or (rec.user.name if rec.user else None))
    outcome = RESULTS.get(rec.result.lower(), _NO_OUTCOME) if rec.result else _NO_OUTCOME
    raw_factor = rec.factor or None
    event_type = rec.event_type or "authentication"
    device = rec.auth_device.name if rec.auth_device else None

    if raw_factor is None or raw_factor in NO_FACTOR or raw_factor in SESSION_REUSE:
        factors: list[Method] = []
        raw_factors: list[str] = []
    else:
        factors = [_factor(raw_factor, device)]
        raw_factors = [raw_factor]

    if event_type == "enrollment":
        method = factors[0] if factors else _UNKNOWN
        capable = is_passwordless_factor(method)
        return _enrollment(
            event_id,
            time,
            user,
            outcome,
            event_type,
            "registered",
            method,
            raw_factor,
            capable,
            session=txid,
        )

    access = rec.access_device
    src_ip = access.ip if access is not None and isinstance(access.ip, str) else None
    country = access.location.country if access is not None and access.location else None
    reuse = raw_factor in SESSION_REUSE
    if reuse:
        method, passwordless = None, None
    elif factors:  # one factor: the shared rule reduces to the factor's own class
        method, passwordless = factors[0], factors[0] in PASSWORDLESS_METHODS
    else:
        method, passwordless = primary_method(factors), is_passwordless(factors)
    return parsed_event(
        AuthEvent,
        {
            "source": SOURCE,
            "event_id": event_id,
            "time": time,
            "user": user,
            "kind": _OTHER if reuse else _AUTHENTICATION,
            "outcome": outcome,
            "method": method,
            "raw_method": raw_factor,
            "passwordless": passwordless,
            "session": txid,
            "event_type": event_type,
            "factors": factors,
            "raw_factors": raw_factors,
            "interactive": True,
            "app": rec.application.name if rec.application else None,
            "src_ip": src_ip or None,
            "country": country or None,
            "reason": rec.reason if outcome is not _SUCCESS else None,
        },
    )


def _activity(rec: _Record, raw: RawEvent) -> NormalizedEvent:
    action = rec.action.name if isinstance(rec.action, _Named) else rec.action
    if not action:
        raise RejectedEvent("missing `action.name`")
    time = parse_time(rec.ts, "ts")
    activity_id = rec.activity_id or derived_id(raw)
    result = rec.outcome.result if rec.outcome else None
    outcome = RESULTS.get(result.lower(), _NO_OUTCOME) if result else _NO_OUTCOME
    target = rec.target or _Party()
    details = _details(target.details)
    actor = rec.actor or _Party()
    if actor.type == "user":  # self-service: the actor is the end user
        user = normalize_user(_details(actor.details).email or actor.name)
    elif target.type and target.type.startswith("user"):  # e.g. `user_bypass`: the user
        user = normalize_user(target.name)
    else:  # an administrator acted on someone's credential: read the owner if stated
        user = normalize_user(details.email or details.username or details.user)

    change = CREDENTIAL_ACTIONS.get(action)
    if change is None:
        return other_event(SOURCE, activity_id, time, user, outcome, None, action, app=_app(rec))
    method, raw_method, capable = _credential(action, target.type, details)
    return _enrollment(
        activity_id, time, user, outcome, action, change, method, raw_method, capable
    )


def _administrator(rec: _Record, raw: RawEvent) -> NormalizedEvent:
    action = rec.action if isinstance(rec.action, str) else None
    if not action:
        raise RejectedEvent("missing `action`")
    time = _time(rec)
    event_id = derived_id(raw)  # the v1 administrator log has no record id
    details = _details(rec.description)
    change = CREDENTIAL_ACTIONS.get(action)
    if change is None:
        return other_event(SOURCE, event_id, time, None, _NO_OUTCOME, None, action)
    if action.startswith("o2fa_"):  # offline enrollment: `username` is the end user
        user = normalize_user(rec.username)
        factor = details.factor or "offline"
        method = OFFLINE_FACTORS.get(details.factor or "", _UNKNOWN)
        # Offline access is a second factor to the Windows password, never passwordless.
        return _enrollment(event_id, time, user, _SUCCESS, action, change, method, factor, False)
    # `username` is the administrator; the end user only when the description names them.
    user = normalize_user(details.email or details.username or details.user)
    method, raw_method, capable = _credential(action, None, details)
    return _enrollment(event_id, time, user, _SUCCESS, action, change, method, raw_method, capable)


def _telephony(rec: _Record, raw: RawEvent) -> NormalizedEvent:
    # v2 `ts`; legacy v1 `isotimestamp` / `timestamp` and no record id
    time = parse_time(rec.ts, "ts") if rec.ts is not None else _time(rec)
    event_id = rec.telephony_id or derived_id(raw)
    return other_event(
        SOURCE,
        event_id,
        time,
        None,
        _NO_OUTCOME,
        rec.txid or None,
        f"telephony:{rec.type or 'unknown'}",
    )


# --- Helpers ---------------------------------------------------------------------------------
def _credential(
    action: str, target_type: str | None, details: _Details
) -> tuple[Method, str, bool]:
    """(method, raw method string, can sign in without a password) of a changed credential."""
    if action.startswith("webauthncredential") or target_type == "webauthn_credential":
        raw = details.authenticator_type or details.credential_name or "webauthn_credential"
        method = AUTHENTICATOR_TYPES.get(raw.lower(), _UNKNOWN)
        if method is _UNKNOWN and details.credential_name:
            method = AUTHENTICATOR_TYPES.get(details.credential_name.lower(), _UNKNOWN)
        # Duo states per credential whether it may be used without a password.
        capable = is_passwordless_factor(method) and details.passwordless_authorized is not False
        return method, raw, capable
    if action.startswith("u2ftoken"):
        # U2F keys are second factor only; Duo Passwordless needs WebAuthn/FIDO2.
        return Method.SECURITY_KEY, "u2f_token", False
    # A phone: Duo Mobile on a smartphone pushes; a landline takes calls; otherwise SMS.
    kind = (details.type or "").lower()
    system = (details.os or details.platform or "").lower()
    if kind == "landline":
        return Method.VOICE, "phone", False
    if any(name in system for name in MOBILE_OS):
        return Method.PUSH, "phone", False
    return Method.SMS, "phone", False


def _enrollment(
    event_id: str,
    time: datetime,
    user: str | None,
    outcome: Outcome,
    event_type: str,
    change: Literal["registered", "removed"],
    method: Method,
    raw_method: str | None,
    capable: bool,
    *,
    session: str | None = None,
) -> EnrollmentEvent:
    return enrollment_event(
        source=SOURCE,
        event_id=event_id,
        time=time,
        user=user,
        outcome=outcome,
        method=method,
        raw_method=raw_method,
        session=session,
        event_type=event_type,
        action=change,
        passwordless_factor=capable,
    )


def _app(rec: _Record) -> str | None:
    return rec.application.name if rec.application else None


def _time(rec: _Record) -> datetime:
    """`isotimestamp` when readable (it keeps the fraction; Duo has written it with stray
    spaces, "2021-07-20T11: 41: 31+00: 00"), else the Unix `timestamp` (seconds)."""
    return parse_time(
        rec.isotimestamp, "isotimestamp", fallback=rec.timestamp, fallback_field="timestamp"
    )


def _details(value: str | dict[str, Any] | None) -> _Details:
    """A `details` / `description` JSON document; anything else reads as empty."""
    if not value:
        return _EMPTY_DETAILS
    try:
        if isinstance(value, str):
            if not value.startswith("{"):
                return _EMPTY_DETAILS  # free-form text
            return msgspec.json.decode(value, type=_Details)
        return msgspec.convert(value, type=_Details)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _EMPTY_DETAILS
