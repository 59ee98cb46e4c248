"""Helpers every source parser shares: decoding raw bytes into typed structs, timestamps,
user ids, building the normalized events, and the one exception a parser raises for an event
it cannot read."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal, TypeVar

import msgspec

from pipeline.model import AuthEvent, EnrollmentEvent, Kind, Method, Outcome, Source, parsed_event

T = TypeVar("T")

RawEvent = bytes | bytearray | memoryview | str


class RejectedEvent(ValueError):
    """The raw event cannot be read; `reason` says why, in words for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(raw: RawEvent, into: type[T]) -> T:
    """Decode one raw JSON event into a typed struct, reading only the fields it declares."""
    try:
        return msgspec.json.decode(raw, type=into)
    except msgspec.ValidationError as exc:
        raise RejectedEvent(f"unexpected shape: {exc}") from None
    except msgspec.DecodeError as exc:
        raise RejectedEvent(f"invalid JSON: {exc}") from None
    except UnicodeDecodeError as exc:  # bad UTF-8 inside a string: msgspec's own error
        raise RejectedEvent(f"invalid UTF-8 at byte {exc.start}") from None
    except RecursionError:  # msgspec walks even the fields it skips
        raise RejectedEvent("JSON nested too deeply") from None


def top_level(raw: RawEvent) -> dict[str, msgspec.Raw]:
    """The event's top-level keys with their values left undecoded (for shape detection)."""
    return decode(raw, dict[str, msgspec.Raw])


TimeValue = str | int | float | None

# `M/D/YYYY h:mm:ss[.f] [AM|PM] [offset]`: .NET's en-US / invariant-culture general date and
# time, which some Azure services write in the Azure Monitor `time` field (read only where a
# parser says the month comes first: the same digits mean d/m/y in most other locales).
_SLASH_DATE = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(?: ?([AaPp][Mm]))?(?: ?(Z|[+-]\d{2}(?::?\d{2})?))?"
)


# Bound once: the fast path below is one call of it (a method lookup costs ~20 ns).
_fromisoformat = datetime.fromisoformat


def parse_time(
    value: TimeValue,
    field: str,
    *,
    fallback: TimeValue = None,
    fallback_field: str = "",
    naive_is_utc: bool = False,
    month_first: bool = False,
) -> datetime:
    """An event's time as aware UTC, or `RejectedEvent` saying why it cannot be placed.

    The one reading of vendor timestamps (the parsers build their models without validation):
    - ISO 8601 / RFC 3339 as Python 3.11 reads it: `Z` or an offset with or without a colon
      (`+0000`), `T` or a space, any number of fraction digits (kept to microseconds);
    - a number: Unix epoch seconds;
    - no timezone: rejected, unless `naive_is_utc` (a field its vendor documents as UTC);
      a date without a time of day is rejected either way;
    - `M/D/YYYY h:mm:ss [AM|PM]` only with `month_first`, else rejected as ambiguous.
    `fallback` is another field holding the same event's time (an epoch beside an ISO string,
    an envelope's time), read when `value` is missing or unreadable."""
    try:
        parsed = _fromisoformat(value)  # type: ignore[arg-type]  # TypeError if not a str
    except (TypeError, ValueError):
        parsed = None
    else:
        if parsed.tzinfo is UTC:  # `Z` or `+00:00`, nearly every event: already final
            return parsed
    try:
        return _placed(value, parsed, field, naive_is_utc, month_first)
    except RejectedEvent as first:
        if fallback is None or fallback == "":
            raise
        try:
            return parse_time(
                fallback, fallback_field, naive_is_utc=naive_is_utc, month_first=month_first
            )
        except RejectedEvent:
            if value is None or value == "":
                raise
            raise first from None


def _placed(
    value: TimeValue,
    parsed: datetime | None,
    field: str,
    naive_is_utc: bool,
    month_first: bool,
) -> datetime:
    """`parse_time` past its fast path: epochs, offsets, naive and slash-dated values."""
    if value is None or value == "":
        raise RejectedEvent(f"missing timestamp `{field}`")
    if not isinstance(value, str):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise _unreadable(value, field) from None
    if parsed is None:
        parsed = _slash_date(value, field, month_first)
    if parsed.tzinfo is not None:
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise _unreadable(value, field) from None
    if len(value) <= 10:  # 2024-01-02, 20240102, 2024-W01-2: a day, not a moment
        raise RejectedEvent(f"timestamp `{field}` has no time of day: {value!r}")
    if not naive_is_utc:
        raise RejectedEvent(f"timestamp `{field}` has no timezone: {value!r}")
    return parsed.replace(tzinfo=UTC)


def _unreadable(value: str | int | float, field: str) -> RejectedEvent:
    return RejectedEvent(f"unreadable timestamp `{field}`: {value!r}")


def _slash_date(value: str, field: str, month_first: bool) -> datetime:
    match = _SLASH_DATE.fullmatch(value.strip())
    if match is None:
        raise _unreadable(value, field)
    if not month_first:
        raise RejectedEvent(
            f"timestamp `{field}` has a slash date whose day/month order the source does "
            f"not state: {value!r}"
        )
    month, day, year, hour, minute, second, fraction, meridiem, offset = match.groups()
    clock = int(hour)
    if meridiem is not None:
        if not 1 <= clock <= 12:
            raise _unreadable(value, field)
        clock = clock % 12 + (12 if meridiem.upper() == "PM" else 0)
    iso = (
        f"{year}-{int(month):02d}-{int(day):02d}T{clock:02d}:{minute}:{second}"
        f"{fraction or ''}{offset or ''}"
    )
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        raise _unreadable(value, field) from None


def derived_id(record: RawEvent | Mapping[str, object]) -> str:
    """A record's id when its vendor wrote none: `derived:` + the first 32 hex digits of the
    SHA-256 of its canonical JSON (keys sorted, no whitespace). The same record gives the same
    id even after a shipper re-serialized it (key order, spacing, escapes), so a replay still
    dedups; any other content gives another. A raw event is hashed whole; a mapping (the
    fields that identify a mutable record, such as a ticket's number) as given."""
    try:
        value = record if isinstance(record, Mapping) else msgspec.json.decode(record)
        canonical = _CANONICAL.encode(value)
    except (msgspec.DecodeError, msgspec.EncodeError, UnicodeDecodeError, RecursionError):
        raise RejectedEvent(
            "record without an id, and not JSON an id can be derived from"
        ) from None
    return "derived:" + hashlib.sha256(canonical).hexdigest()[:32]


_CANONICAL = msgspec.json.Encoder(order="sorted")


def normalize_user(value: str | None) -> str | None:
    """Logins compare case-insensitively across IdPs (UPN, e-mail, username)."""
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


# Bound once: an Enum class attribute costs ~0.2 us a lookup.
_OTHER, _ENROLLMENT = Kind.OTHER, Kind.ENROLLMENT


def other_event(
    source: Source,
    event_id: str,
    time: datetime,
    user: str | None,
    outcome: Outcome,
    session: str | None,
    event_type: str,
    *,
    app: str | None = None,
    src_ip: str | None = None,
    reason: str | None = None,
) -> AuthEvent:
    """An IdP record that checks no factor and changes none (`kind: other`), of values the
    parser has typed and checked (`event_id` non-empty, `time` from `parse_time`, `user` from
    `normalize_user`): built without re-validation."""
    return parsed_event(
        AuthEvent,
        {
            "source": source,
            "event_id": event_id,
            "time": time,
            "user": user,
            "kind": _OTHER,
            "outcome": outcome,
            "method": None,
            "raw_method": None,
            "passwordless": None,
            "session": session,
            "event_type": event_type,
            "factors": [],
            "raw_factors": [],
            "interactive": True,
            "app": app,
            "src_ip": src_ip,
            "country": None,
            "reason": reason,
        },
    )


def enrollment_event(
    *,
    source: Source,
    event_id: str,
    time: datetime,
    user: str | None,
    outcome: Outcome,
    method: Method | None,
    raw_method: str | None,
    session: str | None,
    event_type: str,
    action: Literal["registered", "removed"],
    passwordless_factor: bool,
) -> EnrollmentEvent:
    """A factor registered or removed, of values the parser has typed and checked, as for
    `other_event`."""
    return parsed_event(
        EnrollmentEvent,
        {
            "source": source,
            "event_id": event_id,
            "time": time,
            "user": user,
            "kind": _ENROLLMENT,
            "outcome": outcome,
            "method": method,
            "raw_method": raw_method,
            "passwordless": None,
            "session": session,
            "event_type": event_type,
            "action": action,
            "passwordless_factor": passwordless_factor,
        },
    )
