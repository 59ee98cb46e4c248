"""What a collector has done so far: one object per collector, the figures of its status line
and, later, of its Prometheus metrics (the operations issue reads the same fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class Progress:
    """Counters since the process started, and where each stream's cursor stands."""

    collector: str
    events: int = 0
    pages: int = 0
    requests: int = 0
    rate_limited: int = 0  # 429 answers
    retries: int = 0  # requests sent again after a 429, a 5xx, a timeout or a lost connection
    token_renewals: int = 0
    errors: int = 0  # rounds that ended in an error
    rounds: int = 0
    # stream -> the newest event time its committed cursor covers
    cursor_times: dict[str, datetime] = field(default_factory=dict)
    next_poll: datetime | None = None

    def cursor_time(self) -> datetime | None:
        """The stream furthest behind: how far the collector as a whole has come."""
        return min(self.cursor_times.values(), default=None)

    def cursor_age(self, now: datetime | None = None) -> timedelta | None:
        """How far the cursor lags the clock."""
        oldest = self.cursor_time()
        return None if oldest is None else (now or datetime.now(UTC)) - oldest

    def status_line(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        oldest, age = self.cursor_time(), self.cursor_age(now)
        where = (
            f"cursor at {oldest.isoformat(timespec='seconds')} ({duration(age)} behind)"
            if oldest is not None and age is not None
            else "no cursor yet"
        )
        parts = [
            f"round {self.rounds}",
            f"{self.events:,} events in {self.pages:,} pages ({self.requests:,} requests, "
            f"{self.rate_limited} rate-limited, {self.retries} retried, {self.errors} errors)",
            where,
        ]
        if self.next_poll is not None:
            parts.append(f"next poll in {duration(max(self.next_poll - now, timedelta()))}")
        return "; ".join(parts)


def duration(span: timedelta) -> str:
    """`3d4h`, `2h5m`, `4m10s`, `12s`: the two largest units a person reads."""
    seconds = int(span.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours}h"
    if hours:
        return f"{sign}{hours}h{minutes}m"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"
