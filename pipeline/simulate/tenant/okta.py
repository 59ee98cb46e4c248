"""Okta: the System Log API (`GET /api/v1/logs`), the Users API (`GET /api/v1/users`) and the
org authorization server's token endpoint for service apps (`POST /oauth2/v1/token`).

Sources (stored copies of okta/okta-developer-docs):
- System Log, https://developer.okta.com/docs/reference/api/system-log/ ("List events"):
  `since`, `until`, `after`, `filter`, `q`, `sortOrder`, `limit` (0-1000, default 100);
  `since` defaults to 7 days before `until`, `until` to now; `since` and `after` are mutually
  exclusive and `after` is an opaque, system-generated token. A *polling* request (`until`
  unspecified, `sortOrder=ASCENDING`) filters by the events' internal persistence time, "may
  return events out of order according to the `published` field" and has "an infinite number
  of pages": "a `next` link relation header is always present, even if there are no new
  events (the event list may be empty)". A *bounded* request (`since` and `until`) filters by
  `published`, is in `published` order and its last page has no `next`. Responses carry
  `link: <url>; rel="self"` and, when there is one, `link: <url>; rel="next"` (two headers, as
  in Okta's examples). A SCIM `filter` cannot use `published`; an invalid one is a 400
  (E0000053); `q` keywords are case-insensitive, at most 10 of at most 40 characters each.
  Errors are `{"errorCode", "errorSummary", "errorId", "errorCauses"}`; over the rate limit,
  E0000047 "API call exceeded rate limit due to too many requests."
- Rate limits, https://developer.okta.com/docs/reference/rl-global-mgmt/ (`/api/v1/logs`: 120
  requests a minute for a Workforce Identity org) and
  https://developer.okta.com/docs/reference/rl-best-practices/ (every response carries
  `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining`, `X-Rate-Limit-Reset`, the UTC epoch second
  the window resets; Okta sends no Retry-After). The `/api/v1/users` limit used here, 600 a
  minute, is not confirmed by a stored page.
- Users, https://developer.okta.com/docs/reference/api/users/#list-users: `limit` (maximum and
  default 200; 10 with `q`), `after` (the cursor in the `next` link), `filter` (only `status`,
  `lastUpdated`, `id`, `profile.login`, `profile.email`, `profile.firstName`,
  `profile.lastName`), `search` (most properties), `q` (startsWith on first name, last name or
  e-mail, no paging); "List All Users" returns "all users that do not have a status of
  `DEPROVISIONED`" (a filter or search on `status` returns them). Profile properties
  `department`, `countryCode`, `manager`, `managerId`:
  https://developer.okta.com/docs/reference/api/users/#default-profile-properties.
- Service apps, https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/main/:
  client credentials with `private_key_jwt` only ("the only supported method for OAuth
  service apps that want to get access tokens with Okta scopes"); the client assertion is
  signed RS256/384/512 or ES256/384/512 with `iss` = `sub` = the client id, `aud` = the token
  URL, `exp` "a maximum of only an hour in the future", `jti` optional (against replay); the
  answer is `{"token_type": "Bearer", "expires_in": 3600, "access_token", "scope"}` ("the
  lifetime for this token is fixed at one hour"); the API then takes `Authorization: Bearer`.
  OAuth errors: https://developer.okta.com/docs/reference/api/oidc/#response-properties-2
  (`error`, `error_description`); API token errors: E0000011 "Invalid token provided" (401),
  E0000006 "You do not have permission to perform the requested action" (403) with a
  `WWW-Authenticate: Bearer … error="insufficient_scope"` for a token without the scope
  (https://developer.okta.com/docs/reference/error-codes/). DPoP is not required here.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.simulate.tenant import scim
from pipeline.simulate.tenant.framework import (
    DUE,
    Vendor,
    Window,
    iso_millis,
    json_response,
    page_token,
    raw_array,
    read_token,
    url,
)
from pipeline.simulate.tenant.rollout import Employee, day_millis, parse_millis

SCOPES = frozenset({"okta.logs.read", "okta.users.read"})
TOKEN_PATH = "/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
WEEK_MS = 7 * 24 * 3600 * 1000
USER_FILTER_ATTRIBUTES = frozenset(
    {
        "status",
        "lastUpdated",
        "id",
        "profile.login",
        "profile.email",
        "profile.firstName",
        "profile.lastName",
    }
)


class Refused(Exception):
    """A 400 in Okta's error shape."""

    def __init__(self, summary: str, code: str = "E0000001") -> None:
        super().__init__(summary)
        self.code = code


class OktaAPI(Vendor):
    key = "okta"

    def __init__(self, tenant: Any) -> None:
        super().__init__(tenant)
        self.api_token = "00" + secrets.token_urlsafe(30)
        self.client_id = "0oa" + secrets.token_hex(8)
        self.scopes = SCOPES
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(8)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.public_key = key.public_key()
        self.private_jwk = {
            **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key)),
            "kid": self.key_id,
            "alg": "RS256",
            "use": "sig",
        }
        self._jtis: set[str] = set()
        self._jti_lock = threading.Lock()
        self.logs_limit = self.rate_limit(120, 60.0)
        self.users_limit = self.rate_limit(600, 60.0)
        log = tenant.rollout.okta
        self._by_published_times = [log.published[i] for i in log.by_published]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(
                "/api/v1/logs",
                self.endpoint(self.logs, need="okta.logs.read", limit=self.logs_limit),
            ),
            web.get(
                "/api/v1/users",
                self.endpoint(self.users, need="okta.users.read", limit=self.users_limit),
            ),
            web.post(TOKEN_PATH, self.token),
        ]

    # --- the System Log ---------------------------------------------------------------

    def logs(self, request: web.Request) -> web.Response:
        try:
            return self._logs(request)
        except Refused as refused:
            return _error(400, refused.code, str(refused))

    def _logs(self, request: web.Request) -> web.Response:
        query = request.query
        limit = _limit(query.get("limit"), 100, 1000)
        order = query.get("sortOrder", "ASCENDING")
        if order not in ("ASCENDING", "DESCENDING"):
            raise Refused("Api validation failed: 'sortOrder': must be ASCENDING or DESCENDING")
        if "since" in query and "after" in query:
            raise Refused("Api validation failed: 'since' and 'after' are mutually exclusive.")
        matches = _record_test(query.get("filter"), query.get("q"))
        now = self.tenant.clock.millis()
        log = self.tenant.rollout.okta
        keep = {k: v for k, v in query.items() if k in ("limit", "sortOrder", "filter", "q")}
        if "after" in query:
            cursor = read_token(query["after"])
            if cursor is None or cursor.get("k") not in ("p", "b"):
                raise Refused("Api validation failed: 'after': not a valid cursor.")
        else:
            cursor = None
        due = request[DUE]
        polling = cursor["k"] == "p" if cursor else ("until" not in query and order == "ASCENDING")
        if polling:
            if cursor is None:
                since = _time(query, "since", now - WEEK_MS)
                cursor = {"k": "p", "i": bisect_left(log.times, since)}
            start = int(cursor["i"])
            positions = range(start, start if due.empty else max(start, log.visible(now)))
            lines, end = _scan(positions, log.lines.__getitem__, matches, limit)
            following: dict[str, Any] | None = {"k": "p", "i": end}
        else:
            if cursor is None:
                until = _time(query, "until", now)
                since = _time(query, "since", until - WEEK_MS)
                cursor = {"k": "b", "s": since, "u": until, "d": order == "DESCENDING"}
            ordered = self._bounded(cursor)

            def visible(position: int) -> bytes | None:
                index = log.by_published[ordered[position]]
                return log.lines[index] if log.times[index] <= now else None

            positions = range(0 if due.empty else len(ordered))
            lines, end = _scan(positions, visible, matches, limit)
            following = None
            if due.empty or end < len(ordered):
                following = {**cursor, "o": int(cursor.get("o", 0)) + end}
                keep["until"] = iso_millis(int(cursor["u"]))
        response = web.Response(body=raw_array(lines), content_type="application/json")
        response.headers.add("Link", f'<{url(request, query=dict(query))}>; rel="self"')
        if following is not None:
            link = url(request, query={**keep, "after": page_token(following)})
            response.headers.add("Link", f'<{link}>; rel="next"')
        return response

    def _bounded(self, cursor: dict[str, Any]) -> list[int]:
        """Positions (into `by_published`) of a bounded query's events, in its order, from
        where its cursor stands."""
        times = self._by_published_times
        first = bisect_left(times, int(cursor["s"]))
        last = bisect_left(times, int(cursor["u"]))
        positions = list(range(first, last))
        if cursor.get("d"):
            positions.reverse()
        return positions[int(cursor.get("o", 0)) :]

    # --- Users --------------------------------------------------------------------------

    def users(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            people = self._people(request)
            if "q" in query:
                limit = _limit(query.get("limit"), 10, 200)
                return json_response(people[:limit])
            limit = _limit(query.get("limit"), 200, 200)
        except Refused as refused:
            return _error(400, refused.code, str(refused))
        after = query.get("after")
        start = 0 if after is None else bisect_right([p["id"] for p in people], after)
        page = people[start : start + limit]
        response = json_response(page)
        response.headers.add("Link", f'<{url(request, query=dict(query))}>; rel="self"')
        if start + limit < len(people):
            keep = {k: v for k, v in query.items() if k != "after"}
            link = url(request, query={**keep, "limit": str(limit), "after": page[-1]["id"]})
            response.headers.add("Link", f'<{link}>; rel="next"')
        return response

    def _people(self, request: web.Request) -> list[dict[str, Any]]:
        """The org's users as of now, in id order, filtered as the query asks."""
        query = request.query
        now = self.tenant.clock.millis()
        everyone = [
            _user(person, now, url(request, f"/api/v1/users/{person.okta_id}"))
            for person in self.tenant.rollout.employees
            if day_millis(person.row.active_from) <= now
        ]
        everyone.sort(key=lambda user: user["id"])
        expression = query.get("filter") or query.get("search")
        if "filter" in query and "search" in query:
            raise Refused("Api validation failed: use either 'filter' or 'search'.")
        if expression is None:
            people = [user for user in everyone if user["status"] != "DEPROVISIONED"]
            if "q" in query:
                prefix = query["q"].lower()
                people = [
                    user
                    for user in people
                    if any(
                        str(user["profile"].get(name) or "").lower().startswith(prefix)
                        for name in ("firstName", "lastName", "email")
                    )
                ]
            return people
        try:
            test = scim.parse(expression)
        except scim.FilterError as exc:
            raise Refused(f"Invalid search criteria: {exc}", "E0000031") from None
        if "filter" in query and not scim.attributes(expression) <= USER_FILTER_ATTRIBUTES:
            raise Refused(
                "Invalid search criteria: the filter uses an unsupported property.", "E0000031"
            )
        return [user for user in everyone if test(user)]

    # --- OAuth 2.0 for service apps -------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server. "
                "Configured grant types: [client_credentials].",
            )
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return _oauth_error(
                401,
                "invalid_client",
                "Client authentication failed: this service app authenticates with "
                "private_key_jwt (client_assertion_type jwt-bearer and a client_assertion).",
            )
        problem = self._check_assertion(str(form["client_assertion"]), url(request, TOKEN_PATH))
        if problem:
            return _oauth_error(401, "invalid_client", problem)
        scopes = frozenset(str(form.get("scope", "")).split())
        if not scopes:
            return _oauth_error(400, "invalid_scope", "The authorization server requires a scope.")
        refused = sorted(scopes - self.scopes)
        if refused:
            return _oauth_error(
                400, "invalid_scope", f"The following scopes are not allowed: {refused}"
            )
        token, expires_in = self.tokens.issue(self.client_id, scopes, 3600.0)
        return json_response(
            {
                "token_type": "Bearer",
                "expires_in": expires_in,
                "access_token": token,
                "scope": " ".join(sorted(scopes)),
            }
        )

    def _check_assertion(self, assertion: str, audience: str) -> str | None:
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=ALGORITHMS,
                audience=audience,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"The client_assertion token is invalid: {exc}"
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            return "The client_assertion token's iss and sub must be the client_id."
        if claims["exp"] > time.time() + 3600 + 60:  # the wall clock, as PyJWT checks `exp`
            return "The client_assertion token has an expiration too far into the future."
        jti = claims.get("jti")
        if jti is not None:
            with self._jti_lock:
                if jti in self._jtis:
                    return "The client_assertion token has already been used."
                self._jtis.add(jti)
        return None

    # --- what every data endpoint shares --------------------------------------------------

    def authenticate(self, request: web.Request, need: str) -> web.Response | None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme == "SSWS":
            if secrets.compare_digest(credential.strip(), self.api_token):
                return None
            return _error(401, "E0000011", "Invalid token provided")
        grant = self.bearer(request)
        if isinstance(grant, str):
            response = _error(401, "E0000011", "Invalid token provided")
            if grant == "expired":
                response.headers["WWW-Authenticate"] = (
                    f'Bearer realm="{url(request, "/")}", error="invalid_token", '
                    'error_description="The token has expired."'
                )
            return response
        if need not in grant.scopes:
            response = _error(
                403, "E0000006", "You do not have permission to perform the requested action"
            )
            response.headers["WWW-Authenticate"] = (
                f'Bearer realm="{url(request, "/")}", error="insufficient_scope", '
                f'error_description="The access token provided does not contain the required '
                f'scopes.", scope="{need}"'
            )
            return response
        return None

    def throttled(self, request: web.Request, retry_after: float) -> web.Response:
        return _error(429, "E0000047", "API call exceeded rate limit due to too many requests.")

    def server_error(self, request: web.Request) -> web.Response:
        return _error(
            500,
            "E0000053",
            "Sorry, there's been an error. We aren't sure what caused it, but we've logged this "
            "and will work to address it. Please try your request again.",
        )

    def decorate(self, response: web.StreamResponse, window: Window, forced: float | None) -> None:
        remaining, reset = window.remaining, window.reset
        if forced is not None or window.wait:
            remaining = 0
            if forced is not None:
                reset = int(self.tenant.clock.now() + forced + 0.999)
        response.headers["X-Rate-Limit-Limit"] = str(window.limit)
        response.headers["X-Rate-Limit-Remaining"] = str(remaining)
        response.headers["X-Rate-Limit-Reset"] = str(reset)


def _error(status: int, code: str, summary: str) -> web.Response:
    return json_response(
        {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + uuid.uuid4().hex[:19],
            "errorCauses": [],
        },
        status=status,
    )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return json_response({"error": error, "error_description": description}, status=status)


def _limit(text: str | None, default: int, maximum: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Refused("Api validation failed: 'limit': must be an integer.") from None
    if not 0 <= value <= maximum:
        raise Refused(f"Api validation failed: 'limit': must be between 0 and {maximum}.")
    return value


def _time(query: Any, name: str, default: int) -> int:
    if name not in query:
        return default
    try:
        return parse_millis(query[name], name)
    except ValueError:
        raise Refused(
            f"Api validation failed: '{name}': The date format in your query is not recognized. "
            "Please enter dates using ISO8601 string format."
        ) from None


def _record_test(expression: str | None, keywords: str | None) -> Any:
    """A test on a record's JSON bytes for `filter` and `q`, or None for every record."""
    tests = []
    if expression:
        if "published" in scim.attributes(expression):
            raise Refused(
                "Invalid filter: SCIM filter expressions can't use the published attribute.",
                "E0000053",
            )
        try:
            predicate = scim.parse(expression)
        except scim.FilterError as exc:
            raise Refused(f"Invalid filter '{expression}': {exc}", "E0000053") from None
        tests.append(lambda line: predicate(orjson.loads(line)))
    if keywords:
        words = keywords.split()
        if len(words) > 10 or any(len(word) > 40 for word in words):
            raise Refused(
                "Api validation failed: 'q': Freeform search cannot contain items longer than 40 "
                "characters. Please shorten the items in your search or use an advanced filter "
                "to query by specific fields."
            )
        lowered = [word.lower().encode() for word in words]
        tests.append(lambda line: all(word in line.lower() for word in lowered))
    if not tests:
        return None
    return lambda line: all(test(line) for test in tests)


def _scan(
    positions: range, fetch: Callable[[int], bytes | None], matches: Any, limit: int
) -> tuple[list[bytes], int]:
    """Up to `limit` matching records from `positions` (`fetch`: a position's record, None
    when it is not visible yet), and the position after the last one looked at: where the
    next page starts."""
    picked: list[bytes] = []
    for at in positions:
        if len(picked) >= limit:
            return picked, at
        line = fetch(at)
        if line is not None and (matches is None or matches(line)):
            picked.append(line)
    return picked, positions.stop


def _user(person: Employee, now: int, href: str) -> dict[str, Any]:
    row = person.row
    first, last = person.first_last
    created = iso_millis(day_millis(row.active_from))
    left = row.terminated_on is not None and day_millis(row.terminated_on) <= now
    changed = iso_millis(day_millis(row.terminated_on)) if left and row.terminated_on else created
    manager = person.manager
    return {
        "id": person.okta_id,
        "status": "DEPROVISIONED" if left else "ACTIVE",
        "created": created,
        "activated": created,
        "statusChanged": changed,
        "lastLogin": None,
        "lastUpdated": changed,
        "passwordChanged": None,
        "type": {"id": "oty1simulatedtenant0"},
        "profile": {
            "firstName": first,
            "lastName": last,
            "displayName": row.display_name,
            "email": row.user,
            "login": row.user,
            "department": row.department,
            "countryCode": row.country,
            "manager": manager.row.display_name if manager else None,
            "managerId": manager.okta_id if manager else None,
        },
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": href}},
    }
