"""Okta System Log: how an Okta event is read and classified.

Input: one LogEvent object as `GET /api/v1/logs` returns it (Classic Engine and Identity
Engine alike), or the same object inside the Amazon EventBridge envelope that Okta Log
Streaming delivers (`{"detail-type": ..., "source": "aws.partner/okta.com/...", "detail": {...}}`).
Splunk Cloud log streams carry the bare LogEvent. Event Hook deliveries batch several events
under `data.events[]` and must be split before they reach `parse` (one raw event, one result).

Sources (field names, enums, event types):
- System Log API, LogEvent object: https://developer.okta.com/docs/reference/api/system-log/
  (okta-developer-docs `docs/reference/api/system-log/index.md`): uuid, published, eventType,
  actor, client, outcome{result,reason}, target[]{type,displayName,detailEntry},
  authenticationContext{authenticationProvider,credentialType,externalSessionId}, debugContext,
  device ("a device enrolled with passwordless authentication using Okta Verify").
- Event Types catalog: https://developer.okta.com/docs/reference/api/event-types/
- "How to Locate Factor Information in Okta System Log" (Okta Support):
  https://support.okta.com/help/s/article/how-to-locate-factor-information-in-okta-system-log
- Okta Management API enums (okta-sdk-python `AuthenticatorMethodType`,
  `AuthenticatorKeyEnum`, `LogCredentialType`).
See docs/sources/okta.md for the full mapping table and the reasoning behind each choice.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    parse_time,
)

SOURCE = Source.OKTA

# --------------------------------------------------------------------------------------------
# Vendor strings -> canonical methods. Keys are lower-cased; lookups lower-case the raw value
# (Okta logs the same factor both as `SIGNED_NONCE` and `signed_nonce`).
# --------------------------------------------------------------------------------------------

# target[].detailEntry.methodTypeUsed (Identity Engine, user.authentication.* events).
_METHOD_TYPE_USED: dict[str, Method] = {
    # Method types, "AuthenticatorMethodType" enum of the Okta Management API
    # (https://developer.okta.com/docs/api/openapi/okta-management/management/tag/Authenticator/);
    # Okta's own detections query methodTypeUsed with these values ("Access to Admin Console
    # with Weak MFA Factor", github.com/okta/customer-detections admin_console_login_weak_mfa.yml).
    "password": Method.PASSWORD,
    "push": Method.PUSH,
    "totp": Method.OTP,  # Okta Verify / Google Authenticator time-based code
    "otp": Method.OTP,  # custom OTP, YubiKey OTP, on-prem MFA codes
    "signed_nonce": Method.MOBILE_AUTHENTICATOR,  # Okta FastPass
    "webauthn": Method.SECURITY_KEY,  # refined by _webauthn() below
    "sms": Method.SMS,
    "voice": Method.VOICE,
    "email": Method.EMAIL,
    "cert": Method.CERTIFICATE,  # Smart Card (PIV/CAC) authenticator
    "idp": Method.FEDERATED,  # IdP authenticator: another identity provider vouches
    "tac": Method.OTP,  # Temporary Access Code: a one-time code issued by the helpdesk
    # Knowledge factor, no canonical method: kept as unknown, never passwordless.
    "security_question": Method.UNKNOWN,
    # Duo Security authenticator: Okta does not log which Duo method (push, passcode...) ran.
    "duo": Method.UNKNOWN,
    # Display labels found in real Identity Engine records (the Sign-In Widget's wording), in
    # user.authentication.auth_via_mfa targets of type AuthenticatorEnrollment: "Password"
    # (github.com/opencybersecurityalliance/stix-shifter, stix_shifter_modules/okta/test/
    # stix_transmission/test_okta.py), "Get a push notification" (same repo,
    # test/stix_translation/test_okta_json_to_stix.py), "Use Okta FastPass" (published OIE
    # sample records of an Okta-to-MISP exporter).
    "get a push notification": Method.PUSH,
    "use okta fastpass": Method.MOBILE_AUTHENTICATOR,
}

# debugContext.debugData.factor / factorType. Lower-case factor types: "How to Locate Factor
# Information in Okta System Log" (support.okta.com, link above). Upper-case internal names:
# seen in real auth_via_mfa records (OKTA_VERIFY_PUSH, PASSWORD_AS_FACTOR, SIGNED_NONCE —
# stix-shifter okta tests, tomisp okta sample) and in Okta's Classic MFA page
# (factor selector value OKTA_SOFT_TOKEN for Okta Verify's code).
_DEBUG_FACTOR: dict[str, Method] = {
    "password_as_factor": Method.PASSWORD,
    "okta_verify_push": Method.PUSH,
    "push": Method.PUSH,
    "okta_soft_token": Method.OTP,
    "soft_token": Method.OTP,
    "token": Method.OTP,
    "token:software:totp": Method.OTP,
    "token:hotp": Method.OTP,
    "token:hardware": Method.OTP,  # YubiKey in OTP mode
    "google_otp": Method.OTP,
    "signed_nonce": Method.MOBILE_AUTHENTICATOR,  # "Represents Okta FastPass" (support article)
    "fido_webauthn": Method.SECURITY_KEY,  # refined by _webauthn() below
    "webauthn": Method.SECURITY_KEY,
    "fido_u2f": Method.SECURITY_KEY,  # U2F: always a roaming security key
    "u2f": Method.SECURITY_KEY,
    "sms": Method.SMS,
    "call": Method.VOICE,
    "email": Method.EMAIL,
    "question": Method.UNKNOWN,  # security question: knowledge factor, see above
    "security_question": Method.UNKNOWN,
}

# authenticationContext.credentialType ("Possible values", System Log API AuthenticationContext
# object). Used for Classic user.session.start and legacy user.authentication.* events.
_CREDENTIAL_TYPE: dict[str, Method] = {
    "password": Method.PASSWORD,
    "otp": Method.OTP,
    "sms": Method.SMS,
    "email": Method.EMAIL,
    "certificate": Method.CERTIFICATE,
    "assertion": Method.FEDERATED,  # SAML/OIDC assertion from an external IdP
    # Integrated Windows Authentication: Okta trusts the Kerberos ticket of the Windows logon;
    # the factor behind that logon is invisible to Okta -> federated (never passwordless).
    "iwa": Method.FEDERATED,
}
# Credential types that are sessions, tokens or device secrets, not a person's factor.
_NOT_A_FACTOR: frozenset[str] = frozenset(
    {"oauth2", "oauth 2.0", "jwt", "okta_client_session", "device_udid", "pre_shared_symmetric_key"}
)
# authenticationContext.authenticationProvider values that mean an external IdP signed the user in.
_FEDERATION_PROVIDERS: frozenset[str] = frozenset({"FEDERATION", "SOCIAL"})

# target[].detailEntry.authenticatorKey ("AuthenticatorKeyEnum", Okta Management API).
_AUTHENTICATOR_KEY: dict[str, Method] = {
    "okta_password": Method.PASSWORD,
    "okta_verify": Method.PUSH,  # FastPass only when the method or a registered device says so
    "okta_email": Method.EMAIL,
    "phone_number": Method.SMS,
    "google_otp": Method.OTP,
    "yubikey_token": Method.OTP,
    "symantec_vip": Method.OTP,
    "onprem_mfa": Method.OTP,
    "custom_app": Method.PUSH,
    "webauthn": Method.SECURITY_KEY,
    "security_key": Method.SECURITY_KEY,
    "smart_card_idp": Method.CERTIFICATE,
    "external_idp": Method.FEDERATED,
    "tac": Method.OTP,
    "security_question": Method.UNKNOWN,
    "duo": Method.UNKNOWN,
}

# Authenticator display names (Admin Console > Security > Authenticators; FIDO2 authenticator
# "Configure the Passkeys (FIDO2 WebAuthn) authenticator", help.okta.com). Enrollment fallback
# when no method string is logged.
_AUTHENTICATOR_NAME: dict[str, Method] = {
    "password": Method.PASSWORD,
    "okta verify": Method.PUSH,
    "email": Method.EMAIL,
    "phone": Method.SMS,
    "google authenticator": Method.OTP,
    "yubikey": Method.OTP,  # the YubiKey OTP authenticator, not a FIDO2 YubiKey model name
    "symantec vip": Method.OTP,
    "rsa securid": Method.OTP,
    "on-prem mfa": Method.OTP,
    "custom otp": Method.OTP,
    "fido2 (webauthn)": Method.SECURITY_KEY,
    "passkeys (fido2 webauthn)": Method.SECURITY_KEY,
    "security key or biometric": Method.SECURITY_KEY,
    "security key or biometric authenticator": Method.SECURITY_KEY,
    "webauthn": Method.SECURITY_KEY,
    "smart card authenticator": Method.CERTIFICATE,
    "smart card": Method.CERTIFICATE,
    "piv": Method.CERTIFICATE,
    "idp authenticator": Method.FEDERATED,
    "security question": Method.UNKNOWN,
    "duo security": Method.UNKNOWN,
}

# WebAuthn authenticator model names (FIDO MDS / passkey AAGUID names, as Okta's AAGUID list
# shows them: help.okta.com "Review and manage FIDO MDS and custom authenticators"; names from
# github.com/passkeydeveloper/passkey-authenticator-aaguids aaguid.json). Substring match on
# the lower-cased target displayName; first hit wins.
_WEBAUTHN_MODELS: tuple[tuple[str, Method], ...] = (
    ("windows hello", Method.WINDOWS_HELLO),
    # Synced passkey providers (credentials backed up to a cloud account).
    ("icloud keychain", Method.SYNCED_PASSKEY),
    ("google password manager", Method.SYNCED_PASSKEY),
    ("1password", Method.SYNCED_PASSKEY),
    ("bitwarden", Method.SYNCED_PASSKEY),
    ("dashlane", Method.SYNCED_PASSKEY),
    ("lastpass", Method.SYNCED_PASSKEY),
    ("keeper", Method.SYNCED_PASSKEY),
    ("nordpass", Method.SYNCED_PASSKEY),
    ("proton pass", Method.SYNCED_PASSKEY),
    ("samsung pass", Method.SYNCED_PASSKEY),
    ("enpass", Method.SYNCED_PASSKEY),
    # Device-bound platform authenticators (browser keys held in the Mac's Secure Enclave).
    ("chrome on mac", Method.PLATFORM_PASSKEY),
    ("edge on mac", Method.PLATFORM_PASSKEY),
    # Roaming security keys by maker.
    ("yubikey", Method.SECURITY_KEY),
    ("security key by yubico", Method.SECURITY_KEY),
    ("feitian", Method.SECURITY_KEY),
    ("titan", Method.SECURITY_KEY),
    ("solokey", Method.SECURITY_KEY),
    ("token2", Method.SECURITY_KEY),
    ("thales", Method.SECURITY_KEY),
)

_AUTHENTICATOR_TARGETS: frozenset[str] = frozenset(
    {"AuthenticatorEnrollment", "AuthenticatorMethod"}
)

# outcome.result (System Log API Outcome object).
_OUTCOME: dict[str, Outcome] = {
    "SUCCESS": Outcome.SUCCESS,
    "ALLOW": Outcome.SUCCESS,
    "FAILURE": Outcome.FAILURE,
    "DENY": Outcome.FAILURE,
}

_ENROLLMENT_ACTIONS: dict[str, Literal["registered", "removed"]] = {
    # "Activate factor or authenticator enrollment method for user"; in Identity Engine orgs it
    # fires when an authenticator is enrolled (Event Types catalog).
    "user.mfa.factor.activate": "registered",
    "user.mfa.factor.deactivate": "removed",
    # Every factor of the user reset at once: method stays null ("all of them").
    "user.mfa.factor.reset_all": "removed",
}
_SESSION_START = "user.session.start"
_DENY_PUSH = "user.mfa.okta_verify.deny_push"  # Classic: user tapped "No, it's not me"
# Step events that never name a factor (SSO to an app reuses the session).
_NOT_STEPS: frozenset[str] = frozenset({"user.authentication.sso"})
_UNKNOWN_IDS: frozenset[str] = frozenset({"", "unknown"})

# Enum members bound once: attribute access on an Enum class costs ~0.2 us per lookup.
_SUCCESS, _FAILURE, _NO_OUTCOME = Outcome.SUCCESS, Outcome.FAILURE, Outcome.UNKNOWN
_STEP, _OTHER = Kind.AUTHENTICATION_STEP, Kind.OTHER
_PUSH = Method.PUSH
_SECURITY_KEY, _SYNCED, _MOBILE = (
    Method.SECURITY_KEY,
    Method.SYNCED_PASSKEY,
    Method.MOBILE_AUTHENTICATOR,
)
_FEDERATED, _UNKNOWN = Method.FEDERATED, Method.UNKNOWN


# --------------------------------------------------------------------------------------------
# The only fields read (msgspec skips everything else without building it).
# --------------------------------------------------------------------------------------------


class _Actor(msgspec.Struct, rename="camel", gc=False):
    type: str | None = None
    alternate_id: str | None = None


class _DetailEntry(msgspec.Struct, rename="camel", gc=False):
    method_type_used: str | None = None
    method_used_verified_properties: str | list[str] | None = None
    authenticator_key: str | None = None


class _Target(msgspec.Struct, rename="camel", gc=False):
    type: str | None = None
    alternate_id: str | None = None
    display_name: str | None = None
    detail_entry: _DetailEntry | None = None


class _Geo(msgspec.Struct, rename="camel", gc=False):
    country: str | None = None


class _Client(msgspec.Struct, rename="camel", gc=False):
    ip_address: str | None = None
    geographical_context: _Geo | None = None


class _Outcome(msgspec.Struct, rename="camel", gc=False):
    result: str | None = None
    reason: str | None = None


class _AuthContext(msgspec.Struct, rename="camel", gc=False):
    authentication_provider: str | None = None
    credential_type: str | None = None
    external_session_id: str | None = None


class _DebugData(msgspec.Struct, rename="camel", gc=False):
    factor: str | None = None
    factor_type: str | None = None


class _DebugContext(msgspec.Struct, rename="camel", gc=False):
    debug_data: _DebugData | None = None


class _Device(msgspec.Struct, rename="camel", gc=False):
    registered: bool | None = None


class _LogEvent(msgspec.Struct, rename="camel", gc=False):
    uuid: str | None = None
    published: str | None = None
    event_type: str | None = None
    display_message: str | None = None
    actor: _Actor | None = None
    client: _Client | None = None
    outcome: _Outcome | None = None
    target: list[_Target] | None = None
    authentication_context: _AuthContext | None = None
    debug_context: _DebugContext | None = None
    device: _Device | None = None
    # Amazon EventBridge envelope of Okta Log Streaming: the LogEvent is `detail`.
    detail: _LogEvent | None = None


# --------------------------------------------------------------------------------------------
# Contract
# --------------------------------------------------------------------------------------------


def recognizes(top: Mapping[str, msgspec.Raw]) -> bool:
    """A LogEvent (published + eventType, with or without its uuid), or Okta's EventBridge
    envelope."""
    if "published" in top and "eventType" in top:
        return True
    if "detail" in top and "detail-type" in top and "source" in top:
        try:
            source = msgspec.json.decode(top["source"])
        except msgspec.DecodeError:
            return False
        return isinstance(source, str) and source.startswith("aws.partner/okta.com")
    return False


def parse(raw: RawEvent) -> NormalizedEvent:
    """One Okta LogEvent -> one normalized event, or `RejectedEvent`."""
    event = decode(raw, _LogEvent)
    if event.detail is not None and event.uuid is None and event.published is None:
        event = event.detail
    return _normalize(event, raw)


# --------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------


def _normalize(event: _LogEvent, raw: RawEvent) -> NormalizedEvent:
    if not event.event_type:
        raise RejectedEvent("missing `eventType`")
    time = parse_time(event.published, "published")
    # No uuid (a shipper dropped it): an id derived from the record, so a replay still dedups.
    event_id = event.uuid or derived_id(raw)
    event_type = event.event_type
    outcome_obj = event.outcome
    result = outcome_obj.result if outcome_obj is not None else None
    outcome = _OUTCOME.get(result or "", _NO_OUTCOME)
    reason = outcome_obj.reason if outcome_obj is not None else None
    auth = event.authentication_context
    session = auth.external_session_id if auth is not None else None
    if session in _UNKNOWN_IDS:
        session = None  # Okta writes "unknown" (or null) where there is no session

    action = _ENROLLMENT_ACTIONS.get(event_type)
    if action is not None:
        method, raw_method = (None, None)
        if event_type != "user.mfa.factor.reset_all":
            method, raw_method = _enrolled_method(event)
        return enrollment_event(
            source=SOURCE,
            event_id=event_id,
            time=time,
            user=_subject(event),
            outcome=outcome,
            method=method,
            raw_method=raw_method,
            session=session,
            event_type=event_type,
            action=action,
            passwordless_factor=method is not None and is_passwordless_factor(method),
        )

    factors: list[Method] = []
    raw_factors: list[str] = []
    if event_type == _SESSION_START:
        _from_credential_type(auth, factors, raw_factors)
    elif event_type == _DENY_PUSH:
        debug = event.debug_context.debug_data if event.debug_context is not None else None
        factors.append(_PUSH)
        raw_factors.append((debug.factor if debug is not None else None) or event_type)
        outcome = _FAILURE
        reason = reason or event.display_message or "push denied"
    elif event_type.startswith("user.authentication.") and event_type not in _NOT_STEPS:
        _step_factors(event, factors, raw_factors)

    client = event.client
    geo = client.geographical_context if client is not None else None
    user, app = _user_and_app(event)
    method = primary_method(factors) if factors else None
    return parsed_event(
        AuthEvent,
        {
            "source": SOURCE,
            "event_id": event_id,
            "time": time,
            "user": user,
            "kind": _STEP if factors else _OTHER,
            "outcome": outcome,
            "method": method,
            "raw_method": raw_factors[factors.index(method)] if method is not None else None,
            "passwordless": is_passwordless(factors) if factors else None,
            "session": session,
            "event_type": event_type,
            "factors": factors,
            "raw_factors": raw_factors,
            "interactive": True,
            "app": app,
            "src_ip": client.ip_address if client is not None else None,
            "country": geo.country if geo is not None else None,
            "reason": reason if outcome is not _SUCCESS else None,
        },
    )


def _step_factors(event: _LogEvent, factors: list[Method], raws: list[str]) -> None:
    """The factor(s) one user.authentication.* record checked, most specific source first:
    the authenticator target's methodTypeUsed, debugData.factor, credentialType, then the
    authentication provider (federation)."""
    debug = event.debug_context.debug_data if event.debug_context is not None else None
    debug_factor = (debug.factor or debug.factor_type) if debug is not None else None
    name: str | None = None
    props: str | list[str] | None = None
    for target in event.target or ():
        if target.type not in _AUTHENTICATOR_TARGETS:
            continue
        name = name or target.display_name
        entry = target.detail_entry
        if entry is None:
            continue
        props = props or entry.method_used_verified_properties
        used = entry.method_type_used
        if not used:
            continue
        method = _METHOD_TYPE_USED.get(used.lower())
        if method is None or method is _UNKNOWN:
            # An unfamiliar label: the debug factor or authenticator key may still say it.
            method = (
                _lookup(debug_factor, _DEBUG_FACTOR)
                or _lookup(entry.authenticator_key, _AUTHENTICATOR_KEY)
                or method
                or _UNKNOWN
            )
        shown = target.display_name or name
        if method is _SECURITY_KEY:
            method = _webauthn(shown, entry.method_used_verified_properties)
        raw = _joined(shown, used) or used
        if raw not in raws:
            factors.append(method)
            raws.append(raw)
    if factors:
        return
    if debug_factor:
        method = _DEBUG_FACTOR.get(debug_factor.lower(), _UNKNOWN)
        if method is _SECURITY_KEY:
            method = _webauthn(name, props)
        factors.append(method)
        raws.append(_joined(name, debug_factor) or debug_factor)
        return
    auth = event.authentication_context
    _from_credential_type(auth, factors, raws)
    if not factors and auth is not None and auth.authentication_provider in _FEDERATION_PROVIDERS:
        factors.append(_FEDERATED)
        raws.append(auth.authentication_provider)


def _from_credential_type(
    auth: _AuthContext | None, factors: list[Method], raws: list[str]
) -> None:
    credential = auth.credential_type if auth is not None else None
    if not credential or credential.lower() in _NOT_A_FACTOR:
        return
    factors.append(_CREDENTIAL_TYPE.get(credential.lower(), _UNKNOWN))
    raws.append(credential)


def _webauthn(name: str | None, props: str | list[str] | None) -> Method:
    """Which kind of WebAuthn credential: the authenticator model name when Okta shows one;
    else a credential without DEVICE_BOUND among its verified properties is a synced passkey;
    else a security key (Okta's own name for the authenticator: "Security Key or Biometric")."""
    if name:
        lowered = name.lower()
        for fragment, method in _WEBAUTHN_MODELS:
            if fragment in lowered:
                return method
    if props:
        listed = props if isinstance(props, str) else ",".join(props)
        if "DEVICE_BOUND" not in listed:
            return _SYNCED
    return _SECURITY_KEY


def _enrolled_method(event: _LogEvent) -> tuple[Method, str | None]:
    """The factor a user.mfa.factor.* event enrolled or removed, and its raw string (joined
    with the authenticator's display name, as for sign-in steps)."""
    name: str | None = None
    key: str | None = None
    used: str | None = None
    props: str | list[str] | None = None
    for target in event.target or ():
        if target.type in _AUTHENTICATOR_TARGETS or target.type == "Factor":
            name = name or target.display_name
            entry = target.detail_entry
            if entry is not None:
                used = used or entry.method_type_used
                key = key or entry.authenticator_key
                props = props or entry.method_used_verified_properties
    debug = event.debug_context.debug_data if event.debug_context is not None else None
    factor = (debug.factor or debug.factor_type) if debug is not None else None
    method: Method | None = None
    raw = used or factor
    if used:
        method = _lookup(used, _METHOD_TYPE_USED)
    if method is None and factor:
        method = _lookup(factor, _DEBUG_FACTOR)
    if method is None:
        method = _lookup(key, _AUTHENTICATOR_KEY)
    if method is None and name:
        method = _lookup(name, _AUTHENTICATOR_NAME)
        if method is None and _is_key_model(name):
            method = _SECURITY_KEY  # a WebAuthn model name such as "Windows Hello"
    if method is None:
        return _UNKNOWN, _joined(name, raw or key)
    if method is _SECURITY_KEY:
        method = _webauthn(name, props)
    elif method is _PUSH and not raw and event.device is not None and event.device.registered:
        # Okta Verify bound to a registered device: the device object is "a device enrolled
        # with passwordless authentication using Okta Verify" (LogEvent Device object) -> FastPass.
        method = _MOBILE
    return method, _joined(name, raw or key)


def _joined(name: str | None, raw: str | None) -> str | None:
    """`<authenticator name>: <method string>`, or whichever of the two exists."""
    if name and raw and name.lower() != raw.lower():
        return f"{name}: {raw}"
    return raw or name


def _is_key_model(name: str) -> bool:
    lowered = name.lower()
    return any(fragment in lowered for fragment, _ in _WEBAUTHN_MODELS)


def _lookup(value: str | None, table: dict[str, Method]) -> Method | None:
    if not value:
        return None
    method = table.get(value.lower())
    return None if method is _UNKNOWN else method


def _user_and_app(event: _LogEvent) -> tuple[str | None, str | None]:
    """The person (the acting user, else the first User target) and the app (AppInstance)."""
    actor = event.actor
    user = actor.alternate_id if actor is not None and actor.type == "User" else None
    app: str | None = None
    for target in event.target or ():
        if target.type == "AppInstance":
            app = app or target.display_name or target.alternate_id
        elif target.type == "User" and user is None:
            user = target.alternate_id
    return normalize_user(user), app


def _subject(event: _LogEvent) -> str | None:
    """Whose factor changed: the User target (an admin may be the actor), else the actor."""
    user = _target_user(event)
    if user is not None:
        return user
    actor = event.actor
    return normalize_user(actor.alternate_id) if actor is not None else None


def _target_user(event: _LogEvent) -> str | None:
    for target in event.target or ():
        if target.type == "User":
            return normalize_user(target.alternate_id)
    return None
