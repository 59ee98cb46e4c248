"""Helpers every source parser shares: decoding raw bytes into typed structs, timestamps,
user ids, building the normalized events, and the one exception a parser raises for an event
it cannot read."""

from __future__ import annotations

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


def parse_time(value: str | int | float | None, field: str) -> datetime:
    """ISO 8601 (any fraction length, `Z` or offset) or Unix epoch seconds -> aware UTC.

    The one check of an event's `time` (the parsers build their models without validation):
    what this returns always carries a timezone, UTC."""
    if value is None or value == "":
        raise RejectedEvent(f"missing timestamp `{field}`")
    try:
        if not isinstance(value, str):
            return datetime.fromtimestamp(value, tz=UTC)
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is UTC:  # `Z` or `+00:00`, nearly every event: already final
            return parsed
        utc = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError, OSError):
        raise RejectedEvent(f"unreadable timestamp `{field}`: {value!r}") from None
    if utc is None:
        raise RejectedEvent(f"timestamp `{field}` has no timezone: {value!r}")
    return utc


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
