"""Cisco Duo emitter: simulator intents written down as Duo Admin API log records, exactly the
shapes `pipeline.sources.duo` reads.

- A sign-in is one authentication log v2 item (`response.authlogs[]`): Duo logs one factor per
  authentication, under one `txid`.
- An enrollment is one activity log record (`/admin/v2/logs/activity`) of the end user's own
  self-service change: `webauthncredential_create` / `_delete` for WebAuthn authenticators,
  `phone_create` / `phone_delete` for a phone (Duo Mobile push, SMS, voice).

What Duo cannot write down, and so raises `ValueError` for:
- the password: Duo is the second factor after a password the application or the primary IdP
  checks, and its record names only the Duo factor. A password followed by one Duo factor that
  is not passwordless-capable (push, OTP, SMS, voice) is written as that factor alone (it reads
  as not passwordless, like the intent); a password alone never reaches Duo; a password followed
  by a WebAuthn factor would read as passwordless, which the intent is not.
- Duo Mobile as a passwordless primary factor: no documented field or `factor` value of the v2
  log marks it (docs/sources/duo.md), so it cannot be written in a form the parser can tell.
- certificates, e-mail and federation: not Duo factors. OTP enrollment: Duo Mobile passcodes
  come with a phone, hardware tokens are inventory not tied to a user in the record.
- non-interactive sign-ins (only Entra logs those), and more than one Duo factor per sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from datetime import UTC
from functools import lru_cache
from typing import Any

from pipeline.model import Method
from pipeline.simulate.intents import EnrollmentIntent, SignInIntent
from pipeline.simulate.truth import PASSWORDLESS_FACTORS

# Factors a Duo authentication record can name (see FACTORS in pipeline.sources.duo).
SUPPORTED_METHODS: frozenset[Method] = frozenset(
    {
        Method.PUSH,
        Method.OTP,
        Method.SMS,
        Method.VOICE,
        Method.SECURITY_KEY,
        Method.PLATFORM_PASSKEY,
        Method.WINDOWS_HELLO,
        Method.SYNCED_PASSKEY,
    }
)
# Checked in front of Duo by the application or the primary IdP: accepted first in an intent,
# never written (Duo's record does not show it).
UPSTREAM_METHODS: frozenset[Method] = frozenset({Method.PASSWORD})
SIGNIN_METHODS: frozenset[Method] = SUPPORTED_METHODS | UPSTREAM_METHODS
# What an activity log record can register or remove for a user.
ENROLLABLE_METHODS: frozenset[Method] = SUPPORTED_METHODS - {Method.OTP}

_WEBAUTHN: frozenset[Method] = frozenset(
    {Method.SECURITY_KEY, Method.PLATFORM_PASSKEY, Method.WINDOWS_HELLO, Method.SYNCED_PASSKEY}
)
_PHONES: frozenset[Method] = frozenset({Method.PUSH, Method.SMS, Method.VOICE})

# Duo's GeoIP location names the country in full ([ADMINAPI] auth log sample).
_PLACES: dict[str, tuple[str, str, str]] = {
    "US": ("United States", "Ann Arbor", "Michigan"),
    "CA": ("Canada", "Toronto", "Ontario"),
    "GB": ("United Kingdom", "London", "England"),
    "IE": ("Ireland", "Dublin", "Leinster"),
    "DE": ("Germany", "Berlin", "Berlin"),
    "FR": ("France", "Paris", "Ile-de-France"),
    "NL": ("Netherlands", "Amsterdam", "North Holland"),
    "ES": ("Spain", "Madrid", "Madrid"),
    "PL": ("Poland", "Warsaw", "Mazovia"),
    "IN": ("India", "Bengaluru", "Karnataka"),
    "SG": ("Singapore", "Singapore", "Singapore"),
    "JP": ("Japan", "Tokyo", "Tokyo"),
    "AU": ("Australia", "Sydney", "New South Wales"),
    "BR": ("Brazil", "Sao Paulo", "Sao Paulo"),
    "MX": ("Mexico", "Mexico City", "Mexico City"),
    "IL": ("Israel", "Tel Aviv", "Tel Aviv"),
    "CN": ("China", "Shanghai", "Shanghai"),
}

# (os, os_version, browser, browser_version) of the computer or phone used to sign in.
_WINDOWS = (
    ("Windows", "11", "Edge", "124.0.2478.109"),
    ("Windows", "10", "Chrome", "125.0.6422.112"),
)
_MAC = (("Mac OS X", "14.5", "Safari", "17.5"), ("Mac OS X", "14.4.1", "Chrome", "125.0.6422.76"))
_IOS = (("iOS", "17.5.1", "Mobile Safari", "17.5"),)
_ANDROID = (("Android", "14", "Chrome Mobile", "125.0.6422.113"),)
_DESKTOPS = _WINDOWS + _MAC

_PUSH_FAILURES = (
    ("denied", "user_mistake"),
    ("denied", "no_response"),
    ("fraud", "user_marked_fraud"),
)
_OTP_FACTORS = ("duo_mobile_passcode", "hardware_token", "yubikey_passcode")
_KEY_NAMES = ("YubiKey 5 NFC", "YubiKey 5C", "Feitian ePass FIDO2")
_PASSKEY_NAMES = ("Passkey", "Passkey (iCloud Keychain)", "Passkey (Google Password Manager)")
_PLATFORM_NAMES = {"Mac OS X": "Touch ID", "iOS": "Face ID", "Android": "Android Biometrics"}
_PHONE_MODELS = {"iOS": ("Apple", "iPhone 15", "17.5.1"), "Android": ("Google", "Pixel 8", "14")}
_AKEY = "DAAR5FO0OZ4VYZA0WOB2"  # the simulated Duo account
_SSO_APP = "Duo Single Sign-On"
_PHONE_OS = frozenset({"iOS", "Android"})


def logged_factors(intent: SignInIntent) -> tuple[Method, ...]:
    """The factors Duo's record shows for this sign-in: the intent's, without the password."""
    return tuple(f for f in intent.factors if f not in UPSTREAM_METHODS)


def emit_signin(intent: SignInIntent, rng: random.Random) -> list[dict[str, Any]]:
    """One authentication log v2 item for the sign-in (see the module docstring)."""
    if not intent.interactive:
        raise ValueError("Duo logs no non-interactive sign-ins")
    factors = logged_factors(intent)
    if len(factors) != 1:
        raise ValueError(f"a Duo authentication logs exactly one Duo factor, not {factors!r}")
    method = factors[0]
    if method not in SUPPORTED_METHODS:
        raise ValueError(f"Duo cannot log a {method.value} sign-in")
    if len(factors) != len(intent.factors) and method in PASSWORDLESS_FACTORS:
        raise ValueError(
            f"password + {method.value}: Duo's record shows only {method.value}, which reads "
            "as passwordless"
        )

    person = intent.person
    os_name, os_version, browser, browser_version = _access_os(method, rng)
    country, city, state = _place(person.country)
    factor, device = _factor_and_device(method, os_name, person.uid, rng)
    if intent.success:
        result, reason = "success", ("valid_passcode" if _is_code(factor) else "user_approved")
    else:
        result, reason = _failure(method, rng)
    when = intent.time.astimezone(UTC)
    uses_phone = method in _PHONES
    return [
        {
            "access_device": {
                "browser": browser,
                "browser_version": browser_version,
                "epkey": "EP" + _key(person.uid, os_name),
                "flash_version": "uninstalled",
                "hostname": None,
                "ip": intent.ip,
                "is_encryption_enabled": True,
                "is_firewall_enabled": True,
                "is_password_set": True,
                "java_version": "uninstalled",
                "location": {"city": city, "country": country, "state": state},
                "os": os_name,
                "os_version": os_version,
                "security_agents": [],
            },
            "adaptive_trust_assessments": {
                "more_secure_auth": {
                    "detected_attack_detectors": [],
                    "features_version": "3.0",
                    "model_version": "2022.07.19.001",
                    "policy_enabled": False,
                    "reason": "Regular level of trust; no detection of known attack pattern",
                    "trust_level": "NORMAL",
                },
                "remember_me": {
                    "features_version": "3.0",
                    "model_version": "2022.07.19.001",
                    "policy_enabled": False,
                    "reason": "Known Access IP",
                    "trust_level": "NORMAL",
                },
            },
            "alias": "",
            "application": {"key": "DI" + _key("app", intent.app), "name": intent.app},
            "auth_device": {
                "ip": _phone_ip(person.uid) if method is Method.PUSH else None,
                "key": ("DP" if uses_phone else "WA") + _key(person.uid, method.value),
                "location": (
                    {"city": city, "country": country, "state": state}
                    if method is Method.PUSH
                    else {"city": None, "country": None, "state": None}
                ),
                "name": device,
            },
            "email": person.login,
            "event_type": "authentication",
            "factor": factor,
            "isotimestamp": when.isoformat(timespec="microseconds"),
            "ood_software": None,
            "reason": reason,
            "result": result,
            "timestamp": int(when.timestamp()),
            "trusted_endpoint_status": "not trusted",
            "txid": str(uuid.UUID(hex=intent.uid)),
            "user": {
                "groups": ["Duo Users"],
                "key": "DU" + _key(person.uid),
                "name": person.login.partition("@")[0],
            },
        }
    ]


def emit_enrollment(intent: EnrollmentIntent, rng: random.Random) -> list[dict[str, Any]]:
    """One activity log record: the user's own credential change in the Duo Prompt."""
    method = intent.method
    if method not in ENROLLABLE_METHODS:
        raise ValueError(f"Duo's activity log cannot record a {method.value} enrollment")
    person = intent.person
    created = intent.action == "registered"
    os_name, os_version, browser, browser_version = _access_os(method, rng)
    country, city, state = _place(person.country)
    when = intent.time.astimezone(UTC).isoformat(timespec="microseconds")
    if method in _WEBAUTHN:
        action = "webauthncredential_create" if created else "webauthncredential_delete"
        target = _webauthn_target(method, os_name, os_version, browser, browser_version, person.uid)
    else:
        action = "phone_create" if created else "phone_delete"
        target = _phone_target(method, person.uid, rng)
    actor_details = {
        "created": "2023-01-09T14:02:11.000000+00:00",
        "last_login": when,
        "email": person.login,
        "status": "Active",
        "groups": [{"name": "Duo Users", "key": "DG" + _key("group", "Duo Users")}],
    }
    return [
        {
            "access_device": {
                "browser": browser,
                "browser_version": browser_version,
                "epkey": "EP" + _key(person.uid, os_name),
                "ip": {
                    "address": _phone_ip(person.uid)
                    if os_name in _PHONE_OS
                    else _office_ip(person.uid)
                },
                "location": {"city": city, "country": country, "state": state},
                "os": os_name,
                "os_version": os_version,
            },
            "action": {"details": None, "name": action},
            "activity_id": str(uuid.UUID(hex=intent.uid)),
            "actor": {
                "details": json.dumps(actor_details),
                "key": "DU" + _key(person.uid),
                "name": person.login,
                "type": "user",
            },
            "akey": _AKEY,
            "application": {
                "key": "DI" + _key("app", _SSO_APP),
                "name": _SSO_APP,
                "type": "sso-generic",
            },
            "old_target": None,
            "outcome": {"result": "SUCCESS"},
            "target": target,
            "ts": when,
        }
    ]


# --- Pieces ----------------------------------------------------------------------------------
def _access_os(method: Method, rng: random.Random) -> tuple[str, str, str, str]:
    if method is Method.WINDOWS_HELLO:
        return rng.choice(_WINDOWS)
    if method is Method.PLATFORM_PASSKEY:
        return rng.choice(_MAC + _IOS + _ANDROID)
    if method is Method.PUSH and rng.random() < 0.2:  # a phone enrolled from the phone itself
        return rng.choice(_IOS + _ANDROID)
    return rng.choice(_DESKTOPS)


def _factor_and_device(
    method: Method, os_name: str, uid: str, rng: random.Random
) -> tuple[str, str | None]:
    """The `factor` string and `auth_device.name` Duo writes for a method."""
    if method is Method.PUSH:
        return ("verified_duo_push" if rng.random() < 0.3 else "duo_push"), _phone_name(uid)
    if method is Method.OTP:
        return rng.choice(_OTP_FACTORS), _phone_name(uid)
    if method is Method.SMS:
        return "sms_passcode", _number(uid)
    if method is Method.VOICE:
        return "phone_call", _number(uid)
    if method is Method.SECURITY_KEY:
        return "WebAuthn Security Key", rng.choice(_KEY_NAMES)
    if method is Method.WINDOWS_HELLO:
        return "WebAuthn Credential", "Windows Hello"
    if method is Method.SYNCED_PASSKEY:
        return "WebAuthn Credential", rng.choice(_PASSKEY_NAMES)
    return "WebAuthn Credential", _PLATFORM_NAMES.get(os_name, "Touch ID")  # platform passkey


def _failure(method: Method, rng: random.Random) -> tuple[str, str]:
    if method is Method.PUSH:
        return rng.choice(_PUSH_FAILURES)
    if method in (Method.OTP, Method.SMS):
        return "denied", "invalid_passcode"
    if method is Method.VOICE:
        return "denied", rng.choice(("no_keys_pressed", "call_timed_out"))
    return "denied", "user_cancelled"  # WebAuthn ceremony cancelled or timed out


def _is_code(factor: str) -> bool:
    return factor in ("sms_passcode",) or factor in _OTP_FACTORS


def _webauthn_target(
    method: Method, os_name: str, os_version: str, browser: str, version: str, uid: str
) -> dict[str, Any]:
    if method is Method.SECURITY_KEY:
        kind, transports = "Security key", "usb"
    elif method is Method.WINDOWS_HELLO:
        kind, transports = "Windows Hello", "internal"
    elif method is Method.SYNCED_PASSKEY:
        kind, transports = "Passkey", "hybrid,internal"
    else:
        kind, transports = _PLATFORM_NAMES.get(os_name, "Touch ID"), "internal"
    key = "WA" + _key(uid, method.value)
    details = {
        "authenticator_type": kind,
        "transport_types": transports,
        "passwordless_authorized": True,
        "browser": browser,
        "browser_version": version,
        "os": os_name,
        "os_version": os_version,
        "credential_name": kind,
    }
    return {"details": json.dumps(details), "key": key, "name": key, "type": "webauthn_credential"}


def _phone_target(method: Method, uid: str, rng: random.Random) -> dict[str, Any]:
    number = _number(uid)
    if method is Method.PUSH:  # a smartphone with Duo Mobile
        system = rng.choice(("iOS", "Android"))
        maker, model, version = _PHONE_MODELS[system]
        details: dict[str, Any] = {
            "manufacturer": maker,
            "number": number.replace(" ", "").replace("-", ""),
            "extension": "",
            "type": "Mobile",
            "os_version": version,
            "biometrics_status": "Configured",
            "os": system,
            "model": model,
            "tampered_status": "Not tampered",
            "passcode_status": "Locked",
            "country_code": "1",
        }
    else:  # SMS to a mobile number without Duo Mobile, or calls to a landline
        details = {
            "manufacturer": "-",
            "number": number.replace(" ", "").replace("-", ""),
            "extension": "",
            "type": "Mobile" if method is Method.SMS else "Landline",
            "os": None,
            "model": "-",
            "country_code": "1",
        }
    return {
        "details": json.dumps(details),
        "key": "DP" + _key(uid, method.value),
        "name": number,
        "type": "phone",
    }


def _place(country: str) -> tuple[str, str | None, str | None]:
    return _PLACES.get(country, (country, None, None))


@lru_cache(maxsize=65536)
def _key(*parts: str) -> str:
    """An 18-character Duo-style key suffix (upper-case letters and digits) from the parts."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).digest()
    return base64.b32encode(digest).decode()[:18]


@lru_cache(maxsize=65536)
def _number(uid: str) -> str:
    digits = int(uid[:8], 16) % 10_000
    return f"+1 734-555-{digits:04d}"


def _phone_name(uid: str) -> str:
    model = "iPhone" if int(uid[-1], 16) % 2 else "Pixel"
    return f"My {model} ({_number(uid)[3:]})"


def _office_ip(uid: str) -> str:
    return f"203.0.113.{int(uid[-4:-2], 16) % 254 + 1}"


def _phone_ip(uid: str) -> str:
    return f"198.51.100.{int(uid[-2:], 16) % 254 + 1}"
