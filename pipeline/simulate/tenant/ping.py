"""PingOne: a worker application's client-credentials token and the audit activities.

Sources:
- Audit activities, https://developer.pingidentity.com/pingone-api/platform/audit-activities/get-user-activities.html
  (and the POST variant, `…/get-user-activities-1.md`, the filter in a form body to keep it
  out of URLs): `GET /v1/environments/{envID}/activities?filter=…&limit=…`; "the minimum filter
  must include a date range for either the recorded event time or the created event time",
  e.g. `recordedAt gt "2018-08-20T00:00:00Z" AND recordedAt lt "2018-08-22T23:59:00Z"` (SCIM,
  see `scim.py`); pages are `{"_links": {"self": {"href"}, "next": {"href"}?}, "_embedded":
  {"activities": [...]}, "count", "size"}`, newest first (as Elastic's PingOne integration
  reads them: its cursor is the first event of the first page; elastic/integrations
  `packages/ping_one/data_stream/audit/agent/stream/httpjson.yml.hbs`), followed by
  `_links.next.href` until there is none. The API has "a lower rate limit than other
  endpoints" (https://developer.pingidentity.com/pingone-api/platform/audit-activities.html):
  its number is not published, so none is applied here. The 14-day default window
  (`get-read-activity-resources.md`) is not applied either.
- Token, https://developer.pingidentity.com/pingone-api/foundations/authorization-and-authentication.html:
  `POST {authPath}/{envID}/as/token` with `grant_type=client_credentials`, the client
  authenticated by `client_secret_basic` (Authorization: Basic) or `client_secret_post`; the
  answer `{"access_token", "token_type": "Bearer", "expires_in": 3600, "scope"}`; OAuth errors
  `{"error", "error_description"}`. Regions (`auth.pingone.{com,ca,eu,com.au,sg,asia}` and
  `api.pingone.…/v1`, https://developer.pingidentity.com/pingone-api/foundations/conventions/pingone-api-requests.html)
  are all this one server.
- API errors, https://developer.pingidentity.com/pingone-api/foundations/response-codes.html:
  `{"id", "code", "message", "details"?}`; INVALID_DATA (400), ACCESS_FAILED (401/403),
  REQUEST_LIMITED (429, with Retry-After), UNEXPECTED_ERROR (500). The exact message of an
  expired token is not confirmed.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from typing import Any

import orjson
from aiohttp import web

from pipeline.simulate.tenant import scim
from pipeline.simulate.tenant.framework import (
    Vendor,
    json_response,
    page_token,
    read_token,
    retry_after_header,
    url,
)

SCOPE = "p1:read:audit"


class PingOneAPI(Vendor):
    key = "ping"

    def __init__(self, tenant: Any) -> None:
        super().__init__(tenant)
        self.environment_id = tenant.rollout.ping_environment or str(uuid.uuid4())
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(40)
        self._cache: dict[tuple, list[int]] = {}

    @property
    def auth_url(self) -> str:
        return self.tenant.url

    @property
    def api_url(self) -> str:
        return f"{self.tenant.url}/v1"

    def routes(self) -> list[web.RouteDef]:
        activities = self.endpoint(self.activities, need=SCOPE)
        path = "/v1/environments/{env}/activities"
        return [
            web.post("/{env}/as/token", self.token),
            web.get(path, activities),
            web.post(path, activities),
        ]

    async def token(self, request: web.Request) -> web.Response:
        if request.match_info["env"] != self.environment_id:
            return _oauth(404, "invalid_request", "The environment does not exist.")
        form = await request.post()
        client, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Basic":
            try:
                client, _, secret = base64.b64decode(credential).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client = secret = ""
        if form.get("grant_type") != "client_credentials":
            return _oauth(400, "unsupported_grant_type", "The grant type is not supported.")
        if client != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return _oauth(
                401,
                "invalid_client",
                f"Request denied: Invalid client credentials (Correlation ID: {uuid.uuid4()})",
            )
        token, expires_in = self.tokens.issue(client, frozenset({SCOPE}), 3600.0)
        return json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": expires_in,
                "scope": SCOPE,
            }
        )

    async def activities(self, request: web.Request) -> web.Response:
        if request.match_info["env"] != self.environment_id:
            return _error(404, "NOT_FOUND", "The requested resource was not found.")
        params = dict(request.query)
        if request.method == "POST":
            params.update({key: str(value) for key, value in (await request.post()).items()})
        if "cursor" in params:
            query = read_token(params["cursor"])
            if query is None:
                return _invalid("cursor", "The cursor is not valid.")
        else:
            text = params.get("filter", "")
            if not {"recordedAt", "createdAt"} & scim.attributes(text) if text else True:
                return _invalid(
                    "filter",
                    "The minimum filter must include a date range for either the recorded "
                    "event time or the created event time.",
                )
            try:
                scim.parse(text)
            except scim.FilterError as exc:
                return _invalid("filter", f"Invalid filter: {exc}")
            limit = params.get("limit", "100")
            if not limit.isdigit() or not 1 <= int(limit) <= 1000:
                return _invalid("limit", "limit must be between 1 and 1000.")
            query = {"f": text, "l": int(limit), "a": self.tenant.clock.millis(), "o": 0}
        feed = self.tenant.rollout.ping
        key = (query["f"], query["a"])
        if key not in self._cache:
            self._cache = dict(list(self._cache.items())[-31:])
            test = scim.parse(query["f"])
            visible = feed.visible(int(query["a"]))
            self._cache[key] = [
                i for i in range(visible - 1, -1, -1) if test(orjson.loads(feed.lines[i]))
            ]
        matches = self._cache[key]
        offset, limit = int(query["o"]), int(query["l"])
        lines = [feed.lines[i] for i in matches[offset : offset + limit]]
        links: dict[str, Any] = {"self": {"href": str(request.url)}}
        if offset + limit < len(matches):
            following = page_token({**query, "o": offset + limit})
            links["next"] = {"href": url(request, query={"cursor": following})}
        head = orjson.dumps({"_links": links})[:-1]
        body = b'%s,"_embedded":{"activities":[%s]},"count":%d,"size":%d}' % (
            head,
            b",".join(lines),
            len(lines),
            len(lines),
        )
        return web.Response(body=body, content_type="application/json")

    def authenticate(self, request: web.Request, need: str) -> web.Response | None:
        grant = self.bearer(request)
        if grant == "expired":
            return _error(401, "ACCESS_FAILED", "The access token has expired.")
        if isinstance(grant, str):
            return _error(
                401,
                "ACCESS_FAILED",
                "The request could not be completed. You do not have access to this resource.",
            )
        if need not in grant.scopes:
            return _error(
                403,
                "ACCESS_FAILED",
                "The request could not be completed. You do not have access to this resource.",
            )
        return None

    def throttled(self, request: web.Request, retry_after: float) -> web.Response:
        response = _error(
            429, "REQUEST_LIMITED", "The request could not be completed. Too many requests."
        )
        response.headers["Retry-After"] = retry_after_header(retry_after)
        return response

    def server_error(self, request: web.Request) -> web.Response:
        return _error(500, "UNEXPECTED_ERROR", "An unexpected error occurred.")

    def reset(self) -> None:
        super().reset()
        self._cache.clear()


def _error(status: int, code: str, message: str, details: list | None = None) -> web.Response:
    body: dict[str, Any] = {"id": str(uuid.uuid4()), "code": code, "message": message}
    if details:
        body["details"] = details
    return json_response(body, status=status)


def _invalid(target: str, message: str) -> web.Response:
    return _error(
        400,
        "INVALID_DATA",
        "The request could not be completed. One or more validation errors were in the request.",
        [{"code": "INVALID_VALUE", "target": target, "message": message}],
    )


def _oauth(status: int, error: str, description: str) -> web.Response:
    return json_response({"error": error, "error_description": description}, status=status)
