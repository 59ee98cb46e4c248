"""Jira Service Management issues: Jira Cloud's enhanced search (`/rest/api/3/search/jql`, the
removed `/rest/api/3/search` answering 410) and Jira Data Center's search
(`/jira/rest/api/2/search`, a Data Center instance at the context path `/jira`).

Sources:
- The 2025 change, https://developer.atlassian.com/changelog/#CHANGE-2046 (quoted in
  https://github.com/ctreminiom/go-atlassian/issues/345): `GET`/`POST /rest/api/3/search` (and
  `/rest/api/2/search` on Cloud) removed; they answer 410 "The requested API has been removed.
  Please migrate to the /rest/api/3/search/jql API" (https://github.com/pycontribs/jira/issues/2369).
- Enhanced search, https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get
  (parameters as in jira.js `SearchForIssuesUsingJqlEnhancedSearch`): `jql`, `maxResults`
  (default 50), `nextPageToken`, `fields`, `expand`; "only issue IDs are returned by default",
  `fields=*all` / `*navigable` / a list; the answer `{"issues", "nextPageToken" (absent on the
  last page), "isLast"}`; no `startAt`, no `total`; a JQL without a search restriction is refused
  ("Unbounded JQL queries are not allowed here"). The page size cap used here (5000 for ids
  alone, 100 with fields) is not confirmed.
- Jira Data Center search, https://docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/search:
  `jql`, `startAt`, `maxResults` (default 50), `fields` (default `*navigable`); the answer
  `{"expand", "startAt", "maxResults", "total", "issues"}`.
- JQL, https://support.atlassian.com/jira-software-cloud/docs/jql-fields/ and date formats
  https://confluence.atlassian.com/spaces/JIRA052/pages/314448708/__JQL+Date+Time+Formats:
  `"yyyy/MM/dd HH:mm"`, `"yyyy-MM-dd HH:mm"`, `"yyyy/MM/dd"`, `"yyyy-MM-dd"` or relative (`-5m`,
  `-2h`, `-1d`, `-1w`), minute precision, in the user's time zone (UTC here); operators `=`,
  `!=`, `>`, `>=`, `<`, `<=`, `in`, `not in`, `AND`, `OR`, parentheses, `ORDER BY f [ASC|DESC]`.
- Auth: Basic with the account e-mail and an API token
  (https://developer.atlassian.com/cloud/jira/software/basic-auth-for-rest-apis/); Data Center:
  Basic user and password.
- Rate limits, https://developer.atlassian.com/cloud/jira/platform/rate-limiting/: 429 with
  `Retry-After` (seconds) and `X-RateLimit-Reset` (ISO 8601).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from pipeline.simulate.tenant.framework import (
    Vendor,
    json_response,
    page_token,
    read_token,
    retry_after_header,
)
from pipeline.simulate.tenant.rollout import Feed, parse_millis

REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full "
    "migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
# JQL field -> where an issue holds it
_FIELDS: dict[str, tuple[str, ...]] = {
    "project": ("fields", "project", "key"),
    "updated": ("fields", "updated"),
    "updateddate": ("fields", "updated"),
    "created": ("fields", "created"),
    "createddate": ("fields", "created"),
    "key": ("key",),
    "issuekey": ("key",),
    "status": ("fields", "status", "name"),
    "issuetype": ("fields", "issuetype", "name"),
    "type": ("fields", "issuetype", "name"),
    "labels": ("fields", "labels"),
}
_DATES = frozenset({"updated", "updateddate", "created", "createddate"})
_JQL = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>!=|>=|<=|=|>|<|~)'
    r"|(?P<punct>[(),])|(?P<word>[\w.\-/:]+))"
)
_RELATIVE = re.compile(r"(-?\d+)([mhdw])")


class JqlError(ValueError):
    pass


class _Search(Vendor):
    """What both Jira searches share: JQL, Basic auth, Jira's error bodies."""

    feed_name = ""
    user = ""
    secret = ""

    @property
    def feed(self) -> Feed:
        return getattr(self.tenant.rollout, self.feed_name)

    def matches(self, jql: str, now_ms: int, require_bound: bool) -> list[bytes]:
        test, order = parse_jql(jql, now_ms)
        if require_bound and test is None:
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            )
        feed = self.feed
        issues = [orjson.loads(line) for line in feed.lines[: feed.visible(now_ms)]]
        chosen = [issue for issue in issues if test is None or test(issue)]
        chosen.sort(key=lambda issue: int(issue["id"]) if str(issue["id"]).isdigit() else 0)
        if not order:
            order = [("created", True)]  # Jira's default order is by creation
        for field, descending in reversed(order):
            chosen.sort(key=lambda issue, f=field: _sort_key(issue, f), reverse=descending)
        return [orjson.dumps(issue) for issue in chosen]

    def authenticate(self, request: web.Request, need: str) -> web.Response | None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, secret = base64.b64decode(credential).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = secret = ""
        if (
            scheme != "Basic"
            or user != self.user
            or not secrets.compare_digest(secret, self.secret)
        ):
            return _errors(
                401, "You are not authenticated. Authentication required to perform this operation."
            )
        return None

    def throttled(self, request: web.Request, retry_after: float) -> web.Response:
        response = _errors(429, "Rate limit exceeded.")
        response.headers["Retry-After"] = retry_after_header(retry_after)
        reset = datetime.now(UTC) + timedelta(seconds=retry_after)
        response.headers["X-RateLimit-Reset"] = reset.strftime("%Y-%m-%dT%H:%MZ")
        return response

    def server_error(self, request: web.Request) -> web.Response:
        return _errors(500, "Internal server error")

    async def params(self, request: web.Request) -> dict[str, Any]:
        """A search's parameters, from the query string (GET) or the JSON body (POST)."""
        if request.method == "POST":
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                raise JqlError("The request body is not valid JSON.") from None
            return body if isinstance(body, dict) else {}
        params: dict[str, Any] = dict(request.query)
        if "fields" in request.query:
            params["fields"] = [
                name for value in request.query.getall("fields") for name in value.split(",")
            ]
        return params


class JiraCloudAPI(_Search):
    key = "jira"
    feed_name = "jira"

    def __init__(self, tenant: Any) -> None:
        super().__init__(tenant)
        self.email = "pipeline.collector@example.com"
        self.api_token = "ATATT" + secrets.token_urlsafe(32)
        self.user, self.secret = self.email, self.api_token

    def routes(self) -> list[web.RouteDef]:
        search = self.endpoint(self.search)
        return [
            web.get("/rest/api/3/search/jql", search),
            web.post("/rest/api/3/search/jql", search),
            *(
                route(path, self.removed)
                for path in ("/rest/api/3/search", "/rest/api/2/search")
                for route in (web.get, web.post)
            ),
        ]

    async def removed(self, request: web.Request) -> web.Response:
        return _errors(410, REMOVED)

    async def search(self, request: web.Request) -> web.Response:
        try:
            params = await self.params(request)
            if params.get("nextPageToken"):
                saved = read_token(str(params["nextPageToken"]))
                if saved is None:
                    raise JqlError("The provided next page token is invalid or expired.")
                jql, fields, at, offset = saved["j"], saved["f"], saved["a"], saved["o"]
                size = saved["m"]
            else:
                jql, fields = str(params.get("jql", "")), list(params.get("fields") or [])
                at, offset = self.tenant.clock.millis(), 0
                cap = 5000 if set(fields) <= {"id", "key"} else 100
                size = min(_positive(params.get("maxResults", 50), "maxResults"), cap)
            issues = self.matches(jql, at, require_bound=True)
        except JqlError as exc:
            return _errors(400, str(exc))
        page = [_shape(orjson.loads(line), fields) for line in issues[offset : offset + size]]
        body: dict[str, Any] = {"issues": page}
        last = offset + size >= len(issues)
        if not last:
            body["nextPageToken"] = page_token(
                {"j": jql, "f": fields, "a": at, "o": offset + size, "m": size}
            )
        body["isLast"] = last
        return json_response(body)


class JiraDataCenterAPI(_Search):
    key = "jira_dc"
    feed_name = "jira_dc"

    def __init__(self, tenant: Any) -> None:
        super().__init__(tenant)
        self.user = "pipeline.collector"
        self.password = secrets.token_urlsafe(24)
        self.secret = self.password

    @property
    def base_url(self) -> str:
        return f"{self.tenant.url}/jira"

    def routes(self) -> list[web.RouteDef]:
        search = self.endpoint(self.search)
        return [
            web.get("/jira/rest/api/2/search", search),
            web.post("/jira/rest/api/2/search", search),
        ]

    async def search(self, request: web.Request) -> web.Response:
        try:
            params = await self.params(request)
            start = _positive(params.get("startAt", 0), "startAt", allow_zero=True)
            size = min(_positive(params.get("maxResults", 50), "maxResults"), 1000)
            issues = self.matches(str(params.get("jql", "")), self.tenant.clock.millis(), False)
        except JqlError as exc:
            return _errors(400, str(exc))
        fields = list(params.get("fields") or ["*navigable"])
        page = [_shape(orjson.loads(line), fields) for line in issues[start : start + size]]
        return json_response(
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(issues),
                "issues": page,
            }
        )


def _errors(status: int, message: str) -> web.Response:
    return json_response({"errorMessages": [message], "errors": {}}, status=status)


def _positive(value: Any, name: str, allow_zero: bool = False) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise JqlError(f"The value '{value}' is invalid for the '{name}' parameter.") from None
    if number < (0 if allow_zero else 1):
        raise JqlError(f"The value '{value}' is invalid for the '{name}' parameter.")
    return number


def _shape(issue: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """An issue as a search returns it for `fields` (none: the id alone)."""
    if not fields:
        return {"id": issue["id"]}
    if "*all" in fields or "*navigable" in fields:
        return issue
    head = {name: issue[name] for name in ("expand", "id", "self", "key") if name in issue}
    wanted = {name for name in fields if not name.startswith("-")}
    return {**head, "fields": {k: v for k, v in issue["fields"].items() if k in wanted}}


# --- JQL --------------------------------------------------------------------------------

Test = Callable[[dict[str, Any]], bool]


def parse_jql(text: str, now_ms: int) -> tuple[Test | None, list[tuple[str, bool]]]:
    """The condition (None: no restriction) and the ORDER BY of a JQL query."""
    where, order_text = _split_order(text)
    order = []
    for part in order_text.split(",") if order_text.strip() else []:
        words = part.split()
        if not words or words[0].lower() not in _FIELDS or len(words) > 2:
            raise JqlError(f"Error in the JQL Query: cannot order by '{part.strip()}'.")
        descending = len(words) == 2 and words[1].lower() == "desc"
        order.append((words[0].lower(), descending))
    tokens = [(kind, value) for kind, value in _jql_tokens(where)]
    if not tokens:
        return None, order
    test, at = _j_or(tokens, 0, now_ms)
    if at != len(tokens):
        raise JqlError(f"Error in the JQL Query: unexpected '{tokens[at][1]}'.")
    return test, order


def _split_order(text: str) -> tuple[str, str]:
    match = re.search(r"\border\s+by\b", text, flags=re.IGNORECASE)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.end() :]


def _jql_tokens(text: str) -> list[tuple[str, str]]:
    tokens, position, text = [], 0, text.strip()
    while position < len(text):
        match = _JQL.match(text, position)
        if match is None or match.end() == position:
            raise JqlError(f"Error in the JQL Query: cannot read character {position + 1}.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def _j_or(tokens: list[tuple[str, str]], at: int, now: int) -> tuple[Test, int]:
    left, at = _j_and(tokens, at, now)
    while at < len(tokens) and tokens[at][0] == "word" and tokens[at][1].lower() == "or":
        right, at = _j_and(tokens, at + 1, now)
        left = (lambda a, b: lambda issue: a(issue) or b(issue))(left, right)
    return left, at


def _j_and(tokens: list[tuple[str, str]], at: int, now: int) -> tuple[Test, int]:
    left, at = _j_clause(tokens, at, now)
    while at < len(tokens) and tokens[at][0] == "word" and tokens[at][1].lower() == "and":
        right, at = _j_clause(tokens, at + 1, now)
        left = (lambda a, b: lambda issue: a(issue) and b(issue))(left, right)
    return left, at


def _j_clause(tokens: list[tuple[str, str]], at: int, now: int) -> tuple[Test, int]:
    if at >= len(tokens):
        raise JqlError("Error in the JQL Query: the query ends too early.")
    if tokens[at] == ("punct", "("):
        inner, at = _j_or(tokens, at + 1, now)
        if at >= len(tokens) or tokens[at] != ("punct", ")"):
            raise JqlError("Error in the JQL Query: a parenthesis is not closed.")
        return inner, at + 1
    field = tokens[at][1].lower()
    if field not in _FIELDS:
        raise JqlError(
            f"Field '{tokens[at][1]}' does not exist or you do not have permission to view it."
        )
    if at + 1 >= len(tokens):
        raise JqlError(f"Error in the JQL Query: no operator after '{tokens[at][1]}'.")
    operator = tokens[at + 1][1].lower()
    at += 2
    if operator == "not" and at < len(tokens) and tokens[at][1].lower() == "in":
        operator, at = "not in", at + 1
    if operator in ("in", "not in"):
        if at >= len(tokens) or tokens[at] != ("punct", "("):
            raise JqlError("Error in the JQL Query: 'in' takes a list in parentheses.")
        wanted, at = [], at + 1
        while at < len(tokens) and tokens[at] != ("punct", ")"):
            if tokens[at] != ("punct", ","):
                wanted.append(_j_value(field, tokens[at], now))
            at += 1
        return _j_in(field, wanted, operator == "not in"), at + 1
    if operator not in ("=", "!=", ">", ">=", "<", "<=") or at >= len(tokens):
        raise JqlError(f"Error in the JQL Query: unsupported operator '{operator}'.")
    return _j_compare(field, operator, _j_value(field, tokens[at], now)), at + 1


def _j_value(field: str, token: tuple[str, str], now: int) -> Any:
    kind, value = token
    text = value[1:-1] if kind == "string" else value
    if field not in _DATES:
        return text.lower()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        minutes = {"m": 1, "h": 60, "d": 1440, "w": 10080}[unit]
        return now - now % 60_000 + amount * minutes * 60_000
    for pattern in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(moment.timestamp() * 1000)
    raise JqlError(
        f"Date value '{text}' for field '{field}' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
        "e.g. '-5d', '4w 2d'."
    )


def _issue_values(issue: dict[str, Any], field: str) -> list[Any]:
    value: Any = issue
    for step in _FIELDS[field]:
        value = value.get(step) if isinstance(value, dict) else None
    values = value if isinstance(value, list) else [value]
    if field in _DATES:
        return [parse_millis(v, field) for v in values if v]
    return [str(v).lower() for v in values if v is not None]


def _j_compare(field: str, operator: str, wanted: Any) -> Test:
    def test(issue: dict[str, Any]) -> bool:
        for value in _issue_values(issue, field):
            if {
                "=": value == wanted,
                "!=": value != wanted,
                ">": value > wanted,
                ">=": value >= wanted,
                "<": value < wanted,
                "<=": value <= wanted,
            }[operator]:
                return True
        return False

    return test


def _j_in(field: str, wanted: list[Any], negate: bool) -> Test:
    return lambda issue: any(v in wanted for v in _issue_values(issue, field)) != negate


def _sort_key(issue: dict[str, Any], field: str) -> Any:
    values = _issue_values(issue, field)
    return values[0] if values else ""
