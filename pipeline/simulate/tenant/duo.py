"""Cisco Duo Admin API: the authentication log v2, the activity and telephony logs v2 and the
administrator log v1, each request signed as Duo documents.

Sources:
- Request signing, https://duo.com/docs/adminapi#authentication and the official client
  (duosecurity/duo_client_python `duo_client/client.py`: `canon_params`, `canonicalize`,
  `sign`): `Authorization: Basic base64(ikey:hex(HMAC(skey, canon)))` and a `Date` header
  (RFC 2822) equal to the signed date. Signature v2: `canon = date, METHOD, host (lower case),
  path, params` joined by newlines, HMAC-SHA1 or HMAC-SHA512; v4 adds the SHA-512 hex of the
  body, v5 also the SHA-512 hex of the `X-Duo-*` headers, always HMAC-SHA512 (the client's
  default is v5). Parameters: keys and values URL-quoted (`~` unescaped), sorted, `k=v`
  joined by `&`; every query parameter is signed (a `limit` left out of the signature gets
  40103: https://community.cisco.com/t5/apis/quot-limit-quot-in-cisco-duo-admin-api-logs/m-p/4964486).
  A stale `Date` gets 40103 "Invalid signature in request credentials"
  (https://github.com/elastic/integrations/pull/11670); the tolerance used here, 5 minutes,
  is not confirmed. Errors are `{"stat": "FAIL", "code", "message", "message_detail"?}`.
- Authentication logs v2, https://duo.com/docs/adminapi#authentication-logs: `mintime` and
  `maxtime` required, Unix milliseconds, inclusive, mintime strictly less than maxtime;
  `limit` (default 100, at most 1000); `sort` `ts:asc` or `ts:desc` (the default here; a
  stored page confirming Duo's default was not found: collectors should send it); `next_offset`,
  "the timestamp and the txid" of the last record, sent back comma-separated
  (https://community.cisco.com/t5/apis/duo-admin-api-admin-v2-logs-authentication/td-p/4883419);
  the answer is `{"stat": "OK", "response": {"authlogs": [...], "metadata": {"next_offset":
  [ms, txid] | null, "total_objects": N}}}`. "There is an intentional two minute delay in
  availability of new authentications in the API response … Querying for results more recent
  than two minutes will return as empty."
- Activity and telephony logs v2, https://duo.com/docs/adminapi#activity-logs and
  #telephony-logs: the same window and paging, `response.items`, `metadata.next_offset` a
  string "ts,id", `total_objects` `{"relation", "value"}`.
- Administrator log v1, https://duo.com/docs/adminapi#administrator-logs: `mintime` in Unix
  seconds; "Only the 1000 earliest events will be returned"; `response` is the list.
- Rate limits: Duo sends no rate-limit headers; a 429 is `{"code": 42901, "message": "Too Many
  Requests", "stat": "FAIL"}` and "a rate limit of 50 calls per minute" was seen on the
  authentication log (https://github.com/elastic/integrations/pull/11441, issue #11405): each
  log here allows 50 calls a minute. Duo recommends polling "no more than once per minute".
- Permissions: an Admin API application needs "Grant read log" to read logs; without it,
  403 `{"code": 40301, "message": "Access forbidden"}`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import secrets
import time
from bisect import bisect_left, bisect_right
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from aiohttp import web

from pipeline.simulate.tenant.framework import Vendor, json_response, raw_array
from pipeline.simulate.tenant.rollout import Feed

DELAY_MS = 120_000
DATE_TOLERANCE = 300.0
AUTH_PARAMS = frozenset(
    {
        "mintime",
        "maxtime",
        "limit",
        "sort",
        "next_offset",
        "users",
        "groups",
        "applications",
        "results",
        "reasons",
        "factors",
        "event_types",
        "assessment",
        "detections",
    }
)
LOG_PARAMS = frozenset({"mintime", "maxtime", "limit", "sort", "next_offset"})


class Invalid(Exception):
    """A 400: Duo's "Invalid request parameters" with the detail."""


class DuoAPI(Vendor):
    key = "duo"

    def __init__(self, tenant: Any) -> None:
        super().__init__(tenant)
        self.ikey = "DI" + secrets.token_hex(9).upper()
        self.skey = secrets.token_urlsafe(30)
        self.permissions = frozenset({"read_log"})
        rollout = tenant.rollout
        # log -> (its records, the key of the list in `response`)
        self._logs: dict[str, tuple[Feed, str]] = {
            "authentication": (rollout.duo_authentication, "authlogs"),
            "activity": (rollout.duo_activity, "items"),
            "telephony": (rollout.duo_telephony, "items"),
        }
        # 50 calls a minute per log
        self.log_limits = {
            name: self.rate_limit(50, 60.0) for name in (*self._logs, "administrator")
        }

    @property
    def host(self) -> str:
        return urlsplit(self.tenant.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.tenant.url).port or 443

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.get(
                f"/admin/v2/logs/{name}",
                self.endpoint(self._v2(name), need="read_log", limit=self.log_limits[name]),
            )
            for name in self._logs
        ]
        administrator = self.log_limits["administrator"]
        routes.append(
            web.get(
                "/admin/v1/logs/administrator",
                self.endpoint(self.administrator, need="read_log", limit=administrator),
            )
        )
        return routes

    def _v2(self, name: str) -> Any:
        feed, key = self._logs[name]

        def handler(request: web.Request) -> web.Response:
            try:
                return self._page(request, name, feed, key)
            except Invalid as exc:
                return _fail(400, 40002, "Invalid request parameters", str(exc))

        return handler

    def _page(self, request: web.Request, name: str, feed: Feed, key: str) -> web.Response:
        query = request.query
        unknown = set(query) - (AUTH_PARAMS if name == "authentication" else LOG_PARAMS)
        if unknown:
            raise Invalid(", ".join(sorted(unknown)))
        mintime, maxtime = _millis(query, "mintime"), _millis(query, "maxtime")
        if mintime >= maxtime:
            raise Invalid("mintime must be strictly less than maxtime")
        limit = _count(query.get("limit", "100"))
        ascending = _sort(query.get("sort", "ts:desc"))
        visible = feed.visible(self.tenant.clock.millis() - DELAY_MS)
        if name != "authentication":
            visible = feed.visible(self.tenant.clock.millis())
        first = bisect_left(feed.times, mintime, hi=visible)
        last = bisect_right(feed.times, maxtime, lo=first, hi=visible)
        positions = list(range(first, last))
        total = len(positions)
        if not ascending:
            positions.reverse()
        if "next_offset" in query:
            positions = _after(feed, positions, query.getall("next_offset"), ascending)
        page = positions[:limit]
        more = len(positions) > limit
        offset: Any = None
        if more and page:
            time_ms, record_id = str(feed.times[page[-1]]), feed.ids[page[-1]]
            offset = [time_ms, record_id] if name == "authentication" else f"{time_ms},{record_id}"
        lines = [feed.lines[i] for i in page]
        totals = total if name == "authentication" else {"relation": "eq", "value": total}
        metadata = orjson.dumps({"next_offset": offset, "total_objects": totals})
        body = b'{"stat":"OK","response":{"%s":%s,"metadata":%s}}' % (
            key.encode(),
            raw_array(lines),
            metadata,
        )
        return web.Response(body=body, content_type="application/json")

    def administrator(self, request: web.Request) -> web.Response:
        feed = self.tenant.rollout.duo_administrator
        text = request.query.get("mintime", "0")
        if not text.isdigit():
            return _fail(400, 40002, "Invalid request parameters", "mintime")
        visible = feed.visible(self.tenant.clock.millis())
        first = bisect_left(feed.times, int(text) * 1000, hi=visible)
        lines = feed.lines[first : min(first + 1000, visible)]
        return web.Response(
            body=b'{"stat":"OK","response":' + raw_array(lines) + b"}",
            content_type="application/json",
        )

    def authenticate(self, request: web.Request, need: str) -> web.Response | None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        date = request.headers.get("Date")
        if scheme != "Basic" or not credential or not date:
            return _fail(401, 40101, "Missing request credentials")
        try:
            ikey, _, signature = base64.b64decode(credential).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return _fail(401, 40102, "Invalid integration key in request credentials")
        if ikey != self.ikey:
            return _fail(401, 40102, "Invalid integration key in request credentials")
        sent = email.utils.parsedate_to_datetime(date) if _rfc2822(date) else None
        # the client's wall clock, whatever the data clock says
        if sent is None or abs(sent.timestamp() - time.time()) > DATE_TOLERANCE:
            return _fail(401, 40103, "Invalid signature in request credentials")
        if not any(
            hmac.compare_digest(signature, expected) for expected in self._signatures(request, date)
        ):
            return _fail(401, 40103, "Invalid signature in request credentials")
        if need not in self.permissions:
            return _fail(403, 40301, "Access forbidden")
        return None

    def _signatures(self, request: web.Request, date: str) -> list[str]:
        """The signatures this request could carry: v2 with SHA-1 and SHA-512, v4 and v5,
        for the Host header with and without its port."""
        params = canon_params(request)
        skey = self.skey.encode()
        body = hashlib.sha512(b"").hexdigest()  # the signed GETs carry no body
        duo_headers = {
            k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-duo-")
        }
        header_hash = hashlib.sha512(
            "\x00".join(
                x for name in sorted(duo_headers) for x in (name, duo_headers[name])
            ).encode()
        ).hexdigest()
        host = request.host.lower()
        signatures = []
        for name in {host, host.rsplit(":", 1)[0] if not host.endswith("]") else host}:
            v2 = "\n".join([date, request.method.upper(), name, request.path, params])
            signatures.append(hmac.new(skey, v2.encode(), hashlib.sha1).hexdigest())
            signatures.append(hmac.new(skey, v2.encode(), hashlib.sha512).hexdigest())
            v4 = f"{v2}\n{body}"
            signatures.append(hmac.new(skey, v4.encode(), hashlib.sha512).hexdigest())
            v5 = f"{v4}\n{header_hash}"
            signatures.append(hmac.new(skey, v5.encode(), hashlib.sha512).hexdigest())
        return signatures

    def throttled(self, request: web.Request, retry_after: float) -> web.Response:
        return _fail(429, 42901, "Too Many Requests")

    def server_error(self, request: web.Request) -> web.Response:
        return _fail(500, 50000, "Internal server error")

    def reset(self) -> None:
        super().reset()
        self.permissions = frozenset({"read_log"})


def canon_params(request: web.Request) -> str:
    """Duo's canonical parameters: keys and values quoted (RFC 3986, `~` kept), sorted."""
    pairs: dict[str, list[str]] = {}
    for key, value in request.query.items():
        pairs.setdefault(quote(key, "~"), []).append(quote(value, "~"))
    return "&".join(f"{key}={value}" for key in sorted(pairs) for value in sorted(pairs[key]))


def _rfc2822(text: str) -> bool:
    try:
        return email.utils.parsedate_to_datetime(text) is not None
    except (TypeError, ValueError):
        return False


def _fail(status: int, code: int, message: str, detail: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message, "stat": "FAIL"}
    if detail:
        body["message_detail"] = detail
    return json_response(body, status=status)


def _millis(query: Any, name: str) -> int:
    text = query.get(name)
    if text is None or not text.isdigit() or len(text) != 13:
        raise Invalid(f"{name} must be a 13-digit Unix timestamp in milliseconds")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise Invalid("limit must be between 1 and 1000")
    return int(text)


def _sort(text: str) -> bool:
    if text not in ("ts:asc", "ts:desc"):
        raise Invalid("sort must be ts:asc or ts:desc")
    return text == "ts:asc"


def _after(feed: Feed, positions: list[int], offset: list[str], ascending: bool) -> list[int]:
    """The positions after the record a `next_offset` names, in the query's order: one value
    "ms,id", or the two values of the metadata list sent as they are (duo_client sends a list
    parameter as the key repeated, as DuoLogSync does with the authentication log's)."""
    parts = offset[0].split(",", 1) if len(offset) == 1 else offset
    numeric = [part for part in parts if part.isdigit()]
    time_text = numeric[0] if len(parts) == 2 and numeric else ""
    record_id = next((part for part in parts if part != time_text), "")
    if not time_text or not record_id:
        raise Invalid("next_offset must be the timestamp and the id, separated by a comma")
    mark = (int(time_text), record_id)
    if ascending:
        return [p for p in positions if (feed.times[p], feed.ids[p]) > mark]
    return [p for p in positions if (feed.times[p], feed.ids[p]) < mark]
