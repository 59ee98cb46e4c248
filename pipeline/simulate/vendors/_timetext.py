"""Timestamp text for the emitters, built from whole minutes since the Unix epoch and
cached: millions of records share a few thousand minutes, so no per-record isoformat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DD" (a few hundred entries)
MINUTES: dict[int, str] = {}  # minutes since the epoch -> "YYYY-MM-DDTHH:MM:"


def minute_text(minutes: int) -> str:
    """The "YYYY-MM-DDTHH:MM:" of a Unix time in whole minutes (UTC), cached."""
    text = MINUTES.get(minutes)
    if text is None:
        days, minute = divmod(minutes, 1440)
        day = _DAYS.get(days)
        if day is None:
            day = _DAYS[days] = (_EPOCH + timedelta(days=days)).date().isoformat()
        if len(MINUTES) >= 4096:  # records come roughly in time order: keep it small
            MINUTES.clear()
        hour, minute = divmod(minute, 60)
        text = MINUTES[minutes] = f"{day}T{hour:02d}:{minute:02d}:"
    return text
