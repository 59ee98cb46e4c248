"""Cisco Duo: the Admin API's authentication log (v2), activity log, telephony log (v2) and
administrator log (v1), into the Duo raw topic.

What Duo documents (Admin API, https://duo.com/docs/adminapi: "Authentication Logs",
"Activity Logs", "Telephony Logs", "Administrator Logs"), and what this collector does:
- Requests are signed with the official `duo-client` library's `sign` (HMAC over the date,
  method, host, path and every query parameter; signature v5, HMAC-SHA512), with a fresh
  `Date` for every request sent, retries included: a stale one gets 40103
  (https://github.com/elastic/integrations/pull/11670). The requests themselves go through
  the collectors' one HTTP client, so that Duo's 429 (code 42901, no rate-limit headers) gets
  the same back-off as every vendor's.
- The v2 logs take `mintime`/`maxtime` in Unix milliseconds, `limit` up to 1000, `sort`, and
  page by `metadata.next_offset` (authentication: `[ms, txid]`, sent back joined by a comma;
  activity and telephony: a "ms,id" string). "There is an intentional two minute delay in
  availability of new authentications … We recommend requesting logs no more than once per
  minute": `maxtime` stays PIPELINE_DUO_DELAY (at least 2 minutes) behind now, and each log is
  called at most once per PIPELINE_DUO_MIN_INTERVAL (60 s). `mintime` must be within the
  past 180 days (PIPELINE_DUO_RETENTION); an older start is moved up to that, with a warning.
- The cursor is Duo's own: the round's frozen window and its `next_offset` (as Duo's
  DuoLogSync and Elastic's integration keep it), so a restart resumes on the page it stopped
  at; a finished round's next window starts where it ended, less PIPELINE_DUO_OVERLAP.
- The administrator log (v1) takes `mintime` in Unix seconds and returns "only the 1000
  earliest events": the next call starts at the last event's second (a full page within one
  second moves on by one second).
- Permission: the Admin API application needs "Grant read log".
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import msgspec
from pydantic import SecretStr

from pipeline.collect.http import VendorClient
from pipeline.collect.paging import Body, Call, TokenParam, pages
from pipeline.collect.runner import Collector, Context, Page, Span, cursor_time, user_key
from pipeline.collect.settings import DuoSettings
from pipeline.collect.watermark import iso
from pipeline.model import Source
from pipeline.sources._common import RejectedEvent, parse_time

log = logging.getLogger("pipeline.collect")

PERMISSION = (
    'give the Admin API application the "Grant read log" permission (Duo Admin Panel → '
    "Applications → the Admin API application), and check PIPELINE_DUO_IKEY, PIPELINE_DUO_SKEY "
    "and PIPELINE_DUO_HOST"
)
# v2 logs: (path, the records' key in `response`, the field holding a record's time)
V2_LOGS = {
    "authentication": ("/admin/v2/logs/authentication", "authlogs", "isotimestamp"),
    "activity": ("/admin/v2/logs/activity", "items", "ts"),
    "telephony": ("/admin/v2/logs/telephony", "items", "ts"),
}
ADMINISTRATOR_PATH = "/admin/v1/logs/administrator"
ADMINISTRATOR_PAGE = 1000


class DuoSigner(httpx.Auth):
    """Signs each request as `duo_client.Client.api_call` does for a GET (signature v5): the
    parameters normalized and signed by the library's own functions, a new `Date` each time."""

    def __init__(self, ikey: str, skey: SecretStr, host: str) -> None:
        self._ikey = ikey
        self._skey = skey
        self._host = host.lower()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from duo_client.client import normalize_params, sign

        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(request.url.query.decode(), keep_blank_values=True):
            params.setdefault(key, []).append(value)
        date = email.utils.formatdate()
        request.headers["Authorization"] = sign(
            self._ikey,
            self._skey.get_secret_value(),
            request.method,
            self._host,
            request.url.path,
            date,
            5,
            normalize_params(params),
            body="",
            additional_headers={},
        )
        request.headers["Date"] = date
        yield request


class _Stamped(msgspec.Struct):
    isotimestamp: str | None = None
    ts: str | None = None
    timestamp: int | float | None = None


_stamped = msgspec.json.Decoder(_Stamped)


def _newest(records: list[bytes], field: str, newest: datetime | None) -> datetime | None:
    for raw in records:
        try:
            value = getattr(_stamped.decode(raw), field)
            when = parse_time(value, field)
        except (msgspec.DecodeError, RejectedEvent):
            continue
        if newest is None or when > newest:
            newest = when
    return newest


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


class V2Log:
    """A v2 log: rounds over a frozen [mintime, maxtime] window, paged by `next_offset`."""

    def __init__(self, name: str, client: VendorClient, settings: DuoSettings) -> None:
        self.name = name
        self._client = client
        self._settings = settings
        self._path, key, self._time_field = V2_LOGS[name]
        self._paging = TokenParam(
            records_path=("response", key),
            token_path=("response", "metadata", "next_offset"),
            param="next_offset",
        )

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        now = datetime.now(UTC)
        newest = cursor_time(cursor)
        offset = cursor.get("next_offset") if cursor is not None else None
        if cursor is not None and offset:  # a round cut short: the same window, from its page
            mintime, maxtime = int(cursor["mintime"]), int(cursor["maxtime"])
        else:
            if cursor is not None:
                after = _from_ms(int(cursor["maxtime"]) + 1)
                start = after if span.backfill else after - self._settings.overlap
            else:
                start = span.start
            latest = now - self._settings.delay
            end = latest if span.end is None else min(span.end, latest)
            start = self._within_retention(start, now)
            mintime, maxtime = _ms(start), _ms(end)
        if mintime >= maxtime:  # Duo: mintime strictly less than maxtime
            return
        params: dict[str, Any] = {
            "mintime": str(mintime),
            "maxtime": str(maxtime),
            "limit": str(self._settings.limit),
            "sort": "ts:asc",
        }
        if offset:
            params["next_offset"] = str(offset)
        pace = f"duo:{self.name}"
        for fetched in pages(self._client, Call(self._path, params), self._paging, pace=pace):
            newest = _newest(fetched.records, self._time_field, newest)
            following = (fetched.next.params or {}).get("next_offset") if fetched.next else None
            yield Page(
                fetched.records,
                {
                    "mintime": mintime,
                    "maxtime": maxtime,
                    "next_offset": following,
                    # How far it has come: the window's end once read to it.
                    "time": iso(
                        _from_ms(maxtime) if following is None else newest or _from_ms(mintime)
                    ),
                },
            )

    def _within_retention(self, start: datetime, now: datetime) -> datetime:
        # An hour's margin: the request is signed and sent a little after `now`.
        oldest = now - self._settings.retention + timedelta(hours=1)
        if start < oldest:
            log.warning(
                "duo %s: Duo keeps %s days; starting at %s instead of %s",
                self.name,
                self._settings.retention.days,
                iso(oldest),
                iso(start),
            )
            return oldest
        return start


@dataclass(frozen=True)
class _Earliest:
    """The administrator log's paging: the next call starts at the last event's second."""

    records_path: tuple[str, ...] = ("response",)
    empty_ends: bool = True

    def next(self, call: Call, response: httpx.Response, body: Body) -> Call | None:
        records = body.records(self.records_path)
        if len(records) < ADMINISTRATOR_PAGE:
            return None
        mintime = int((call.params or {})["mintime"])
        seconds = [_seconds(raw) for raw in records]
        last = int(max((s for s in seconds if s is not None), default=mintime))
        return Call(call.url, {"mintime": str(last if last > mintime else mintime + 1)})


def _seconds(raw: bytes) -> float | None:
    """An administrator log record's `timestamp` (Unix seconds), if it has a readable one."""
    try:
        return _stamped.decode(raw).timestamp
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class AdministratorLog:
    name = "administrator"

    def __init__(self, client: VendorClient) -> None:
        self._client = client

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        mintime = int(cursor["mintime"]) if cursor else int(span.start.timestamp())
        newest = cursor_time(cursor)
        first = Call(ADMINISTRATOR_PATH, {"mintime": str(mintime)})
        for fetched in pages(self._client, first, _Earliest(), pace="duo:administrator"):
            newest = _newest(fetched.records, "timestamp", newest)
            if fetched.next is not None:
                mintime = int((fetched.next.params or {})["mintime"])
            elif newest is not None:
                mintime = max(mintime, int(newest.timestamp()))
            stamp = iso(newest) if newest is not None else None
            yield Page(fetched.records, {"mintime": mintime, "time": stamp})
            if span.end is not None and newest is not None and newest > span.end:
                return


def build(context: Context) -> Collector:
    settings = DuoSettings()
    settings.required("host", "ikey")
    signer = DuoSigner(str(settings.ikey), settings.required_secret("skey"), str(settings.host))
    client = context.client("duo", PERMISSION, base_url=settings.base_url(), auth=signer)
    streams: list[Any] = []
    for name in settings.logs:
        context.pacer.limit(f"duo:{name}", min_interval=settings.min_interval)
        streams.append(
            AdministratorLog(client) if name == "administrator" else V2Log(name, client, settings)
        )
    return Collector(
        name="duo",
        tenant=str(settings.host).lower(),
        topic=context.topics.raw(Source.DUO),
        streams=streams,
        poll_seconds=settings.poll_seconds,
        key=user_key(Source.DUO),
    )
