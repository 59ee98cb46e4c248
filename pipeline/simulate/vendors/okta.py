"""Okta emitter: what an Okta Identity Engine org's System Log holds for a simulated intent.

The mirror image of `pipeline.sources.okta` (see docs/sources/okta.md). One sign-in becomes,
in time order, the LogEvents an Identity Engine org writes for it:

1. `policy.evaluate_sign_on` (CHALLENGE) — the global session policy asks for authenticators;
2. per factor, `user.authentication.auth_via_mfa` — which the Event Types catalog documents as
   logged for both the primary and the secondary factor in Identity Engine — with the
   AuthenticatorEnrollment target (`methodTypeUsed`, `methodUsedVerifiedProperties`) and
   `debugData.factor`; an Okta Verify push is preceded by `system.push.send_factor_verify_push`;
   an IdP sign-in is `user.authentication.auth_via_IDP` instead;
3. `user.session.start` (SUCCESS, or FAILURE with the reason) and, after a success,
   `user.authentication.sso` to the app.

Every record of one sign-in carries the same `authenticationContext.externalSessionId`
(`idx…`, the Identity Engine transaction/session id) and `debugData.authnRequestId`, which is
what the streaming job folds the steps on. Plain dict building only: this runs millions of times.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zlib import crc32

from pipeline.model import Method
from pipeline.simulate.intents import EnrollmentIntent, Person, SignInIntent
from pipeline.simulate.vendors._profiles import Profiles, shape_of
from pipeline.simulate.vendors._timetext import MINUTES as _MINUTES
from pipeline.simulate.vendors._timetext import minute_text as _minute_text

SUPPORTED_METHODS: frozenset[Method] = frozenset(
    {
        Method.PASSWORD,
        Method.PUSH,  # Okta Verify push
        Method.OTP,  # Okta Verify code (TOTP)
        Method.SMS,  # Phone authenticator
        Method.VOICE,  # Phone authenticator
        Method.EMAIL,
        Method.MOBILE_AUTHENTICATOR,  # Okta FastPass
        Method.SECURITY_KEY,  # Passkeys (FIDO2 WebAuthn): roaming key
        Method.PLATFORM_PASSKEY,  # Passkeys (FIDO2 WebAuthn): device-bound platform key
        Method.SYNCED_PASSKEY,  # Passkeys (FIDO2 WebAuthn): synced passkey provider
        Method.WINDOWS_HELLO,  # Passkeys (FIDO2 WebAuthn): Windows Hello
        Method.CERTIFICATE,  # Smart Card authenticator (PIV/CAC)
        Method.FEDERATED,  # an external IdP (SAML) signs the user in
    }
)

_DEVICE_BOUND = (
    "[DEVICE_BOUND, USER_VERIFYING, PHISHING_RESISTANT, HARDWARE_PROTECTED, USER_PRESENCE]"
)
_SYNCED = "[USER_VERIFYING, PHISHING_RESISTANT, USER_PRESENCE]"
_PRESENCE = "[USER_PRESENCE]"

# method -> (authenticator display names, methodTypeUsed, debugData.factor, authenticatorKey,
#            methodUsedVerifiedProperties, enrollment id prefix)
_FACTOR: dict[Method, tuple[tuple[str, ...], str, str | None, str, str, str]] = {
    Method.PASSWORD: (
        ("Password",),
        "Password",
        "PASSWORD_AS_FACTOR",
        "okta_password",
        _PRESENCE,
        "lae",
    ),
    Method.PUSH: (
        ("Okta Verify",),
        "Get a push notification",
        "OKTA_VERIFY_PUSH",
        "okta_verify",
        _PRESENCE,
        "opf",
    ),
    Method.OTP: (("Okta Verify",), "totp", "OKTA_SOFT_TOKEN", "okta_verify", _PRESENCE, "ost"),
    Method.SMS: (("Phone",), "sms", "sms", "phone_number", _PRESENCE, "sms"),
    Method.VOICE: (("Phone",), "voice", "call", "phone_number", _PRESENCE, "clf"),
    Method.EMAIL: (("Email",), "email", "email", "okta_email", _PRESENCE, "eae"),
    Method.MOBILE_AUTHENTICATOR: (
        ("Okta Verify",),
        "Use Okta FastPass",
        "SIGNED_NONCE",
        "okta_verify",
        "[DEVICE_BOUND, PHISHING_RESISTANT, HARDWARE_PROTECTED, USER_VERIFYING]",
        "pfd",
    ),
    # WebAuthn: the authenticator model name Okta resolves from the AAGUID (FIDO MDS names).
    Method.SECURITY_KEY: (
        ("YubiKey 5 Series with NFC", "YubiKey 5C NFC", "Feitian BioPass FIDO2 Plus"),
        "webauthn",
        "FIDO_WEBAUTHN",
        "webauthn",
        _DEVICE_BOUND,
        "fwf",
    ),
    Method.PLATFORM_PASSKEY: (
        ("Chrome on Mac", "Edge on Mac"),
        "webauthn",
        "FIDO_WEBAUTHN",
        "webauthn",
        _DEVICE_BOUND,
        "fwf",
    ),
    Method.SYNCED_PASSKEY: (
        ("iCloud Keychain", "Google Password Manager"),
        "webauthn",
        "FIDO_WEBAUTHN",
        "webauthn",
        _SYNCED,
        "fwf",
    ),
    Method.WINDOWS_HELLO: (
        ("Windows Hello",),
        "webauthn",
        "FIDO_WEBAUTHN",
        "webauthn",
        _DEVICE_BOUND,
        "fwf",
    ),
    Method.CERTIFICATE: (
        ("Smart Card Authenticator",),
        "cert",
        None,  # no debugData.factor documented for the Smart Card authenticator
        "smart_card_idp",
        _DEVICE_BOUND,
        "0oa",
    ),
}
_METHOD_INDEX = {method: index for index, method in enumerate(Method)}

_UA_WINDOWS_CHROME = (
    "CHROME",
    "Windows 10",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
)
_UA_WINDOWS_EDGE = (
    "EDGE",
    "Windows 10",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
)
_UA_MAC_CHROME = (
    "CHROME",
    "Mac OS X",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
)
_UA_MAC_SAFARI = (
    "SAFARI",
    "Mac OS X",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
)
_BROWSERS = (_UA_WINDOWS_CHROME, _UA_WINDOWS_EDGE, _UA_MAC_CHROME, _UA_MAC_SAFARI)
_UA_OKTA_VERIFY_MAC = (
    "UNKNOWN",
    "Mac OS X",
    "B7F62B65BN.com.okta.mobile/9.20.1 OktaDeviceSDK/1.9.2 macOS/14.4.1 Apple/MacBookPro18,3",
)
_UA_OKTA_VERIFY_WIN = (
    "UNKNOWN",
    "Windows",
    "OktaVerify/4.9.2.0 WPFDeviceSDK/1.9.1.38 Windows/10.0.22631.3447 LENOVO/20XW0055US",
)

# ISO country -> (System Log country name, city, state, postal code, lat, lon, AS number, AS org)
_PLACES: dict[str, tuple[str, str, str, str, float, float, int, str]] = {
    "US": ("United States", "Chicago", "Illinois", "60601", 41.8853, -87.6216, 7922, "comcast"),
    "GB": (
        "United Kingdom",
        "London",
        "England",
        "EC1A",
        51.5164,
        -0.093,
        2856,
        "british telecommunications plc",
    ),
    "DE": (
        "Germany",
        "Berlin",
        "Land Berlin",
        "10115",
        52.5323,
        13.3846,
        3320,
        "deutsche telekom ag",
    ),
    "FR": ("France", "Paris", "Ile-de-France", "75001", 48.8607, 2.3421, 3215, "orange s.a."),
    "IN": (
        "India",
        "Bengaluru",
        "Karnataka",
        "560001",
        12.9753,
        77.591,
        24560,
        "bharti airtel ltd.",
    ),
    "BR": (
        "Brazil",
        "Sao Paulo",
        "Sao Paulo",
        "01000-000",
        -23.5475,
        -46.6361,
        28573,
        "claro nxt telecomunicacoes ltda",
    ),
    "JP": ("Japan", "Tokyo", "Tokyo", "100-0001", 35.6895, 139.6917, 2516, "kddi corporation"),
    "SG": (
        "Singapore",
        "Singapore",
        "Singapore",
        "018989",
        1.2897,
        103.8501,
        9506,
        "singtel fibre broadband",
    ),
    "CN": (
        "China",
        "Shanghai",
        "Shanghai",
        "200000",
        31.2222,
        121.4581,
        4812,
        "china telecom (group)",
    ),
    "AE": (
        "United Arab Emirates",
        "Dubai",
        "Dubai",
        "00000",
        25.0772,
        55.3093,
        5384,
        "emirates telecommunications corporation",
    ),
}
_BEHAVIORS = (
    "{New Geo-Location=NEGATIVE, New Device=NEGATIVE, New IP=NEGATIVE, New State=NEGATIVE, "
    "New Country=NEGATIVE, Velocity=NEGATIVE, New City=NEGATIVE}"
)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_GREGORIAN = 0x01B21DD213814000  # 100-ns ticks from 1582-10-15 (UUID v1 epoch) to 1970-01-01


# --------------------------------------------------------------------------------------------
# Sign-in
# --------------------------------------------------------------------------------------------

# Share (of 256) of sign-ins that started at an app and so end with its SSO record.
_SSO_SHARE = 77


def emit_signin(intent: SignInIntent, rng: random.Random) -> list[dict]:
    """The System Log records of one sign-in, in time order.

    Hot path (millions of calls). Everything that depends only on the person, the factors
    and the outcome is computed once (`_Profile`, `_shape`) and shared between records: the
    actor, client, security context, targets and the constant fields of each record kind.
    Shared objects are never mutated. Per record only its ids, times and debug data are new.
    """
    if not intent.interactive:
        raise ValueError("Okta does not log token refreshes as sign-ins")
    person = intent.person
    profile = _PROFILES.of(person)
    factors = intent.factors
    success = intent.success
    shape = shape_of(profile, factors, success, _shape)
    specs, browser, dt_hash, enrolled, needs, session_template = shape
    ip = intent.ip
    client, request, _ = profile.who.get((ip, browser[2])) or _who(profile, ip, browser, False)
    if needs & _NEEDS_FASTPASS:
        fastpass_client, fastpass_request, device = profile.who.get((ip, browser[1])) or _who(
            profile, ip, browser, True
        )
    actor = profile.actor
    security = profile.security

    # Ids, all from the intent uid: the session, the request ids (27 url-safe base64
    # characters of uid + sequence number: a fixed prefix and a per-number suffix) and the
    # node and clock sequence of the v1 uuids.
    uid = bytes.fromhex(intent.uid)
    encoded = _b2a(uid + b"\0\0").translate(_URLSAFE).decode()
    request_prefix = encoded[:24]
    session = "idx" + encoded[:22]
    authn = request_prefix + _SEQUENCE[0]
    node = f"-{uid[0] | 0x01:02x}{uid[1:6].hex()}"  # multicast bit set (RFC 4122)
    clock = uid[6] << 8 | uid[7]
    auths = [None, None, None]
    plain = auths[_AUTH_PLAIN] = _AUTH_TEMPLATES[_AUTH_PLAIN].copy()
    plain["externalSessionId"] = session
    if needs & _NEEDS_FACTOR:
        auth = auths[_AUTH_FACTOR] = _AUTH_TEMPLATES[_AUTH_FACTOR].copy()
        auth["externalSessionId"] = session
    if needs & _NEEDS_IDP:
        auth = auths[_AUTH_IDP] = _AUTH_TEMPLATES[_AUTH_IDP].copy()
        auth["externalSessionId"] = session

    # user.session.start lists the authenticators and the app; when the sign-in started at an
    # app (not the Okta dashboard), the SSO to that app follows.
    app = intent.app
    app_record, sso_debug = _APPS.get(app) or _app_entry(app)
    session_target = [*enrolled, app_record]
    start = (session_template, profile.session_debug, _AUTH_PLAIN, session_target, 50, 351, False)
    specs += (start,)
    if success and uid[8] < _SSO_SHARE:
        app_user = {
            "alternateId": person.login,
            "detailEntry": None,
            "displayName": person.display_name,
            "id": profile.app_user_ids.get(app) or _app_user_id(profile, app),
            "type": "AppUser",
        }
        specs += ((_SSO_RECORD, sso_debug, _AUTH_PLAIN, [app_record, app_user], 300, 901, False),)

    # Times: Okta publishes milliseconds; round up so no record predates the intent. Each
    # record is `offset` ms after that: its time text and v1 uuid time fields come from the
    # intent's (minute, ms in the minute, 100-ns ticks) plus the offset, in small-int math.
    when = intent.time
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)  # a naive time is local time, as astimezone reads it
    start_minute = ((when.toordinal() - 719_163) * 24 + when.hour) * 60 + when.minute
    start_ms = when.second * 1000 + (when.microsecond + 999) // 1000  # up to 60000
    prefix = _MINUTES.get(start_minute) or _minute_text(start_minute)  # "YYYY-MM-DDTHH:MM:"
    ticks = (start_minute * 60_000 + start_ms) * 10_000 + _GREGORIAN
    time_low = ticks & 0xFFFFFFFF
    time_high = ticks >> 32
    time_mid = _time_mid(time_high)
    offset = 0
    records = []
    for seq, (template, debug_template, auth_kind, target, low, span, fastpass) in enumerate(
        specs, 1
    ):
        if low:
            offset += low + int(rng.random() * span)  # uniform whole ms in [low, low + span)
        request_id = request_prefix + _SEQUENCE[seq]
        debug = debug_template.copy()
        debug["authnRequestId"] = authn
        debug["dtHash"] = dt_hash
        debug["requestId"] = request_id
        in_minute = start_ms + offset
        if in_minute < 60_000:
            head = prefix
        else:
            later, in_minute = divmod(in_minute, 60_000)
            head = _minute_text(start_minute + later)
        second, milli = divmod(in_minute, 1000)
        low_ticks = time_low + offset * 10_000
        sequence = (clock + seq) & 0x3FFF  # clock_seq: 14 bits, then the RFC 4122 variant
        clock_node = _CLOCK_HIGH[sequence >> 8] + _HEX2[sequence & 0xFF] + node
        if low_ticks <= 0xFFFFFFFF:
            uuid = f"{low_ticks:08x}{time_mid}{clock_node}"
        else:  # time_low wrapped around: carry into time_mid
            mid = _time_mid(time_high + (low_ticks >> 32))
            uuid = f"{low_ticks & 0xFFFFFFFF:08x}{mid}{clock_node}"
        record = template.copy()
        record["actor"] = actor
        record["authenticationContext"] = auths[auth_kind]
        if fastpass:
            # FastPass is answered by the Okta Verify app on the registered device.
            record["client"] = fastpass_client
            record["device"] = device
            record["request"] = fastpass_request
        else:
            record["client"] = client
            record["request"] = request
        record["debugContext"] = {"debugData": debug}
        record["published"] = head + _SS_DOT[second] + _MS_Z[milli]
        record["securityContext"] = security
        record["target"] = target
        record["transaction"] = {"detail": _NO_DETAIL, "id": request_id, "type": "WEB"}
        record["uuid"] = uuid
        records.append(record)
    return records


def _time_mid(high: int) -> str:
    """The "-mmmm-1hhh-" of a v1 uuid (time_mid, time_hi_and_version) from ticks >> 32."""
    return f"-{high & 0xFFFF:04x}-{high >> 16 & 0x0FFF | 0x1000:04x}-"


_HEX2 = tuple(f"{n:02x}" for n in range(256))
_CLOCK_HIGH = _HEX2[0x80:0xC0]  # clock_seq_hi_and_reserved: the RFC 4122 variant bits "10"


# Which authenticationContext a record carries.
_AUTH_PLAIN, _AUTH_FACTOR, _AUTH_IDP = 0, 1, 2
_AUTH_TEMPLATES: tuple[dict, dict, dict] = (
    {
        "authenticationProvider": None,
        "authenticationStep": 0,
        "credentialProvider": None,
        "credentialType": None,
        "externalSessionId": None,
        "interface": None,
        "issuer": None,
    },
    {
        "authenticationProvider": "FACTOR_PROVIDER",
        "authenticationStep": 0,
        "credentialProvider": "OKTA_CREDENTIAL_PROVIDER",
        "credentialType": None,
        "externalSessionId": None,
        "interface": None,
        "issuer": None,
    },
    {
        "authenticationProvider": "FEDERATION",
        "authenticationStep": 0,
        "credentialProvider": None,
        "credentialType": "ASSERTION",
        "externalSessionId": None,
        "interface": None,
        "issuer": {
            "id": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "type": "SAML 2.0",
        },
    },
)
_NEEDS_FACTOR, _NEEDS_IDP, _NEEDS_FASTPASS = 1, 2, 4
_NO_DETAIL: dict = {}  # transaction.detail; shared, never mutated
_FASTPASS_URI = "/idp/authenticators/autu612snoYSzoCvu357/transactions/verify"


def _kind(
    event_type: str,
    display: str,
    result: str,
    reason: str | None,
    legacy: str | None,
    severity: str | None = None,
) -> dict:
    """A record's constant fields, the others None: copied, then filled, per record."""
    return {
        "actor": None,
        "authenticationContext": None,
        "client": None,
        "debugContext": None,
        "device": None,
        "displayMessage": display,
        "eventType": event_type,
        "legacyEventType": legacy,
        "outcome": {"reason": reason, "result": result},
        "published": None,
        "request": None,
        "securityContext": None,
        "severity": severity or ("INFO" if result in ("SUCCESS", "ALLOW") else "WARN"),
        "target": None,
        "transaction": None,
        "uuid": None,
        "version": "0",
    }


def _debug(uri: str, **extra: str) -> dict:
    """debugData without its per-record values (authnRequestId, dtHash, requestId)."""
    return {
        "authnRequestId": None,
        "behaviors": _BEHAVIORS,
        "dtHash": None,
        "requestId": None,
        "requestUri": uri,
        "risk": "{level=LOW}",
        "threatSuspected": "false",
        "url": uri + "?",
        **extra,
    }


_POLICY = _kind(
    "policy.evaluate_sign_on",
    "Evaluation of sign-on policy",
    "CHALLENGE",
    "Sign-on policy evaluation resulted in CHALLENGE",
    None,
    "INFO",
)
_POLICY_DEBUG = _debug("/idp/idx/identify", promptingPolicyTypes="[OKTA_SIGN_ON]")
_POLICY_TARGET = [
    {
        "alternateId": "unknown",
        "detailEntry": {"policyType": "OktaSignOn"},
        "displayName": "Default Policy",
        "id": "00p1abvweGGDW10Ur4x6",
        "type": "PolicyEntity",
    },
    {
        "alternateId": "00p1abvweGGDW10Ur4x6",
        "detailEntry": None,
        "displayName": "Default Rule",
        "id": "0pr1abvwfqGFI4n064x6",
        "type": "PolicyRule",
    },
]
_PUSH_SENT = _kind(
    "system.push.send_factor_verify_push",
    "Push notification sent for factor verification",
    "SUCCESS",
    None,
    None,
)
_PUSH_SENT_DEBUG = _debug("/idp/idx/challenge")
_VIA_IDP = {
    ok: _kind(
        "user.authentication.auth_via_IDP",
        "Authenticate user via IDP",
        "SUCCESS" if ok else "FAILURE",
        None if ok else "VERIFICATION_ERROR",
        "core.user_auth.idp.saml.login_success" if ok else "core.user_auth.idp.saml.login_failed",
    )
    for ok in (True, False)
}
_VIA_IDP_DEBUG = _debug("/sso/saml2/0oa8f2kxn3IuX5mAz4x7")
_VIA_IDP_TARGET = [
    {
        "alternateId": "unknown",
        "detailEntry": None,
        "displayName": "Corporate SAML IdP",
        "id": "0oa8f2kxn3IuX5mAz4x7",
        "type": "IdentityProvider",
    }
]
_FACTOR_RECORD = {
    ok: _kind(
        "user.authentication.auth_via_mfa",
        "Authentication of user via MFA",
        "SUCCESS" if ok else "FAILURE",
        None if ok else "INVALID_CREDENTIALS",
        "core.user.factor.attempt_success" if ok else "core.user.factor.attempt_fail",
    )
    for ok in (True, False)
}
_SESSION = {
    reason: _kind(
        "user.session.start",
        "User login to Okta",
        "SUCCESS" if reason is None else "FAILURE",
        reason,
        "core.user_auth.login_success" if reason is None else "core.user_auth.login_failed",
    )
    for reason in (None, "INVALID_CREDENTIALS", "VERIFICATION_ERROR")
}
_SESSION_DEBUG = _debug("/idp/idx/identify", deviceFingerprint="")
_SSO_RECORD = _kind(
    "user.authentication.sso", "User single sign on to app", "SUCCESS", None, "app.auth.sso"
)


@lru_cache(maxsize=256)
def _factor_debug(method: Method, ok: bool) -> dict:
    factor = _FACTOR[method][2]
    extra: dict[str, str] = {"factorIntent": "AUTHENTICATION"}
    if factor is not None:
        extra["factor"] = factor
    uri = "/idp/idx/challenge/answer"
    if method is Method.PUSH:
        uri = "/idp/idx/authenticators/poll"
        extra["pushOnlyResponseType"] = "OV_RESPONSE_APPROVE" if ok else "OV_RESPONSE_DENY"
    elif method is Method.MOBILE_AUTHENTICATOR:
        uri = _FASTPASS_URI
    return _debug(uri, **extra)


class _Profile:
    """Per person, computed once and shared by their records (never mutated)."""

    __slots__ = (
        "actor",
        "app_user_ids",
        "enrollments",
        "person",
        "security",
        "session_debug",
        "shapes",
        "who",
    )

    def __init__(self, person: Person) -> None:
        self.person = person
        self.actor = _actor(person)  # also the User target: the same fields
        self.security = _security(person.country)
        self.session_debug = {**_SESSION_DEBUG, "deviceFingerprint": person.uid[::-1]}
        # method -> (AuthenticatorEnrollment target, the same with the detailEntry)
        self.enrollments: dict[Method, tuple[dict, dict]] = {}
        # (factors, success, shape), see _shape
        self.shapes: list[tuple[tuple[Method, ...], bool, tuple]] = []
        # (ip, user agent or FastPass OS) -> (client, request, device)
        self.who: dict[tuple[str, str], tuple[dict, dict, dict | None]] = {}
        self.app_user_ids: dict[str, str] = {}  # app -> AppUser id

    def enrollment(self, method: Method) -> tuple[dict, dict]:
        pair = self.enrollments.get(method)
        if pair is None:
            names, used, _, key, props, _ = _FACTOR[method]
            name = names[int(self.person.uid[-2:], 16) % len(names)]
            entry = {
                "authenticatorKey": key,
                "methodTypeUsed": used,
                "methodUsedVerifiedProperties": props,
            }
            pair = self.enrollments[method] = (
                _enrollment(self.person, method, name),
                _enrollment(self.person, method, name, entry),
            )
        return pair


# Bounded by the workforce; cleared if a caller ever feeds more people than this.
_PROFILES: Profiles[_Profile] = Profiles(_Profile)


def _shape(profile: _Profile, factors: tuple[Method, ...], success: bool) -> tuple:
    """How a person's sign-in with these factors and this outcome is logged, apart from ids,
    times and the app: (record specs up to the session, browser, dtHash, enrolled targets,
    needs, user.session.start template), each record spec (template, debugData template,
    auth kind, target, delay low, delay span, FastPass)."""
    if not factors:
        raise ValueError("a sign-in needs at least one factor")
    for method in factors:
        if method not in SUPPORTED_METHODS:
            raise ValueError(f"Okta cannot log a {method.value} factor")
    person = profile.person
    browser = _browser(person, factors)
    needs = 0
    specs = [(_POLICY, _POLICY_DEBUG, _AUTH_PLAIN, _POLICY_TARGET, 0, 0, False)]
    failed_at = len(factors) - 1 if not success else -1
    for index, method in enumerate(factors):
        ok = index != failed_at
        if method is Method.PUSH:
            target = [profile.actor, profile.enrollment(Method.PUSH)[0]]
            specs.append((_PUSH_SENT, _PUSH_SENT_DEBUG, _AUTH_PLAIN, target, 300, 1201, False))
            low, span = 2000, 7001
        else:
            low, span = 800, 3201
        if method is Method.FEDERATED:
            needs |= _NEEDS_IDP
            spec = (_VIA_IDP[ok], _VIA_IDP_DEBUG, _AUTH_IDP, _VIA_IDP_TARGET, low, span, False)
        else:
            needs |= _NEEDS_FACTOR
            fastpass = method is Method.MOBILE_AUTHENTICATOR
            if fastpass:
                needs |= _NEEDS_FASTPASS
            target = [profile.actor, profile.enrollment(method)[1]]
            debug = _factor_debug(method, ok)
            spec = (_FACTOR_RECORD[ok], debug, _AUTH_FACTOR, target, low, span, fastpass)
        specs.append(spec)
        if not ok:
            break
    reason = None
    if not success:
        reason = "INVALID_CREDENTIALS" if failed_at == 0 else "VERIFICATION_ERROR"
    enrolled = tuple(
        profile.enrollment(method)[0] for method in factors if method is not Method.FEDERATED
    )
    count = len(specs) + 2  # + user.session.start and user.authentication.sso
    if count >= len(_SEQUENCE):
        if count >= 1 << 16:
            raise ValueError("too many factors for one sign-in")
        _SEQUENCE.extend(
            base64.urlsafe_b64encode(n.to_bytes(2, "big")).decode()[:3]
            for n in range(len(_SEQUENCE), count + 1)
        )
    dt_hash = _dt_hash(person.uid, browser[2])
    shape = (tuple(specs), browser, dt_hash, enrolled, needs, _SESSION[reason])
    return shape


def _who(
    profile: _Profile, ip: str, browser: tuple[str, str, str], fastpass: bool
) -> tuple[dict, dict, dict | None]:
    """The client, request and device of a person's records from this IP in this browser;
    FastPass answers come from the Okta Verify app on the registered device."""
    person = profile.person
    if len(profile.who) >= 4:  # the office network; a traveller's hotel IPs rarely repeat
        profile.who.clear()
    ua = _okta_verify_ua(browser) if fastpass else browser
    client = _client(ip, person.country, ua)
    device = _device(person, browser) if fastpass else None
    who = (client, {"ipChain": [_ip_chain(client)]}, device)
    profile.who[(ip, browser[1] if fastpass else browser[2])] = who
    return who


_APPS: dict[str, tuple[dict, dict]] = {}  # app -> (AppInstance target, sso debugData)


def _app_entry(app: str) -> tuple[dict, dict]:
    if len(_APPS) >= 4096:
        _APPS.clear()
    app_record = _app(app)
    debug = _debug(
        f"/app/{_slug(app)}/{app_record['id']}/sso/saml",
        signOnMode="SAML 2.0",
        initiationType="SP_INITIATED",
    )
    entry = _APPS[app] = (app_record, debug)
    return entry


def _app_user_id(profile: _Profile, app: str) -> str:
    """The id of the person's AppUser in the app."""
    if len(profile.app_user_ids) >= 256:
        profile.app_user_ids.clear()
    app_user_id = _okta_id("0ua", profile.person.uid, crc32(app.encode()))
    profile.app_user_ids[app] = app_user_id
    return app_user_id


# Timestamps from integer Unix milliseconds and cached pieces: datetime arithmetic and
# isoformat cost more than the rest of a record.
_DIGITS = "0123456789"
_D2 = tuple(a + b for a in _DIGITS for b in _DIGITS)  # "00".."99"
_SS_DOT = tuple(s + "." for s in _D2[:60])
_MS_Z = tuple(a + b + "Z" for a in _DIGITS for b in _D2)  # "000Z".."999Z"


_b2a = binascii.b2a_base64
_URLSAFE = bytes.maketrans(b"+/", b"-_")
# Request id characters 25-27: the base64 of the sequence number's two low bytes (a sign-in
# has a handful of records; `_shape` extends the table for longer ones).
_SEQUENCE = [base64.urlsafe_b64encode(n.to_bytes(2, "big")).decode()[:3] for n in range(256)]


# --------------------------------------------------------------------------------------------
# Enrollment
# --------------------------------------------------------------------------------------------


def emit_enrollment(intent: EnrollmentIntent, rng: random.Random) -> list[dict]:
    """`user.mfa.factor.activate` (registered) or `user.mfa.factor.deactivate` (removed)."""
    method = intent.method
    if method not in _FACTOR:
        raise ValueError(f"Okta has no per-user enrollment of a {method.value} factor")
    person = intent.person
    uid = bytes.fromhex(intent.uid)
    names, _, factor, _, _, _ = _FACTOR[method]
    name = names[int(person.uid[-2:], 16) % len(names)]
    browser = _browser(person, (method,))
    registered = intent.action == "registered"
    when = _ceil_ms(intent.time)
    request_id = _request_id(uid, 1)
    device = _device(person, browser) if method is Method.MOBILE_AUTHENTICATOR else None
    ua = _okta_verify_ua(browser) if device is not None else browser
    client = _client(_enrollment_ip(person), person.country, ua)
    debug = {"dtHash": _dt_hash(person.uid, browser[2])}
    if factor is not None:
        debug["factor"] = factor
    uri = "/idp/idx/challenge/answer" if registered else "/idp/myaccount/authenticators"
    debug.update({"requestId": request_id, "requestUri": uri, "url": uri + "?"})
    record = {
        "actor": _actor(person),
        "authenticationContext": {
            "authenticationProvider": None,
            "authenticationStep": 0,
            "credentialProvider": None,
            "credentialType": None,
            "externalSessionId": _session_id(uid),
            "interface": None,
            "issuer": None,
        },
        "client": client,
        "debugContext": {"debugData": debug},
        "device": device,
        "displayMessage": (
            "Activate factor or authenticator enrollment method for user"
            if registered
            else "Reset factor for user"
        ),
        "eventType": "user.mfa.factor.activate" if registered else "user.mfa.factor.deactivate",
        "legacyEventType": "core.user.factor.activate"
        if registered
        else "core.user.factor.deactivate",
        "outcome": {"reason": None, "result": "SUCCESS"},
        "published": _timestamp(when),
        "request": {"ipChain": [_ip_chain(client)]},
        "securityContext": _security(person.country),
        "severity": "INFO",
        "target": [_user_target(person), _enrollment(person, method, name)],
        "transaction": {"detail": {}, "id": request_id, "type": "WEB"},
        "uuid": _uuid1(when, uid, 1),
        "version": "0",
    }
    return [record]


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _actor(person: Person) -> dict:
    return {
        "alternateId": person.login,
        "detailEntry": None,
        "displayName": person.display_name,
        "id": _user_id(person.uid),
        "type": "User",
    }


def _user_target(person: Person) -> dict:
    return {
        "alternateId": person.login,
        "detailEntry": None,
        "displayName": person.display_name,
        "id": _user_id(person.uid),
        "type": "User",
    }


def _enrollment(
    person: Person, method: Method, name: str | None, entry: dict | None = None
) -> dict:
    names, _, _, _, _, prefix = _FACTOR[method]
    if name is None:
        name = names[int(person.uid[-2:], 16) % len(names)]
    return {
        "alternateId": "unknown",
        "detailEntry": entry,
        "displayName": name,
        "id": _okta_id(prefix, person.uid, _METHOD_INDEX[method]),
        "type": "AuthenticatorEnrollment",
    }


@lru_cache(maxsize=4096)
def _app(name: str) -> dict:
    # Shared between records: never mutated after creation.
    return {
        "alternateId": name,
        "detailEntry": {"signOnModeType": "SAML_2_0"},
        "displayName": name,
        "id": _okta_id("0oa", format(crc32(name.encode()), "08x") * 4, 0),
        "type": "AppInstance",
    }


def _browser(person: Person, factors: tuple[Method, ...]) -> tuple[str, str, str]:
    """The browser the sign-in ran in: fixed per person, unless the factor needs a platform."""
    if Method.WINDOWS_HELLO in factors:
        return _UA_WINDOWS_EDGE
    if Method.PLATFORM_PASSKEY in factors:
        return _UA_MAC_CHROME
    if Method.SYNCED_PASSKEY in factors:
        names = _FACTOR[Method.SYNCED_PASSKEY][0]
        icloud = names[int(person.uid[-2:], 16) % len(names)] == "iCloud Keychain"
        return _UA_MAC_SAFARI if icloud else _UA_WINDOWS_CHROME
    return _BROWSERS[int(person.uid[:2], 16) % len(_BROWSERS)]


def _okta_verify_ua(browser: tuple[str, str, str]) -> tuple[str, str, str]:
    return _UA_OKTA_VERIFY_MAC if browser[1] == "Mac OS X" else _UA_OKTA_VERIFY_WIN


def _device(person: Person, browser: tuple[str, str, str]) -> dict:
    mac = browser[1] == "Mac OS X"
    return {
        "device_integrator": None,
        "disk_encryption_type": "ALL_INTERNAL_VOLUMES" if mac else "FULL",
        "id": _okta_id("guo", person.uid, 7),
        "jailbreak": None,
        "managed": True,
        "name": "MacBookPro18,3" if mac else "LENOVO 20XW0055US",
        "os_platform": "OSX" if mac else "WINDOWS",
        "os_version": "14.4.1" if mac else "10.0.22631.3447",
        "registered": True,
        "screen_lock_type": "BIOMETRIC",
        "secure_hardware_present": True,
    }


def _client(ip: str, country: str, ua: tuple[str, str, str]) -> dict:
    return {
        "device": "Computer",
        "geographicalContext": _geo(country),
        "id": None,
        "ipAddress": ip,
        "userAgent": _user_agent(ua),
        "zone": "null",
    }


@lru_cache(maxsize=64)
def _user_agent(ua: tuple[str, str, str]) -> dict:
    # Shared between records: never mutated after creation.
    return {"browser": ua[0], "os": ua[1], "rawUserAgent": ua[2]}


def _ip_chain(client: dict) -> dict:
    return {
        "geographicalContext": client["geographicalContext"],
        "ip": client["ipAddress"],
        "source": None,
        "version": "V6" if ":" in client["ipAddress"] else "V4",
    }


@lru_cache(maxsize=256)
def _geo(country: str) -> dict:
    # Shared between records: never mutated after creation.
    place = _PLACES.get(country)
    if place is None:
        return {
            "city": None,
            "country": None,
            "geolocation": None,
            "postalCode": None,
            "state": None,
        }
    name, city, state, postal, lat, lon, _, _ = place
    return {
        "city": city,
        "country": name,
        "geolocation": {"lat": lat, "lon": lon},
        "postalCode": postal,
        "state": state,
    }


@lru_cache(maxsize=256)
def _security(country: str) -> dict:
    # Shared between records: never mutated after creation.
    place = _PLACES.get(country)
    if place is None:
        return {"asNumber": None, "asOrg": None, "domain": None, "isProxy": False, "isp": None}
    return {
        "asNumber": place[6],
        "asOrg": place[7],
        "domain": None,
        "isProxy": False,
        "isp": place[7],
    }


def _enrollment_ip(person: Person) -> str:
    # Enrollment happens from the office network: a stable address per person.
    seed = int(person.uid[:8], 16)
    return f"198.51.{(seed >> 8) % 256}.{seed % 254 + 1}"


def _timestamp(when: datetime) -> str:
    # isoformat is C code; strftime is ten times slower. `when` is UTC: drop "+00:00".
    return when.isoformat(timespec="milliseconds")[:-6] + "Z"


def _ceil_ms(when: datetime) -> datetime:
    """Okta publishes millisecond timestamps; round up so no record predates the intent."""
    when = when.astimezone(UTC)
    extra = when.microsecond % 1000
    return when + timedelta(microseconds=1000 - extra) if extra else when


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _session_id(uid: bytes) -> str:
    # Identity Engine externalSessionId: "idx" + 22 url-safe base64 characters.
    return "idx" + _b64(uid)[:22]


def _request_id(uid: bytes, seq: int) -> str:
    # Okta request / transaction ids: 27 url-safe base64 characters.
    return _b64(uid + seq.to_bytes(4, "big"))[:27]


def _uuid1(when: datetime, uid: bytes, seq: int) -> str:
    """A time-based (v1) UUID, as Okta's LogEvent uuids are; node and clock sequence come from
    the intent uid so every record is unique and reproducible."""
    ticks = round(when.timestamp() * 1000) * 10_000 + _GREGORIAN
    clock = (uid[6] << 8 | uid[7]) + seq & 0x3FFF | 0x8000
    high = ticks >> 48 & 0x0FFF | 0x1000
    return (
        f"{ticks & 0xFFFFFFFF:08x}-{ticks >> 32 & 0xFFFF:04x}-{high:04x}-{clock:04x}-"
        f"{uid[0] | 0x01:02x}{uid[1:6].hex()}"  # node: intent uid, multicast bit set (RFC 4122)
    )


@lru_cache(maxsize=65536)
def _okta_id(prefix: str, hex_id: str, salt: int) -> str:
    """A 20-character Okta object id (`00u…`, `pfd…`): prefix + 17 base62 characters."""
    value = int.from_bytes(hashlib.blake2b(f"{hex_id}:{salt}".encode(), digest_size=13).digest())
    chars = []
    for _ in range(17):
        value, digit = divmod(value, 62)
        chars.append(_BASE62[digit])
    return prefix + "".join(chars)


def _user_id(hex_id: str) -> str:
    return _okta_id("00u", hex_id, 0)


@lru_cache(maxsize=65536)
def _dt_hash(person_uid: str, user_agent: str) -> str:
    return hashlib.sha256(f"{person_uid}|{user_agent}".encode()).hexdigest()


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower())
