"""Write simulator intents down as Microsoft Entra ID would log them.

Sign-ins come out either as a Microsoft Graph beta `signIn` (the only endpoint with
`authenticationDetails`) or as an Azure Monitor diagnostic-settings record (Event Hub /
storage, category `SignInLogs`), chosen per intent by the rng, so both shapes flow through
the pipeline; token refreshes (`interactive=False`) are `NonInteractiveUserSignInLogs`
records, the category they are streamed in. Enrollments come out as Authentication Methods
audit records ("User registered / deleted security info"), again Graph `directoryAudit` or
Event Hub `AuditLogs`. Shapes and sources: `docs/sources/entra.md` and
`pipeline/sources/entra.py`.

Plain dict building: this runs millions of times.
"""

from __future__ import annotations

import binascii
import hashlib
import random
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from pipeline.model import Method
from pipeline.simulate.intents import EnrollmentIntent, Person, SignInIntent
from pipeline.simulate.vendors._profiles import Profiles, shape_of
from pipeline.simulate.vendors._timetext import MINUTES as _MINUTES
from pipeline.simulate.vendors._timetext import minute_text as _minute_text

TENANT_ID = "8c5a7d2e-61f4-4b0a-9d3e-2f7b1c9e4a60"
_RESOURCE_ID = f"/tenants/{TENANT_ID}/providers/Microsoft.aadiam"

SUPPORTED_METHODS: frozenset[Method] = frozenset(
    {
        Method.PASSWORD,
        Method.WINDOWS_HELLO,
        Method.PLATFORM_PASSKEY,
        Method.SYNCED_PASSKEY,
        Method.SECURITY_KEY,
        Method.MOBILE_AUTHENTICATOR,
        Method.CERTIFICATE,
        Method.PUSH,
        Method.OTP,
        Method.SMS,
        Method.VOICE,
    }
)

# The authenticationMethod string each canonical method is logged as (see METHODS in
# pipeline/sources/entra.py for the documentation of each).
_SIGN_IN_METHOD: dict[Method, str] = {
    Method.PASSWORD: "Password",
    Method.WINDOWS_HELLO: "Windows Hello for Business",
    Method.PLATFORM_PASSKEY: "Passkey (Microsoft Authenticator)",
    Method.SYNCED_PASSKEY: "Passkey (synced)",
    Method.SECURITY_KEY: "FIDO2 security key",
    Method.MOBILE_AUTHENTICATOR: "Passwordless phone sign-in",
    Method.CERTIFICATE: "X.509 Certificate",
    Method.PUSH: "Mobile app notification",
    Method.OTP: "OATH verification code",
    Method.SMS: "Text message",
    Method.VOICE: "Phone call approval (Authentication phone)",
}
# authenticationStepResultDetail of a succeeded / failed step ("Use the sign-in logs to
# review Microsoft Entra multifactor authentication events" lists the MFA result details).
_STEP_OK: dict[Method, str] = {Method.PASSWORD: "Correct password"}
_STEP_OK_MFA = "MFA successfully completed"
_STEP_OK_STRONG = "MFA requirement satisfied by strong authentication"
_STEP_FAILED: dict[Method, str] = {
    Method.PASSWORD: "Invalid username or password or Invalid on-premise username or password.",
    Method.PUSH: "MFA denied; user declined the authentication",
    Method.MOBILE_AUTHENTICATOR: "MFA denied; user declined the authentication",
    Method.OTP: "Invalid verification code",
    Method.SMS: "Invalid verification code",
    Method.VOICE: "MFA denied; user didn't respond to the phone call",
}
_STEP_FAILED_OTHER = "Authentication failed"
# status.errorCode / failureReason: 50126 bad password, 500121 a later factor failed
# ("Microsoft Entra authentication and authorization error codes",
# https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
_BAD_PASSWORD = (50126, "Error validating credentials due to invalid username or password.")
_STRONG_AUTH_FAILED = (500121, "Authentication failed during strong authentication request.")

# Security-info registrations: the method is named in resultReason "User registered
# *method*". Attested values: "Authenticator App with Notification and Code", "Authenticator
# App with Code", "Mobile Phone SMS", "Fido2 Authentication Method", "Email". The others
# follow the "<Graph authentication method type> Authentication Method" pattern of the
# attested "Fido2 Authentication Method" / "Microsoft Authenticator Authentication Method"
# (inferred, see docs/sources/entra.md).
_REASON_METHOD: dict[Method, str] = {
    Method.PUSH: "Authenticator App with Notification and Code",
    Method.OTP: "Authenticator App with Code",
    Method.SMS: "Mobile Phone SMS",
    Method.VOICE: "Alternate Mobile Phone Call",
    Method.EMAIL: "Email",
    Method.SECURITY_KEY: "Fido2 Authentication Method",
    Method.SYNCED_PASSKEY: "Fido2 Authentication Method",
    Method.PLATFORM_PASSKEY: "Fido2 Authentication Method",
    Method.MOBILE_AUTHENTICATOR: "Passwordless Microsoft Authenticator Authentication Method",
    Method.WINDOWS_HELLO: "Windows Hello For Business Authentication Method",
}
ENROLLABLE_METHODS: frozenset[Method] = frozenset(_REASON_METHOD)
# A passkey registration is followed by its "Add Passkey (...)" record with the AAGUID
# ("How to find and remove synced passkeys"); Microsoft Authenticator's iOS AAGUID.
_PASSKEY_RECORD: dict[Method, tuple[str, str]] = {
    Method.SYNCED_PASSKEY: ("Add Passkey (synced)", "fbfc3007-154e-4ecc-8c0b-6e020557d7bd"),
    Method.PLATFORM_PASSKEY: ("Add Passkey (device-bound)", "90a3ccdf-635c-4729-a248-9b709135078f"),
    Method.SECURITY_KEY: ("Add Passkey (device-bound)", "cb69481e-8ff7-4039-93ec-0a2729a154a8"),
}

# Well-known first-party application ids; other apps get a stable derived id.
_APP_IDS: dict[str, str] = {
    "Azure Portal": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "Graph Explorer": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
    "Microsoft Office": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
    "Microsoft Teams": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
    "OfficeHome": "4765445b-32c6-49b0-83e6-1d93765276ca",
    "Outlook for iOS and Android": "27922004-5251-4030-b22d-91ecd9a37ea4",
}
# (operatingSystem, browser, userAgent) of a person's usual device, picked from their uid.
_DEVICES: tuple[tuple[str, str, str], ...] = (
    (
        "Windows 11",
        "Edge 124.0.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    ),
    (
        "MacOs 14.4",
        "Safari 17.4",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Safari/605.1.15",
    ),
    (
        "Windows 10",
        "Chrome 124.0.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
    ),
    (
        "Ios 17.4.1",
        "Mobile Safari 17.4",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
)
_PHONES = ("iPhone 15", "iPhone 14 Pro", "Pixel 8", "Galaxy S23")
_KEYS = ("YubiKey 5 NFC", "YubiKey 5C NFC", "Feitian ePass FIDO2")
_SYNC_PROVIDERS = ("iCloud Keychain", "Google Password Manager")


def emit_signin(intent: SignInIntent, rng: random.Random) -> list[dict]:
    """The one sign-in record Entra logs for this sign-in.

    Hot path (millions of calls): the record is a copy of the person's prepared template
    with the per-sign-in values set; everything that only depends on the person or on the
    factors used is computed once and shared between records (never mutated).
    """
    profile = _PROFILES.of(intent.person)
    factors = intent.factors
    success = intent.success
    shape = shape_of(profile, factors, success, _shape)
    steps_template, status, ca_status, requirement, result_type, description = shape
    interactive = intent.interactive
    # One draw for the shape (Graph / Event Hub) and the processing time (30 bits: a small
    # int, cheap arithmetic); an Event Hub record draws how long it takes to land.
    bits = rng.getrandbits(30)
    event_hub = not interactive or bits & 1
    when = intent.time
    if when.tzinfo is not UTC:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    # Unix minutes (toordinal() of 1970-01-01 is 719163)
    minutes = (when.toordinal() - 719_163) * 1440 + when.hour * 60 + when.minute
    second = when.second
    micros = when.microsecond
    prefix = _MINUTES.get(minutes) or _minute_text(minutes)  # "YYYY-MM-DDTHH:MM:"
    if micros:
        millis, sub_ms = divmod(micros, 1000)
        fraction = "." + _D3[millis] + _D3[sub_ms] + "0"  # Entra's 7-digit fraction
    else:
        millis = sub_ms = 0
        fraction = ".0000000"
    tail = fraction + "Z"
    start = prefix + _SS[second] + fraction
    stamp = start + "Z"
    step = steps_template[0].copy()
    step["authenticationStepDateTime"] = stamp
    if len(steps_template) == 1:
        steps = [step]
    else:
        # A few seconds per factor (7 s apart): typing a code or approving a push takes time.
        later = steps_template[1].copy()
        at = second + 7
        text = prefix + _SS[at] if at < 60 else _seconds_text(minutes * 60 + at)
        later["authenticationStepDateTime"] = text + tail
        steps = [step, later]
        if len(steps_template) > 2:
            for index in range(2, len(steps_template)):
                later = steps_template[index].copy()
                at = second + 7 * index
                text = prefix + _SS[at] if at < 60 else _seconds_text(minutes * 60 + at)
                later["authenticationStepDateTime"] = text + tail
                steps.append(later)
    uid = intent.uid
    # correlationId, sessionId and uniqueTokenIdentifier: from a hash of the uid (64 bytes:
    # 16 + 16 + 16 used). The sign-in id (the uid itself), correlationId and sessionId
    # (version 4 GUIDs) in one formatting operation: 3 x 36 characters.
    digest = _blake2b(uid.encode()).digest()
    h = digest[:32].hex()
    ids = (
        f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}"
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
        f"{h[32:40]}-{h[40:44]}-4{h[45:48]}-{_VARIANT[h[48]]}{h[49:52]}-{h[52:64]}"
    )
    sign_in_id = ids[:36]
    correlation = ids[36:72]
    app = intent.app
    app_id = _APP_ID_CACHE.get(app) or _app_id(app)
    body = profile.body.copy()
    body["id"] = sign_in_id
    body["createdDateTime"] = start + "+00:00" if event_hub else stamp
    body["appId"] = app_id
    body["appDisplayName"] = app
    body["ipAddress"] = intent.ip
    body["correlationId"] = correlation
    body["conditionalAccessStatus"] = ca_status
    body["originalRequestId"] = sign_in_id
    body["processingTimeInMilliseconds"] = 40 + (bits >> 1) % 360
    body["resourceDisplayName"] = app
    body["resourceId"] = app_id
    body["authenticationRequirement"] = requirement
    token = _b2a(digest[48:])  # 22 base64 characters, then "==\n"
    body["uniqueTokenIdentifier"] = token[:22].translate(_URLSAFE).decode()
    body["sessionId"] = ids[72:]
    body["status"] = status
    body["authenticationDetails"] = steps
    if not interactive:
        body["clientAppUsed"] = "Mobile Apps and Desktop clients"
        body["isInteractive"] = False
        body["incomingTokenType"] = "refreshToken"
    if not event_hub:
        # Graph beta only; the Event Hub category carries the same information.
        body["signInEventTypes"] = _INTERACTIVE_USER
        return [body]
    # Event Hub records land a little after the sign-in they describe (200 ms - 90 s).
    carry, landed = divmod(second * 1000 + millis + 200 + int(rng.random() * 89_800), 60_000)
    text = _minute_text(minutes + carry) if carry else prefix
    record = profile.envelope.copy()
    record["time"] = text + _SS[landed // 1000] + "." + _D3[landed % 1000] + _D3[sub_ms] + "0Z"
    if not interactive:
        record["category"] = "NonInteractiveUserSignInLogs"
    record["resultType"] = result_type
    record["resultDescription"] = description
    record["callerIpAddress"] = intent.ip
    record["correlationId"] = correlation
    record["properties"] = body
    return [record]


class _Profile:
    """Per person, computed once: user object id, the record templates, the
    authenticationMethodDetail of each method and the per-(factors, success) step templates."""

    __slots__ = ("body", "details", "envelope", "person", "shapes", "user_id")

    def __init__(self, person: Person) -> None:
        self.person = person
        pick = int(person.uid[-4:], 16)
        phone = _PHONES[pick % len(_PHONES)]
        number = f"+1 XXXXXXXX{pick % 100:02d}"
        self.details: dict[Method, str | None] = {
            Method.PASSWORD: "Password Hash Sync",
            Method.PUSH: phone,
            Method.OTP: phone,
            Method.MOBILE_AUTHENTICATOR: phone,
            Method.PLATFORM_PASSKEY: phone,
            Method.SMS: number,
            Method.VOICE: number,
            Method.SECURITY_KEY: _KEYS[pick % len(_KEYS)],
            Method.SYNCED_PASSKEY: _SYNC_PROVIDERS[pick % len(_SYNC_PROVIDERS)],
        }
        os_name, browser, agent = _DEVICES[int(person.uid[:8], 16) % len(_DEVICES)]
        self.user_id = _as_guid(person.uid)
        self.shapes: list[tuple[tuple[Method, ...], bool, tuple]] = []
        # Key order is the record's; None values are set per sign-in.
        self.body: dict = {
            "id": None,
            "createdDateTime": None,
            "userDisplayName": person.display_name,
            "userPrincipalName": person.login,
            "userId": self.user_id,
            "appId": None,
            "appDisplayName": None,
            "ipAddress": None,
            "clientAppUsed": "Browser",
            "userAgent": agent,
            "correlationId": None,
            "conditionalAccessStatus": None,
            "originalRequestId": None,
            "isInteractive": True,
            "tokenIssuerName": "",
            "tokenIssuerType": "AzureAD",
            "processingTimeInMilliseconds": None,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes_v2": [],
            "resourceDisplayName": None,
            "resourceId": None,
            "resourceTenantId": TENANT_ID,
            "homeTenantId": TENANT_ID,
            "authenticationRequirement": None,
            "userType": "member",
            "crossTenantAccessType": "none",
            "incomingTokenType": "none",
            "authenticationProtocol": "none",
            "uniqueTokenIdentifier": None,
            "sessionId": None,
            "status": None,
            "deviceDetail": _device_detail(os_name, browser),
            "location": _location(person.country),
            "appliedConditionalAccessPolicies": [],
            "authenticationProcessingDetails": _PROCESSING_DETAILS,
            "networkLocationDetails": [],
            "authenticationDetails": None,
            "authenticationRequirementPolicies": [],
            "sessionLifetimePolicies": [],
        }
        self.envelope: dict = {
            "time": None,
            "resourceId": _RESOURCE_ID,
            "operationName": "Sign-in activity",
            "operationVersion": "1.0",
            "category": "SignInLogs",
            "tenantId": TENANT_ID,
            "resultType": None,
            "resultSignature": "None",
            "resultDescription": None,
            "durationMs": 0,
            "callerIpAddress": None,
            "correlationId": None,
            "identity": person.display_name,
            "Level": 4,
            "location": person.country,
            "properties": None,
        }


_PROFILES: Profiles[_Profile] = Profiles(_Profile)


def _shape(profile: _Profile, factors: tuple[Method, ...], success: bool) -> tuple:
    """What a sign-in with these factors and outcome looks like, apart from its times and ids:
    (step templates, status, conditionalAccessStatus, authenticationRequirement, Event Hub
    resultType and resultDescription)."""
    for factor in factors:
        if factor not in SUPPORTED_METHODS:
            raise ValueError(f"Entra cannot log a {factor.value} sign-in factor")
    if not factors:
        raise ValueError("a sign-in needs at least one factor")
    last = len(factors) - 1
    steps = []
    for index, factor in enumerate(factors):
        ok = success or index < last
        if ok:
            detail = _STEP_OK.get(factor)
            if detail is None:
                detail = _STEP_OK_MFA if index else _STEP_OK_STRONG
        else:
            detail = _STEP_FAILED.get(factor, _STEP_FAILED_OTHER)
        steps.append(_step(factor, profile.details.get(factor), ok, detail, index == 0))
    if success:
        code, reason = 0, "Other."
    else:
        code, reason = _BAD_PASSWORD if factors[last] is Method.PASSWORD else _STRONG_AUTH_FAILED
    strong = len(factors) > 1 or factors[0] is not Method.PASSWORD
    status = {
        "errorCode": code,
        "failureReason": reason,
        "additionalDetails": "MFA completed in Azure AD" if code == 0 and strong else None,
    }
    return (
        tuple(steps),
        status,
        "success" if strong else "notApplied",
        "multiFactorAuthentication" if strong else "singleFactorAuthentication",
        str(code),
        reason if code else "",
    )


# Record parts shared by many people's records (never mutated).
_PROCESSING_DETAILS = [{"key": "Is CAE Token", "value": "False"}]


@lru_cache(maxsize=64)
def _device_detail(os_name: str, browser: str) -> dict:
    return {
        "deviceId": "",
        "displayName": "",
        "operatingSystem": os_name,
        "browser": browser,
        "isCompliant": False,
        "isManaged": False,
        "trustType": "",
    }


@lru_cache(maxsize=256)
def _location(country: str) -> dict:
    return {
        "city": "",
        "state": "",
        "countryOrRegion": country,
        "geoCoordinates": {"altitude": None, "latitude": None, "longitude": None},
    }


@lru_cache(maxsize=4096)
def _step(method: Method, method_detail: str | None, ok: bool, detail: str, first: bool) -> dict:
    """An authenticationDetails step without its time (copied, then set, per sign-in)."""
    return {
        "authenticationStepDateTime": None,
        "authenticationMethod": _SIGN_IN_METHOD[method],
        "authenticationMethodDetail": method_detail,
        "succeeded": ok,
        "authenticationStepResultDetail": detail,
        "authenticationStepRequirement": (
            "Primary authentication" if first else "Multifactor authentication"
        ),
    }


def emit_enrollment(intent: EnrollmentIntent, rng: random.Random) -> list[dict]:
    """The Authentication Methods audit record(s) of a security-info registration/removal."""
    method_text = _REASON_METHOD.get(intent.method)
    if method_text is None:
        raise ValueError(f"Entra logs no security-info registration for {intent.method.value}")
    person = intent.person
    registered = intent.action == "registered"
    activity = "User registered security info" if registered else "User deleted security info"
    verb = "registered" if registered else "deleted"
    ip = f"203.0.113.{rng.randrange(1, 255)}"
    correlation = _guid(intent.uid, "correlation")
    event_hub = rng.random() < 0.5
    records = [
        _audit(
            record_id=f"Authentication Methods_{_guid(intent.uid, 'audit')}",
            when=intent.time,
            activity=activity,
            reason=f"User {verb} {method_text}",
            operation="Add" if registered else "Delete",
            service="Authentication Methods",
            person=person,
            ip=ip,
            correlation=correlation,
            details=[],
            event_hub=event_hub,
        )
    ]
    passkey = _PASSKEY_RECORD.get(intent.method) if registered else None
    if passkey is not None:
        passkey_activity, aaguid = passkey
        records.append(
            _audit(
                record_id=f"Directory_{_guid(intent.uid, 'passkey')}",
                when=intent.time + timedelta(seconds=2),
                activity=passkey_activity,
                reason="",
                operation="Add",
                service="Core Directory",
                person=person,
                ip=ip,
                correlation=correlation,
                details=[{"key": "AAGuid", "value": aaguid}],
                event_hub=event_hub,
            )
        )
    return records


def _audit(
    *,
    record_id: str,
    when: datetime,
    activity: str,
    reason: str,
    operation: str,
    service: str,
    person: Person,
    ip: str,
    correlation: str,
    details: list[dict],
    event_hub: bool,
) -> dict:
    user_id = _PROFILES.of(person).user_id
    body = {
        "id": record_id,
        "category": "UserManagement",
        "correlationId": correlation,
        "result": "success",
        "resultReason": reason,
        "activityDisplayName": activity,
        "activityDateTime": _stamp(when, offset=event_hub),
        "loggedByService": service,
        "operationType": operation,
        "initiatedBy": {
            "app": None,
            "user": {
                "id": user_id,
                "displayName": None,
                "userPrincipalName": person.login,
                "ipAddress": ip,
                "userType": None,
                "homeTenantId": None,
                "homeTenantName": None,
            },
        },
        "targetResources": [
            {
                "id": user_id,
                "displayName": person.display_name,
                "type": "User",
                "userPrincipalName": person.login,
                "groupType": None,
                "modifiedProperties": [],
            }
        ],
        "additionalDetails": details,
    }
    if not event_hub:
        return body
    return {
        "time": _stamp(when),
        "resourceId": _RESOURCE_ID,
        "operationName": activity,
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": TENANT_ID,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": correlation,
        "identity": person.display_name,
        "Level": 4,
        "properties": body,
    }


def _stamp(moment: datetime, offset: bool = False) -> str:
    """Entra's 7-digit fractions; Event Hub `properties` times carry `+00:00`."""
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    # isoformat is C code; "2024-01-01T00:00:00.000000+00:00" -> 7 digits and Z / +00:00
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds")
    return f"{text}0+00:00" if offset else f"{text}0Z"


def _as_guid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def _guid(seed: str, purpose: str) -> str:
    """A stable version-4-looking GUID derived from a seed (string work, no uuid objects)."""
    h = hashlib.blake2b(f"{purpose}:{seed}".encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


_APP_ID_CACHE: dict[str, str] = {}


def _app_id(app: str) -> str:
    app_id = _APP_ID_CACHE.get(app)
    if app_id is None:
        if len(_APP_ID_CACHE) >= 4096:
            _APP_ID_CACHE.clear()
        app_id = _APP_ID_CACHE[app] = _APP_IDS.get(app) or _guid(app, "app")
    return app_id


# Timestamps from integer Unix seconds and cached pieces: datetime arithmetic and isoformat
# cost more than the rest of a record.
_DIGITS = "0123456789"
_D2 = tuple(a + b for a in _DIGITS for b in _DIGITS)  # "00".."99"
_SS = _D2[:60]
_D3 = tuple(a + b for a in _DIGITS for b in _D2)  # "000".."999"


def _seconds_text(seconds: int) -> str:
    """The "YYYY-MM-DDTHH:MM:SS" of a Unix time in whole seconds (UTC)."""
    minutes, second = divmod(seconds, 60)
    return _minute_text(minutes) + _SS[second]


_INTERACTIVE_USER = ["interactiveUser"]  # shared by every Graph record: never mutated
_blake2b = hashlib.blake2b
_b2a = binascii.b2a_base64
_URLSAFE = bytes.maketrans(b"+/", b"-_")
