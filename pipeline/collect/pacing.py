"""Pacing: how long to wait before the next request to a vendor, so that it never has to
throttle us, and how long a vendor told us to wait when it did.

A request names a pace key (an endpoint, or a vendor's tenant-wide budget). Each key may have a
minimum interval between calls (Duo: one call a minute per log) and a sliding window of at
most N calls (Graph's reports: 5 requests per 10 s per app per tenant), and is held until the
vendor's reset time when its rate-limit headers say the budget is spent (Okta's
`X-Rate-Limit-Remaining: 0`). The vendors' numbers and their sources are in the vendor modules.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Headers a vendor uses to say how much of its budget is left, and when it refills.
# Okta: X-Rate-Limit-* (https://developer.okta.com/docs/reference/rl-best-practices/);
# ServiceNow and Jira: X-RateLimit-* (ServiceNow's inbound REST rate limiting page; Atlassian's
# https://developer.atlassian.com/cloud/jira/platform/rate-limiting/).
_REMAINING = ("X-Rate-Limit-Remaining", "X-RateLimit-Remaining")
_LIMIT = ("X-Rate-Limit-Limit", "X-RateLimit-Limit")
_RESET = ("X-Rate-Limit-Reset", "X-RateLimit-Reset")


@dataclass
class _Key:
    min_interval: float = 0.0
    window: tuple[int, float] | None = None  # (calls, seconds)
    last: float | None = None
    sent: deque[float] = field(default_factory=deque)
    held_until: float = 0.0


class Pacer:
    """Waits (through `sleep`, which may raise to stop) until a key may be called."""

    def __init__(
        self,
        sleep: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._keys: dict[str, _Key] = {}

    def limit(
        self, key: str, min_interval: float = 0.0, window: tuple[int, float] | None = None
    ) -> None:
        entry = self._keys.setdefault(key, _Key())
        entry.min_interval = min_interval
        entry.window = window

    def wait(self, key: str | None) -> float:
        """Sleep until `key` may be called, then count the call; the seconds slept."""
        if key is None:
            return 0.0
        entry = self._keys.setdefault(key, _Key())
        slept = 0.0
        while (pause := self._pause(entry)) > 0:
            self._sleep(pause)
            slept += pause
        now = self._clock()
        entry.last = now
        if entry.window is not None:
            entry.sent.append(now)
        return slept

    def _pause(self, entry: _Key) -> float:
        now = self._clock()
        pause = entry.held_until - now
        if entry.last is not None:
            pause = max(pause, entry.last + entry.min_interval - now)
        if entry.window is not None:
            calls, seconds = entry.window
            while entry.sent and entry.sent[0] <= now - seconds:
                entry.sent.popleft()
            if len(entry.sent) >= calls:
                pause = max(pause, entry.sent[0] + seconds - now)
        return pause

    def hold(self, key: str | None, seconds: float) -> None:
        """No call of `key` for `seconds` from now (a 429's Retry-After, a spent budget)."""
        if key is not None and seconds > 0:
            entry = self._keys.setdefault(key, _Key())
            entry.held_until = max(entry.held_until, self._clock() + seconds)

    def observe(self, key: str | None, headers: Mapping[str, str]) -> None:
        """Read a response's rate-limit headers: a spent budget holds the key until its reset.
        Okta documents that a concurrent-limit answer reports Limit=0 and that its reset is
        "only a suggestion": those are not taken as a spent budget."""
        remaining, limit = _first_int(headers, _REMAINING), _first_int(headers, _LIMIT)
        if remaining is None or remaining > 0 or limit == 0:
            return
        if (until := reset_in(headers, self._wall())) is not None:
            self.hold(key, until)


def _first_int(headers: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if (value := headers.get(name)) is not None:
            try:
                return int(float(value))
            except ValueError:
                return None
    return None


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds a `Retry-After` asks for: a number (Graph sends fractions such as `2.128`,
    https://learn.microsoft.com/graph/throttling) or an HTTP date (RFC 9110 §10.2.3)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def reset_in(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until a rate-limit reset header's time: Unix epoch seconds (Okta, ServiceNow)
    or an ISO 8601 time (Jira)."""
    for name in _RESET:
        if (value := headers.get(name)) is None:
            continue
        try:
            number = float(value)
        except ValueError:
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(when.timestamp() - now, 0.0)
        # An epoch is a date; a small number is a count of seconds from now.
        return max(number - now, 0.0) if number > 1e9 else max(number, 0.0)
    return None
