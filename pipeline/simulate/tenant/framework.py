"""What every fake vendor API shares: the data clock, faults on demand, issued tokens, fixed
window rate limits, opaque page tokens, links, and the wrapper every data endpoint goes
through (count the request, inject a due fault, authenticate, rate-limit, answer)."""

from __future__ import annotations

import base64
import binascii
import inspect
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from pipeline.simulate.tenant.server import Tenant

Handler = Callable[[web.Request], Any]


class Clock:
    """The tenant's "now" for the data: the wall clock, or moved by a test; it always keeps
    running in real time (rate-limit windows and token lifetimes use it too)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def millis(self) -> int:
        return int(self.now() * 1000)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._offset = moment.timestamp() - time.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


@dataclass(frozen=True)
class Due:
    """What a data request gets: its number since the last reset and the fault due on it."""

    number: int
    throttle: float | None = None  # seconds to wait: a 429
    error: bool = False  # a 500
    empty: bool = False  # an empty page (Okta)


@dataclass
class _Run:
    start: int
    count: int
    value: float = 0.0

    def covers(self, number: int) -> bool:
        return self.start <= number < self.start + self.count


@dataclass
class Faults:
    """Faults of one vendor, set from any thread; request numbers count its data requests
    (not token or discovery requests) from 1 since the last reset."""

    requests: int = 0
    ttl: float | None = None  # lifetime of the tokens issued from now on
    expired_before: float = 0.0  # tokens issued before this (tenant clock) are expired
    _throttles: list[_Run] = field(default_factory=list)
    _errors: list[_Run] = field(default_factory=list)
    _empty: list[_Run] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clock: Clock | None = None

    def throttle(self, at: int, count: int = 1, retry_after: float = 1.0) -> None:
        """Requests `at` .. `at + count - 1` answer 429 (Retry-After: `retry_after`)."""
        with self._lock:
            self._throttles.append(_Run(at, count, retry_after))

    def errors(self, at: int, count: int = 1) -> None:
        """Requests `at` .. `at + count - 1` answer 500."""
        with self._lock:
            self._errors.append(_Run(at, count))

    def empty_pages(self, at: int, count: int = 1) -> None:
        """Okta: log requests `at` .. `at + count - 1` answer `[]` with a `next` link that
        stays where the cursor was."""
        with self._lock:
            self._empty.append(_Run(at, count))

    def token_ttl(self, seconds: float | None) -> None:
        """Tokens issued from now on expire after `seconds` (None: the vendor's lifetime)."""
        with self._lock:
            self.ttl = seconds

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on."""
        now = self._clock.now() if self._clock else time.time()
        with self._lock:
            self.expired_before = now + 1e-6

    def next_request(self) -> Due:
        with self._lock:
            self.requests += 1
            number = self.requests
            throttle = next((r.value for r in self._throttles if r.covers(number)), None)
            return Due(
                number,
                throttle=throttle,
                error=any(r.covers(number) for r in self._errors),
                empty=any(r.covers(number) for r in self._empty),
            )

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.ttl = None
            self.expired_before = 0.0
            self._throttles.clear()
            self._errors.clear()
            self._empty.clear()


@dataclass(frozen=True)
class Grant:
    """An issued access token: to whom, with what, until when (tenant clock)."""

    client: str
    scopes: frozenset[str]
    issued: float
    expires: float


class Tokens:
    """Opaque bearer tokens a vendor issued."""

    def __init__(self, faults: Faults, clock: Clock) -> None:
        self._faults = faults
        self._clock = clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, client: str, scopes: frozenset[str], lifetime: float) -> tuple[str, int]:
        """A new token and its `expires_in`: the vendor's `lifetime`, or the TTL a fault set
        (a token that dies before its announced time: `Faults.expire_tokens`)."""
        now = self._clock.now()
        ttl = lifetime if self._faults.ttl is None else self._faults.ttl
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[token] = Grant(client, scopes, now, now + ttl)
        return token, max(int(ttl), 1)

    def check(self, token: str) -> Grant | str:
        """The grant, or why not: "invalid" (never issued) or "expired"."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            return "invalid"
        if grant.issued < self._faults.expired_before or self._clock.now() >= grant.expires:
            return "expired"
        return grant

    def clear(self) -> None:
        with self._lock:
            self._grants.clear()


@dataclass(frozen=True)
class Window:
    """A fixed rate-limit window's state after a request was counted in it."""

    limit: int
    remaining: int
    reset: int  # epoch seconds (tenant clock) when the window starts again
    wait: float  # 0 when the request is within the limit, else seconds until the reset


class RateLimit:
    """At most `limit` requests per fixed `window` seconds (windows aligned on the epoch)."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._start = 0.0
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> Window:
        now = self._clock.now()
        with self._lock:
            start = now - now % self.window
            if start != self._start:
                self._start, self._used = start, 0
            self._used += 1
            reset = start + self.window
            over = self._used > self.limit
            return Window(
                self.limit,
                max(self.limit - self._used, 0),
                int(reset) + (reset % 1 > 0),
                reset - now if over else 0.0,
            )

    def reset(self) -> None:
        with self._lock:
            self._start, self._used = 0.0, 0


def page_token(payload: dict[str, Any]) -> str:
    """An opaque, self-contained page token: the query and the position in its results."""
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def read_token(text: str) -> dict[str, Any] | None:
    """The payload of `page_token`, or None for anything the tenant did not make."""
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def url(request: web.Request, path: str | None = None, query: dict[str, str] | None = None) -> str:
    """An absolute URL on this server: the links vendors return are absolute."""
    base = f"{request.scheme}://{request.host}{request.path if path is None else path}"
    return f"{base}?{urlencode(query, safe='$')}" if query else base


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def raw_array(lines: list[bytes]) -> bytes:
    """A JSON array of records kept as JSON bytes."""
    return b"[" + b",".join(lines) + b"]"


def iso_millis(time_ms: int) -> str:
    """`2026-01-05T03:29:42.000Z`."""
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


class Vendor:
    """One vendor's API on the tenant: its faults, its tokens, and the wrapper of its data
    endpoints. Subclasses answer in the vendor's own shapes."""

    key: str = ""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.faults = tenant.faults(self.key)
        self.tokens = Tokens(self.faults, tenant.clock)
        self.limits: list[RateLimit] = []

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def rate_limit(self, limit: int, window: float) -> RateLimit:
        made = RateLimit(limit, window, self.tenant.clock)
        self.limits.append(made)
        return made

    def endpoint(self, handler: Handler, need: str = "", limit: RateLimit | None = None) -> Handler:
        """A data endpoint: counted, faulted, authenticated (`need`: the scope, role or
        permission it requires), rate-limited, then answered by `handler`."""

        async def serve(request: web.Request) -> web.StreamResponse:
            due = self.faults.next_request()
            window = limit.take() if limit is not None and self.tenant.rate_limits else None
            if due.throttle is not None:
                response = self.throttled(request, due.throttle)
            elif due.error:
                response = self.server_error(request)
            elif (refused := self.authenticate(request, need)) is not None:
                response = refused
            elif window is not None and window.wait:
                response = self.throttled(request, window.wait)
            else:
                request[DUE] = due
                answer = handler(request)
                response = await answer if inspect.isawaitable(answer) else answer
            if window is not None:
                self.decorate(response, window, due.throttle)
            return response

        return serve

    def authenticate(self, request: web.Request, need: str) -> web.Response | None:
        """None when the request may go on, else the vendor's 401/403."""
        raise NotImplementedError

    def throttled(self, request: web.Request, retry_after: float) -> web.Response:
        raise NotImplementedError

    def server_error(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    def decorate(self, response: web.StreamResponse, window: Window, forced: float | None) -> None:
        """Rate-limit headers a vendor sends on every response (none by default)."""

    def bearer(self, request: web.Request) -> Grant | str:
        """The grant of the request's `Authorization: Bearer` token, or "missing" /
        "invalid" / "expired"."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "missing"
        return self.tokens.check(token.strip())

    def reset(self) -> None:
        self.tokens.clear()
        for limit in self.limits:
            limit.reset()


DUE = web.RequestKey("due", Due)


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds (RFC 9110: a non-negative integer), at least 1."""
    return str(max(1, int(seconds + 0.999)))
