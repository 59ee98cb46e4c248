"""Ping Identity emitter: simulator intents written down as PingOne audit activities and
PingFederate security audit records (JSON), exactly the shapes `pipeline.sources.ping` reads.

Sign-ins go to PingOne, or, for a deterministic share chosen with the caller's rng (and always
for what only PingFederate logs: certificates, Kerberos), to PingFederate. One record per
factor check, tied by PingOne `correlationId` / PingFederate `trackingid`, a few seconds apart,
plus the records each product writes around them (a session, the SSO). Enrollments are
PingOne MFA device events. Field choices and sources: docs/sources/ping.md.
"""

from __future__ import annotations

import binascii
import hashlib
import random
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pipeline.model import Method
from pipeline.simulate.intents import EnrollmentIntent, Person, SignInIntent
from pipeline.simulate.vendors._profiles import Profiles, shape_of
from pipeline.simulate.vendors._timetext import MINUTES as _MINUTES
from pipeline.simulate.vendors._timetext import minute_text as _minute_text

# What PingOne logs per factor (see P1_METHODS in pipeline.sources.ping).
_P1_SIGNIN: frozenset[Method] = frozenset(
    {
        Method.PASSWORD,
        Method.PUSH,
        Method.OTP,
        Method.SMS,
        Method.VOICE,
        Method.EMAIL,
        Method.PLATFORM_PASSKEY,
        Method.SYNCED_PASSKEY,
        Method.SECURITY_KEY,
        Method.MOBILE_AUTHENTICATOR,
    }
)
# PingFederate adapter instance ids (see PF_ADAPTERS in pipeline.sources.ping).
_PF_ADAPTER: dict[Method, str] = {
    Method.PASSWORD: "HTMLFormPD",
    Method.PUSH: "PingIDAdapter",
    Method.MOBILE_AUTHENTICATOR: "PingIDPasswordless",
    Method.CERTIFICATE: "X509Certificate",
    Method.FEDERATED: "Kerberos",
}
_PF_ONLY: frozenset[Method] = frozenset({Method.CERTIFICATE, Method.FEDERATED})
# Adapters that first show a page (PingID waits for the app) log AUTHN_ATTEMPT "inprogress".
_PF_WAITS: frozenset[Method] = frozenset({Method.PUSH, Method.MOBILE_AUTHENTICATOR})
PF_SHARE = 0.25  # share of sign-ins PingOne could log that go through PingFederate instead

# What the simulator may pick for a Ping user: every method Ping can log, as a sign-in factor
# and, where it is a passwordless factor, as an enrollment too. Certificates and Kerberos are
# left out: PingFederate logs those sign-ins (emit_signin writes them when asked) but no Ping
# product registers a smart card or a Kerberos ticket, so their enrollment cannot be logged.
SUPPORTED_METHODS: frozenset[Method] = _P1_SIGNIN
SIGNIN_METHODS: frozenset[Method] = _P1_SIGNIN | frozenset(_PF_ADAPTER)

# PingOne MFA device for each enrollable method: (type, authenticatorAttachment, backupState).
# The MOBILE device (PingOne MFA app) is passwordless-capable, so it is the
# mobile_authenticator enrollment; a push-only enrollment cannot be told apart in PingOne.
_DEVICES: dict[Method, tuple[str, str | None, bool | None]] = {
    Method.MOBILE_AUTHENTICATOR: ("MOBILE", None, None),
    Method.OTP: ("TOTP", None, None),
    Method.SMS: ("SMS", None, None),
    Method.VOICE: ("VOICE", None, None),
    Method.EMAIL: ("EMAIL", None, None),
    Method.PLATFORM_PASSKEY: ("FIDO2", "platform", False),
    Method.SYNCED_PASSKEY: ("FIDO2", "platform", True),
    Method.SECURITY_KEY: ("FIDO2", "cross-platform", False),
}
ENROLLABLE_METHODS: frozenset[Method] = frozenset(_DEVICES)

_ENV = "5c4d6a2e-8f1b-4c3a-9e7d-2b6f0a1c3d4e"  # the simulated PingOne environment
_POPULATION = "60971d3b-cc5a-4601-9c44-2be541f91bf1"
_API = f"https://api.pingone.com/v1/environments/{_ENV}"
_PF_HOSTS = ("pf-engine-01.corp.example.com", "pf-engine-02.corp.example.com")
_FIDO_NAMES: dict[Method, tuple[str, ...]] = {
    Method.PLATFORM_PASSKEY: ("Windows Hello", "Touch ID", "Android Biometrics"),
    Method.SYNCED_PASSKEY: ("iCloud Keychain", "Google Password Manager"),
    Method.SECURITY_KEY: ("YubiKey 5 NFC", "YubiKey 5C", "Feitian BioPass K27"),
}
_PHONES = ("iPhone 15", "iPhone 14", "Pixel 8", "Galaxy S24")

# ---------------------------------------------------------------------------------------------
# Ids and times
# ---------------------------------------------------------------------------------------------


def _uuid(*parts: str) -> str:
    """A UUID (v4 layout) derived from the given parts: stable for the same inputs."""
    h = hashlib.blake2b("/".join(parts).encode(), digest_size=16).hexdigest()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def _hex_uuid(hex32: str) -> str:
    """The canonical form of a 32-hex id (string slicing: cheaper than uuid.UUID)."""
    h = hex32.lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=4096)
def _app_id(app: str) -> str:
    return _uuid("app", app)


def _iso(moment: datetime) -> str:
    """PingOne / log4j style: UTC, milliseconds, `Z`."""
    m = moment
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


def _start(moment: datetime) -> datetime:
    """The intent's time in UTC, rounded up to the millisecond the records carry, so that no
    record is logged before the intent."""
    moment = moment.astimezone(UTC)
    spare = moment.microsecond % 1000
    return moment + timedelta(microseconds=1000 - spare) if spare else moment


def _tracking_id(uid: str) -> str:
    digest = _blake2b(uid.encode(), digest_size=20).digest()
    # 27 url-safe base64 characters (the 28th is padding)
    return "tid:" + _b2a(digest)[:27].translate(_URLSAFE).decode()


def _activity_ids(uid: str, count: int) -> list[str]:
    """The PingOne activity ids (UUID v4 layout) of a sign-in's records, derived from the
    intent uid: four per 64-byte hash."""
    h = _blake2b((uid + "/activities").encode()).hexdigest()
    if count > 4:
        h += "".join(
            _blake2b(f"{uid}/activities/{block}".encode()).hexdigest()
            for block in range(1, (count + 3) // 4)
        )
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}

# Times from integer Unix milliseconds and cached pieces: datetime arithmetic and formatting
# cost more than the rest of a record.
_DIGITS = "0123456789"
_D2 = tuple(a + b for a in _DIGITS for b in _DIGITS)  # "00".."99"
_SS_DOT = tuple(s + "." for s in _D2[:60])
_MS_Z = tuple(a + b + "Z" for a in _DIGITS for b in _D2)  # "000Z".."999Z"


def _start_minute(moment: datetime) -> tuple[int, int]:
    """`_start` as (Unix minutes, milliseconds into that minute: up to 60000)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    minutes = ((moment.toordinal() - 719_163) * 24 + moment.hour) * 60 + moment.minute
    return minutes, moment.second * 1000 + (moment.microsecond + 999) // 1000


def _iso_ms(ms: int) -> str:
    """`_iso` of Unix milliseconds."""
    minutes, rest = divmod(ms, 60_000)
    second, milli = divmod(rest, 1000)
    return _minute_text(minutes) + _SS_DOT[second] + _MS_Z[milli]


_blake2b = hashlib.blake2b
_b2a = binascii.b2a_base64
_URLSAFE = bytes.maketrans(b"+/", b"-_")


# ---------------------------------------------------------------------------------------------
# Sign-ins
# ---------------------------------------------------------------------------------------------


def emit_signin(intent: SignInIntent, rng: random.Random) -> list[dict[str, Any]]:
    """The raw records Ping logs for one sign-in, in time order.

    Hot path (millions of calls): what depends only on the person, the factors and the
    outcome is computed once (`_Profile`, `_shape`) and shared between records (never
    mutated); per record only its ids and times are new.
    """
    person = intent.person
    profile = _PROFILES.of(person)
    shape = shape_of(profile, intent.factors, intent.success, _shape)
    if not intent.interactive:
        return []  # token refreshes are not sign-ins in PingOne / PingFederate audit records
    p1_steps, pf_steps, pf_forced = shape
    if pf_steps is not None and (pf_forced or rng.random() < PF_SHARE):
        return _pf_signin(intent, rng, pf_steps)
    if p1_steps is None:
        raise ValueError("PingFederate logs certificates and Kerberos only on their own")
    return _p1_signin(intent, rng, profile, p1_steps)


def _p1_signin(
    intent: SignInIntent, rng: random.Random, profile: _Profile, steps: tuple
) -> list[dict[str, Any]]:
    uid = intent.uid
    actors = {"client": _P1_CLIENTS.get(intent.app) or _p1_client(intent.app), "user": profile.user}
    resources = profile.resources
    # correlationId (the intent uid) and the activity ids (v4 GUIDs from a hash of the uid)
    # in one formatting operation, 36 characters each.
    ids = _p1_ids(uid, len(steps))
    correlation = ids[:36]
    code_id = None
    start_minute, in_minute = _start_minute(intent.time)
    prefix = _MINUTES.get(start_minute) or _minute_text(start_minute)
    offset = 0
    records: list[dict[str, Any]] = []
    for index, (low, span, action, result, embedded, code) in enumerate(steps):
        if low:
            offset += low + int(rng.random() * span)  # uniform whole milliseconds
        if code:
            # Passwordless sign-in: the authentication code the app answers.
            if code_id is None:
                code_id = _uuid(uid, "code")
            embedded = {"authenticationCode": {"id": code_id, "status": embedded}}
        activity_id = ids[36 * index + 36 : 36 * index + 72]
        at = in_minute + offset
        if at < 60_000:
            head = prefix
        else:
            later, at = divmod(at, 60_000)
            head = _minute_text(start_minute + later)
        second, milli = divmod(at, 1000)
        head += _SS_DOT[second]
        created = milli + 12 + index  # createdAt: a few ms after recordedAt
        record: dict[str, Any] = {
            "_links": {"self": {"href": _ACTIVITIES + activity_id}},
            "id": activity_id,
            "recordedAt": head + _MS_Z[milli],
            "createdAt": (
                head + _MS_Z[created]
                if created < 1000
                else _iso_ms(start_minute * 60_000 + in_minute + offset + 12 + index)
            ),
            "correlationId": correlation,
            "actors": actors,
            "action": action,
            "resources": resources,
            "result": result,
        }
        if embedded is not None:
            record["_embedded"] = embedded
        records.append(record)
    return records


def _p1_ids(uid: str, count: int) -> str:
    """The uid as a GUID, then `count` activity ids (v4 GUIDs: four per 64-byte hash)."""
    u = uid.lower()
    h = _blake2b((uid + "/activities").encode()).hexdigest()
    if count <= 2:
        return (
            f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
            f"{h[32:40]}-{h[40:44]}-4{h[45:48]}-{_VARIANT[h[48]]}{h[49:52]}-{h[52:64]}"
        )
    ids = (
        f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
        f"{h[32:40]}-{h[40:44]}-4{h[45:48]}-{_VARIANT[h[48]]}{h[49:52]}-{h[52:64]}"
        f"{h[64:72]}-{h[72:76]}-4{h[77:80]}-{_VARIANT[h[80]]}{h[81:84]}-{h[84:96]}"
        f"{h[96:104]}-{h[104:108]}-4{h[109:112]}-{_VARIANT[h[112]]}{h[113:116]}-{h[116:128]}"
    )
    if count > 4:
        ids += "".join(_activity_ids(uid, count)[4:])
    return ids


def _pf_signin(intent: SignInIntent, rng: random.Random, steps: tuple) -> list[dict[str, Any]]:
    uid = intent.uid
    app = intent.app
    tracking = _tracking_id(uid)
    base = _PF_APPS.get(app) or _pf_app(app)
    base = base.copy()
    # The default audit.log fields in their documented order, then two of the optional ones.
    base["trackingid"] = tracking
    base["transactionid"] = "xid:" + tracking[4:18]
    base["subject"] = intent.person.login
    base["ip"] = intent.ip
    base["host"] = _PF_HOSTS[int(uid[-1], 16) % len(_PF_HOSTS)]
    start_minute, in_minute = _start_minute(intent.time)
    prefix = _MINUTES.get(start_minute) or _minute_text(start_minute)
    offset = 0
    records: list[dict[str, Any]] = []
    for low, span, event, status, adapter, description in steps:
        if low:
            offset += low + int(rng.random() * span)  # uniform whole milliseconds
        at = in_minute + offset
        if at < 60_000:
            head = prefix
        else:
            later, at = divmod(at, 60_000)
            head = _minute_text(start_minute + later)
        second, milli = divmod(at, 1000)
        record = base.copy()
        record["timestamp"] = head + _SS_DOT[second] + _MS_Z[milli]
        record["event"] = event
        record["status"] = status
        record["adapterid"] = adapter
        if description:
            record["description"] = description
        record["responsetime"] = _RESPONSE_TIMES[int(rng.random() * 166)]  # 15-180 ms
        records.append(record)
    return records


_RESPONSE_TIMES = tuple(str(ms) for ms in range(15, 181))
_ACTIVITIES = f"{_API}/activities/"


class _Profile:
    """Per person, computed once and shared by their records (never mutated)."""

    __slots__ = ("devices", "person", "resources", "shapes", "user", "user_id")

    def __init__(self, person: Person) -> None:
        self.person = person
        self.user_id = user_id = _hex_uuid(person.uid)
        user_href = f"{_API}/users/{user_id}"
        self.user = {
            "id": user_id,
            "name": person.login,
            "environment": {"id": _ENV},
            "population": {"id": _POPULATION},
            "href": user_href,
            "type": "USER",
        }
        self.resources = [
            {
                "type": "USER",
                "id": user_id,
                "name": person.login,
                "environment": {"id": _ENV},
                "population": {"id": _POPULATION},
                "href": user_href,
            }
        ]
        self.devices: dict[Method, dict[str, Any]] = {}  # method -> {"device": ...}
        self.shapes: list[tuple[tuple[Method, ...], bool, tuple]] = []

    def device(self, method: Method) -> dict[str, Any]:
        embedded = self.devices.get(method)
        if embedded is None:
            person = self.person
            embedded = self.devices[method] = {
                "device": _p1_device(person.uid, person.login, method)
            }
        return embedded


# Bounded by the workforce; cleared if a caller ever feeds more people than this.
_PROFILES: Profiles[_Profile] = Profiles(_Profile)


_P1_CLIENTS: dict[str, dict[str, Any]] = {}  # app -> actors.client


def _p1_client(app: str) -> dict[str, Any]:
    if len(_P1_CLIENTS) >= 4096:
        _P1_CLIENTS.clear()
    app_id = _app_id(app)
    client = _P1_CLIENTS[app] = {
        "id": app_id,
        "name": app,
        "environment": {"id": _ENV},
        "href": f"{_API}/applications/{app_id}",
        "type": "CLIENT",
    }
    return client


_PF_APPS: dict[str, dict[str, Any]] = {}


def _pf_app(app: str) -> dict[str, Any]:
    """The PingFederate record template of an app's SAML connection."""
    if len(_PF_APPS) >= 4096:
        _PF_APPS.clear()
    app_slug = app.lower().replace(" ", "")
    template = _PF_APPS[app] = {
        "timestamp": None,
        "trackingid": None,
        "transactionid": None,
        "event": None,
        "subject": None,
        "ip": None,
        "app": f"https://{app_slug}.example.com/saml/acs",
        "connectionid": f"https://{app_slug}.example.com",
        "protocol": "SAML20",
        "host": None,
        "role": "IdP",
        "status": None,
        "adapterid": None,
        "description": "",
        "responsetime": None,
        "localuserid": "",
        "connectionname": app,
    }
    return template


def _shape(profile: _Profile, factors: tuple[Method, ...], success: bool) -> tuple:
    """How a person's sign-in with these factors and this outcome is logged, apart from its
    ids and times: (PingOne steps or None, PingFederate steps or None, PingFederate only)."""
    if not factors:
        raise ValueError("a sign-in needs at least one factor")
    unsupported = [m for m in factors if m not in SIGNIN_METHODS]
    if unsupported:
        raise ValueError(f"Ping cannot log {', '.join(m.value for m in unsupported)}")
    distinct = set(factors)
    pf_possible = distinct.issubset(_PF_ADAPTER)
    shape = (
        _p1_steps(profile, factors, success) if distinct.issubset(_P1_SIGNIN) else None,
        _pf_steps(factors, success) if pf_possible else None,
        bool(distinct & _PF_ONLY),
    )
    return shape


def _p1_steps(profile: _Profile, factors: tuple[Method, ...], success: bool) -> tuple:
    """PingOne: one activity per factor check (two for a passwordless sign-in: the code is
    created, then answered), a few seconds apart, then the session. Each step: (delay low,
    delay span, action, result, _embedded, _embedded is an authentication code status)."""
    login = profile.person.login
    last = len(factors) - 1
    steps = []
    for position, method in enumerate(factors):
        ok = success or position != last
        low, span = (2000, 8000) if position else (0, 0)  # 2-10 s after the previous factor
        if method is Method.PASSWORD:
            if ok:
                entry = ("PASSWORD.CHECK_SUCCEEDED", "Password Check Succeeded")
                result = f"Password check succeeded for user {login}"
            else:
                entry = ("PASSWORD.CHECK_FAILED", "Password Check Failed")
                result = "The provided password did not match provisioned password"
            steps.append((low, span, _action(*entry), _result(ok, result), None, False))
        elif method is Method.MOBILE_AUTHENTICATOR:
            created = _action("AUTHENTICATION_CODE.CREATED", "Authentication Code Created")
            result = _result(True, "Authentication code created")
            steps.append((low, span, created, result, "CREATED", True))
            status = "COMPLETED" if ok else "DENIED"
            updated = _action("AUTHENTICATION_CODE.UPDATED", "Authentication Code Updated")
            result = _result(ok, f"Authentication code status updated to {status}")
            steps.append((3000, 10000, updated, result, status, True))  # 3-13 s later
        else:
            device = profile.device(method)
            if method is Method.PUSH:
                done = "completed" if ok else "failed: push notification was rejected"
                entry = ("AUTHENTICATION.UPDATED", "Device Authentication Updated")
                result = f"Device authentication {done} with device of type MOBILE"
            elif method in (Method.PLATFORM_PASSKEY, Method.SYNCED_PASSKEY, Method.SECURITY_KEY):
                if ok:
                    entry = ("ASSERTION.CHECK_SUCCESS", "Assertion Check Succeeded")
                    result = "FIDO2 assertion verified"
                else:
                    entry = ("ASSERTION.CHECK_FAILED", "Assertion Check Failed")
                    result = "Assertion verification failed: user verification was not performed"
            else:
                kind = device["device"]["type"]
                if ok:
                    entry = ("OTP.CHECK_SUCCESS", "One-Time Passcode Check Succeeded")
                    result = f"OTP check succeeded for device of type {kind}"
                else:
                    entry = ("OTP.CHECK_FAILED", "One-Time Passcode Check Failed")
                    result = "Invalid OTP"
            steps.append((low, span, _action(*entry), _result(ok, result), device, False))
    if success:
        action = _action("SESSION.CREATED", "Session Created")
        result = _result(True, f"Session created for user {login}")
        steps.append((80, 321, action, result, None, False))  # 80-400 ms later
    return tuple(steps)


@lru_cache(maxsize=256)
def _action(action: str, text: str) -> dict[str, str]:
    # Shared between records: never mutated after creation.
    return {"type": action, "description": text}


@lru_cache(maxsize=256)
def _result(ok: bool, text: str) -> dict[str, str]:
    # Shared between records (the per-person texts only by that person's): never mutated.
    return {"status": "SUCCESS" if ok else "FAILED", "description": text}


def _pf_steps(factors: tuple[Method, ...], success: bool) -> tuple:
    """PingFederate: per factor, AUTHN_ATTEMPT (after an "inprogress" one where the adapter
    first waits for the app), then the session and the SSO. Each step: (delay low, delay
    span, event, status, adapterid, description)."""
    last = len(factors) - 1
    steps = []
    adapters: list[str] = []
    for position, method in enumerate(factors):
        ok = success or position != last
        adapter = _PF_ADAPTER[method]
        adapters.append(adapter)
        low, span = (1000, 4000) if position else (0, 0)  # 1-5 s after the previous factor
        if method in _PF_WAITS:
            steps.append((low, span, "AUTHN_ATTEMPT", "inprogress", adapter, ""))
            low, span = 3000, 13000  # 3-16 s: the user answers on the phone
        if ok:
            steps.append((low, span, "AUTHN_ATTEMPT", "success", adapter, ""))
        else:
            failure = _PF_FAILURES[method]
            steps.append((low, span, "AUTHN_ATTEMPT", "failure", adapter, failure))
    if success:
        steps.append((5, 56, "AUTHN_SESSION_CREATED", "success", adapters[-1], ""))
        listed = adapters[0] if len(adapters) == 1 else "[" + ", ".join(adapters) + "]"
        steps.append((20, 181, "SSO", "success", listed, ""))
    return tuple(steps)


def _p1_device(person_uid: str, login: str, method: Method) -> dict[str, Any]:
    """The PingOne MFA device body (`_embedded.device`) of a person's device for `method`."""
    if method is Method.PUSH:
        method = Method.MOBILE_AUTHENTICATOR  # the same MOBILE device pushes
    kind, attachment, backed_up = _DEVICES[method]
    device_id = _uuid(person_uid, "device", kind, attachment or "")
    device: dict[str, Any] = {
        "id": device_id,
        "type": kind,
        "status": "ACTIVE",
        "environment": {"id": _ENV},
        "user": {"id": _hex_uuid(person_uid)},
        "href": f"{_API}/users/{_hex_uuid(person_uid)}/devices/{device_id}",
    }
    if kind == "FIDO2":
        names = _FIDO_NAMES[method]
        device["displayName"] = names[int(person_uid[:4], 16) % len(names)]
        device["authenticatorAttachment"] = attachment
        device["backupEligibility"] = bool(backed_up)
        device["backupState"] = bool(backed_up)
        device["rp"] = {"id": "example.com", "name": "Example Corp"}
    elif kind == "MOBILE":
        device["model"] = {"marketingName": _PHONES[int(person_uid[4:8], 16) % len(_PHONES)]}
    elif kind in ("SMS", "VOICE"):
        device["phone"] = "+1555" + str(int(person_uid[8:16], 16) % 10_000_000).zfill(7)
    elif kind == "EMAIL":
        device["email"] = login
    return device


_PF_FAILURES: dict[Method, str] = {
    Method.PASSWORD: "Authentication failed: invalid username or password",
    Method.PUSH: "PingID authentication failed: request denied by user",
    Method.MOBILE_AUTHENTICATOR: "PingID authentication failed: request timed out",
    Method.CERTIFICATE: "Client certificate not trusted",
    Method.FEDERATED: "Kerberos ticket missing or invalid",
}

# ---------------------------------------------------------------------------------------------
# Enrollments
# ---------------------------------------------------------------------------------------------


def emit_enrollment(intent: EnrollmentIntent, rng: random.Random) -> list[dict[str, Any]]:
    """PingOne MFA device events: DEVICE.CREATED then DEVICE.ACTIVATED, or DEVICE.DELETED."""
    if intent.method not in _DEVICES:
        raise ValueError(f"PingOne registers no MFA device for {intent.method.value}")
    person = intent.person
    user_id = _hex_uuid(person.uid)
    device = _p1_device(person.uid, person.login, intent.method)
    kind = device["type"]
    portal_id = _app_id("PingOne Self-Service - MyAccount")
    client = {
        "id": portal_id,
        "name": "PingOne Self-Service - MyAccount",
        "environment": {"id": _ENV},
        "href": f"{_API}/applications/{portal_id}",
        "type": "CLIENT",
    }
    user = {
        "id": user_id,
        "name": person.login,
        "environment": {"id": _ENV},
        "population": {"id": _POPULATION},
        "href": f"{_API}/users/{user_id}",
    }

    def activity(
        index: int, moment: datetime, action: str, text: str, result: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        activity_id = _uuid(intent.uid, str(index))
        return {
            "_links": {"self": {"href": f"{_API}/activities/{activity_id}"}},
            "id": activity_id,
            "recordedAt": _iso(moment),
            "createdAt": _iso(moment + timedelta(milliseconds=15 + index)),
            "correlationId": _uuid(intent.uid, "correlation", str(index)),
            "actors": {"client": client, "user": {**user, "type": "USER"}},
            "action": {"type": action, "description": text},
            "resources": [{"type": "USER", **user}],
            "result": {"status": "SUCCESS", "description": result},
            "_embedded": {"device": body},
        }

    if intent.action == "removed":
        return [
            activity(
                0,
                _start(intent.time),
                "DEVICE.DELETED",
                "Device Deleted",
                f"Deleted device of type {kind} for user {person.login}",
                device,
            )
        ]
    created = _start(intent.time)
    activated = created + timedelta(seconds=rng.randint(4, 40), milliseconds=rng.randint(0, 999))
    pending = {k: v for k, v in device.items() if k not in ("displayName", "backupState")}
    pending["status"] = "ACTIVATION_REQUIRED"
    return [
        activity(
            0,
            created,
            "DEVICE.CREATED",
            "Device Created",
            f"Created device of type {kind} for user {person.login}",
            pending,
        ),
        activity(
            1,
            activated,
            "DEVICE.ACTIVATED",
            "Device Activated",
            f"Activated device of type {kind} for user {person.login}",
            device,
        ),
    ]
