"""The one HTTP client of the collectors: retries with back-off and jitter, `Retry-After` and
the vendors' rate-limit headers honoured, pacing, a token renewed once when the vendor says it
expired, and every way it can fail turned into one line for a person.

Retried: 429, 500, 502, 503, 504, timeouts and lost connections, and a 2xx that is not JSON
(a ServiceNow instance that is hibernating answers its HTML sign-in page; Elastic's ServiceNow
integration treats `text/html` as an error for that reason). The wait is the vendor's
`Retry-After` (or its rate-limit reset time) when it gives one, plus up to 10 % so that
collectors do not return in step, else exponential back-off with full jitter (tenacity's
`wait_random_exponential`). After PIPELINE_COLLECT_ATTEMPTS attempts the request fails with
`GaveUp`, naming what the vendor answered each time: a collector never gives up silently.

Not retried: 401 and 403 (`AccessDenied`, naming the permission to grant), after one renewal
of an OAuth token on a 401 (an expired token); any other 4xx (`VendorRefused`, with the
vendor's own error text, cut short).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from pipeline.collect.pacing import Pacer, reset_in, retry_after
from pipeline.collect.progress import Progress, duration

log = logging.getLogger("pipeline.collect")

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


class CollectError(Exception):
    """A collector cannot go on; the message is one line for a person, without secrets."""


class AccessDenied(CollectError):
    """401 or 403: the credentials are wrong or lack a permission (the message names it)."""


class VendorRefused(CollectError):
    """A 4xx other than 401, 403 and 429: sending the request again would not help."""


class GaveUp(CollectError):
    """The vendor kept failing (429, 5xx, timeouts) for every attempt allowed."""


class Stopped(Exception):
    """SIGTERM or Ctrl-C arrived while waiting: stop without committing anything more."""


@runtime_checkable
class Renewable(Protocol):
    """An auth whose credential can be fetched again (an OAuth access token)."""

    def renew(self) -> None: ...


class Transient(Exception):
    """A failure worth another attempt (raised by a token source too): `reason` for the log
    line, `wait` the seconds the vendor asked for, if it did."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def stoppable_sleep(stop: threading.Event) -> Callable[[float], None]:
    """A sleep that ends early, raising `Stopped`, when `stop` is set."""

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Stopped

    return sleep


class VendorClient:
    """Requests to one vendor, through one connection pool."""

    def __init__(
        self,
        vendor: str,
        *,
        progress: Progress,
        pacer: Pacer,
        stop: threading.Event,
        permission: str,
        base_url: str = "",
        auth: httpx.Auth | None = None,
        attempts: int = 8,
        timeout: float = 60.0,
        backoff_max: float = 60.0,
        retry_after_max: float = 900.0,
        verify: ssl.SSLContext | bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.vendor = vendor
        self.progress = progress
        self.pacer = pacer
        self._stop = stop
        self._sleep = stoppable_sleep(stop)
        self._permission = permission
        self._auth = auth
        self._attempts = attempts
        self._retry_after_max = retry_after_max
        self._backoff_max = backoff_max
        self._backoff = wait_random_exponential(multiplier=1, max=backoff_max)
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            verify=verify,
            headers={"Accept": "application/json", **(headers or {})},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    @property
    def attempts(self) -> int:
        return self._attempts

    def pause(self, attempt: int) -> None:
        """Sleep as before the `attempt`-th retry of a request (full jitter), or raise
        `Stopped`: for a vendor that answers 200 but "not yet" (an empty page)."""
        self._sleep(random.uniform(0, min(self._backoff_max, 2.0**attempt)))

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, pace: str | None = None
    ) -> httpx.Response:
        return self.request("GET", url, params=params, pace=pace)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        pace: str | None = None,
    ) -> httpx.Response:
        """The vendor's 2xx answer, JSON; `CollectError` or `Stopped` otherwise."""
        what = f"{self.vendor}: {method} {httpx.URL(url).path or url}"
        started = time.monotonic()
        answers: list[str] = []
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception_type(Transient),
            sleep=self._sleep,
            before_sleep=lambda state: self._before_sleep(what, state),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        return self._once(method, url, params, data, pace, what)
                    except Transient as exc:
                        answers.append(exc.reason)
                        raise
        except Transient:
            spent = duration(timedelta(seconds=time.monotonic() - started))
            raise GaveUp(
                f"{what}: {len(answers)} attempts over {spent} failed ({_summary(answers)}); "
                "giving up (PIPELINE_COLLECT_ATTEMPTS sets how many attempts)"
            ) from None
        raise AssertionError("unreachable: tenacity either returned or raised")

    def _once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
        pace: str | None,
        what: str,
    ) -> httpx.Response:
        if self._stop.is_set():
            raise Stopped
        self.pacer.wait(pace)
        response = self._send(method, url, params, data)
        if response.status_code == 401 and isinstance(self._auth, Renewable):
            # An access token that expired early, or was revoked: fetch a new one, once.
            self._auth.renew()
            self.progress.token_renewals += 1
            self.pacer.wait(pace)
            response = self._send(method, url, params, data)
        self.pacer.observe(pace, response.headers)
        status = response.status_code
        if status in RETRIED_STATUS:
            if status == 429:
                self.progress.rate_limited += 1
            now = time.time()
            wait = retry_after(response.headers, now)
            if wait is None and status == 429:
                wait = reset_in(response.headers, now)
            if wait is not None:
                self.pacer.hold(pace, min(wait, self._retry_after_max))
            raise Transient(f"{status} {response.reason_phrase}".strip(), wait)
        if status in (401, 403):
            raise AccessDenied(
                f"{what}: {status} {response.reason_phrase} ({vendor_error(response)}): "
                f"{self._permission}"
            )
        if status == 400 and _oauth_refusal(response):
            raise AccessDenied(f"{what}: {status} ({vendor_error(response)}): {self._permission}")
        if status >= 400:
            reason = f"{status} {response.reason_phrase}"
            raise VendorRefused(f"{what}: {reason}: {vendor_error(response)}")
        if status >= 300:
            location = response.headers.get("Location", "?")
            raise VendorRefused(
                f"{what}: {status} redirect to {httpx.URL(location).host or location}: check the "
                "base URL setting"
            )
        kind = response.headers.get("Content-Type", "")
        if response.content and "json" not in kind:
            shown = kind.split(";")[0] or "no content type"
            raise Transient(f"{status} answered {shown}, not JSON")
        return response

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Response:
        self.progress.requests += 1
        try:
            request = self._http.build_request(method, url, params=params, data=data)
            return self._http.send(request, auth=self._auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException:
            raise Transient("timed out") from None
        except httpx.TransportError as exc:
            raise Transient(f"connection failed ({type(exc).__name__}: {exc})") from None

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, Transient) and failure.wait is not None:
            return min(failure.wait, self._retry_after_max) * random.uniform(1.0, 1.1)
        return float(self._backoff(state))

    def _before_sleep(self, what: str, state: RetryCallState) -> None:
        self.progress.retries += 1
        failure = state.outcome.exception() if state.outcome else None
        reason = failure.reason if isinstance(failure, Transient) else repr(failure)
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: %s; again in %.1fs (attempt %d of %d)",
            what,
            reason,
            wait,
            state.attempt_number + 1,
            self._attempts,
        )


def vendor_error(response: httpx.Response, limit: int = 200) -> str:
    """The vendor's own words about an error, one line and short: the common JSON error
    fields (Okta errorSummary, Graph error.message, OAuth error_description, Duo message and
    message_detail, ServiceNow error.message, Jira errorMessages), else the body's start."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        nested = (error.get("message"), error.get("detail")) if isinstance(error, dict) else [error]
        found = [
            str(value)
            for value in (
                body.get("errorSummary"),
                body.get("error_description"),
                body.get("message"),
                body.get("message_detail"),
                body.get("detail"),
                *(body.get("errorMessages") or [])[:2],
                *nested,
            )
            if value
        ]
        text = "; ".join(dict.fromkeys(found))
    if not text:
        text = response.text[:limit] if response.content else "no body"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# OAuth 2.0 token errors that mean the client's credentials or grants (RFC 6749 §5.2).
_OAUTH_REFUSALS = frozenset(
    {"invalid_client", "invalid_grant", "unauthorized_client", "invalid_scope"}
)


def _oauth_refusal(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") in _OAUTH_REFUSALS


def _summary(answers: list[str]) -> str:
    """`503 Service Unavailable each time`, or the last three different answers."""
    distinct = list(dict.fromkeys(answers))
    return f"{distinct[0]} each time" if len(distinct) == 1 else ", ".join(distinct[-3:])
