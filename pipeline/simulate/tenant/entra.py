"""Microsoft: the identity platform's token endpoint and OpenID configuration, and Microsoft
Graph's sign-ins, directory audits and users.

Sources:
- Client credentials, https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow:
  `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`, `client_id`,
  `client_secret` and `scope=https://graph.microsoft.com/.default`; the answer is
  `{"token_type": "Bearer", "expires_in", "ext_expires_in", "access_token"}`, errors
  `{"error", "error_description": "AADSTS…", "error_codes", "timestamp", "trace_id",
  "correlation_id"}` (AADSTS7000215 invalid secret, AADSTS700016 unknown application,
  AADSTS90002 unknown tenant, AADSTS1002012 a scope without `/.default`:
  https://learn.microsoft.com/entra/identity-platform/reference-error-codes). The OpenID
  configuration at `/{tenant}/v2.0/.well-known/openid-configuration` names the token endpoint
  (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc); MSAL Python reads it
  (msal/authority.py: `tenant_discovery`), needs an `https` authority and, for a host it does not
  know, `instance_discovery=False` (or it asks login.microsoftonline.com).
- Sign-ins, https://learn.microsoft.com/graph/api/signin-list?view=graph-rest-beta: the beta
  endpoint is the one with `authenticationDetails` and `signInEventTypes`; `$filter` on
  `createdDateTime` (eq, le, ge) and `signInEventTypes/any(t: t eq 'nonInteractiveUser')`
  (values interactiveUser, nonInteractiveUser, servicePrincipal, managedIdentity); without a
  `signInEventTypes` filter only interactive sign-ins come back
  (https://learn.microsoft.com/entra/identity/monitoring-health/concept-all-sign-ins#return-log-data-with-microsoft-graph);
  "the maximum and default page size is 1,000 objects and by default, the most recent sign-ins
  are returned first" (v1.0 page); `$top`, `$skiptoken`, `$filter` (`$skip` and `$orderby` are
  not supported); pages are `{"@odata.context", "@odata.nextLink"?, "value": [...]}` and the
  next link embeds `$skiptoken`.
- Directory audits, https://learn.microsoft.com/graph/api/directoryaudit-list: `$filter` on
  `activityDateTime` (eq, ge, le), `loggedByService`, `category`, `activityDisplayName`,
  `initiatedBy/user/id`…, `$top`, `$skiptoken`; newest first, as the sign-ins.
- Users, https://learn.microsoft.com/graph/api/user-list: "By default, only a limited set of
  properties are returned (businessPhones, displayName, givenName, id, jobTitle, mail,
  mobilePhone, officeLocation, preferredLanguage, surname, and userPrincipalName)"; others
  (`department`, `country`, `usageLocation`, `accountEnabled`, `createdDateTime`,
  `employeeHireDate`, `employeeLeaveDateTime`) only with `$select`; `$top` 1-999 (default 100),
  `$filter`, `$expand=manager` (https://learn.microsoft.com/graph/api/user-list-manager).
- Permissions: `AuditLog.Read.All` for the audit logs, `User.Read.All` (or
  `Directory.Read.All`) for users; a token without them gets 403 Authorization_RequestDenied;
  an expired one 401 InvalidAuthenticationToken ("Lifetime validation failed, the token is
  expired.") (https://learn.microsoft.com/graph/errors).
- Throttling, https://learn.microsoft.com/graph/throttling: 429 with `Retry-After` (seconds)
  and the error code TooManyRequests; the identity and access reports (`auditLogs`) allow 5
  requests per 10 seconds per app per tenant
  (https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from pipeline.simulate.tenant import scim
from pipeline.simulate.tenant.framework import (
    Vendor,
    iso_millis,
    json_response,
    page_token,
    read_token,
    retry_after_header,
    url,
)
from pipeline.simulate.tenant.rollout import Employee, Feed, day_millis
from pipeline.simulate.vendors.entra import TENANT_ID

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ROLES = frozenset({"AuditLog.Read.All", "Directory.Read.All", "User.Read.All"})
USER_ROLES = frozenset({"User.Read.All", "Directory.Read.All"})
DOMAIN = "example.com"
USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)


class BadRequest(Exception):
    """A 400 in Graph's error shape."""


class MicrosoftAPI(Vendor):
    key = "entra"

    def __init__(self, tenant: Any) -> None:
        super().__init__(tenant)
        self.tenant_id = TENANT_ID
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(30)
        self.roles = ROLES
        # Identity and access reports: 5 requests per 10 s per app per tenant.
        self.reports_limit = self.rate_limit(5, 10.0)
        self._cache: dict[tuple, list[int]] = {}

    @property
    def authority(self) -> str:
        return f"{self.tenant.url}/{self.tenant_id}"

    @property
    def graph_url(self) -> str:
        return self.tenant.url

    def routes(self) -> list[web.RouteDef]:
        reports = self.reports_limit
        signins = self.endpoint(self.signins, need="AuditLog.Read.All", limit=reports)
        audits = self.endpoint(self.audits, need="AuditLog.Read.All", limit=reports)
        users = self.endpoint(self.users, need="users")
        return [
            web.get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid),
            web.post("/{tenant}/oauth2/v2.0/token", self.token),
            web.get("/beta/auditLogs/signIns", signins),
            web.get("/v1.0/auditLogs/directoryAudits", audits),
            web.get("/beta/auditLogs/directoryAudits", audits),
            web.get("/v1.0/users", users),
            web.get("/beta/users", users),
        ]

    # --- the identity platform ----------------------------------------------------------

    def _known(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id, DOMAIN)

    async def openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known(tenant):
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = url(request, f"/{self.tenant_id}")
        return json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known(tenant):
            return _aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return _aad_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type; this tenant serves "
                "client_credentials.",
            )
        if form.get("client_id") != self.client_id:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the "
                f"directory '{self.tenant_id}'.",
            )
        secret = str(form.get("client_secret", ""))
        if not secrets.compare_digest(secret, self.client_secret):
            return _aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID.",
            )
        if str(form.get("scope", "")).split() != [GRAPH_SCOPE]:
            return _aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        token, expires_in = self.tokens.issue(self.client_id, self.roles, 3599.0)
        return json_response(
            {
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": token,
            }
        )

    # --- Graph ----------------------------------------------------------------------------

    def signins(self, request: web.Request) -> web.Response:
        return self._log(request, self.tenant.rollout.signins, "signIns", interactive_only=True)

    def audits(self, request: web.Request) -> web.Response:
        return self._log(request, self.tenant.rollout.audits, "directoryAudits", False)

    def _log(
        self, request: web.Request, feed: Feed, name: str, interactive_only: bool
    ) -> web.Response:
        """A page of an audit log, newest first."""
        try:
            query = self._query(request, default_top=1000, max_top=1000)
            if "$orderby" in request.query:
                raise BadRequest("Query option '$orderby' is not allowed on this resource.")
            key = (request.path, query["f"], query["a"])
            if key not in self._cache:
                self._cache = dict(list(self._cache.items())[-31:])
                test = _odata(query["f"]) if query["f"] else None
                if interactive_only and "signInEventTypes" not in query["f"]:
                    test = _both(test, _interactive)
                visible = feed.visible(query["a"])
                self._cache[key] = [
                    i
                    for i in range(visible - 1, -1, -1)
                    if test is None or test(orjson.loads(feed.lines[i]))
                ]
            matches = self._cache[key]
        except BadRequest as exc:
            return _graph_error(400, "BadRequest", str(exc))
        offset, top = query["o"], query["t"]
        lines = [feed.lines[i] for i in matches[offset : offset + top]]
        version = request.path.split("/")[1]
        head = {"@odata.context": url(request, f"/{version}/$metadata#auditLogs/{name}")}
        if offset + top < len(matches):
            head["@odata.nextLink"] = _next(request, query, offset + top)
        body = orjson.dumps(head)[:-1] + b',"value":[' + b",".join(lines) + b"]}"
        return web.Response(body=body, content_type="application/json")

    def users(self, request: web.Request) -> web.Response:
        try:
            query = self._query(request, default_top=100, max_top=999)
            test = _odata(query["f"]) if query["f"] else None
            select = _names(query["s"]) or list(USER_DEFAULT)
            manager_select = _expand_manager(query["e"])
        except BadRequest as exc:
            return _graph_error(400, "BadRequest", str(exc))
        people = [
            person
            for person in self.tenant.rollout.employees
            if day_millis(person.row.active_from) <= query["a"]
        ]
        people.sort(key=lambda person: person.entra_id)
        full = [(_user(person, query["a"]), person) for person in people]
        chosen = [(user, person) for user, person in full if test is None or test(user)]
        offset, top = query["o"], query["t"]
        value = []
        for user, person in chosen[offset : offset + top]:
            item = {name: user[name] for name in select if name in user}
            if manager_select is not None and person.manager is not None:
                boss = _user(person.manager, query["a"])
                names = manager_select or ["id", "displayName", "userPrincipalName", "mail"]
                item["manager"] = {
                    "@odata.type": "#microsoft.graph.user",
                    **{name: boss[name] for name in names if name in boss},
                }
            value.append(item)
        version = request.path.split("/")[1]
        body: dict[str, Any] = {"@odata.context": url(request, f"/{version}/$metadata#users")}
        if offset + top < len(chosen):
            body["@odata.nextLink"] = _next(request, query, offset + top)
        body["value"] = value
        return json_response(body)

    def _query(self, request: web.Request, default_top: int, max_top: int) -> dict[str, Any]:
        """The query of a page: from its `$skiptoken` (the first page's query, its time and
        the offset), or from the request (the first page)."""
        params = request.query
        if "$skip" in params:
            raise BadRequest("Query option '$skip' is not allowed on this resource.")
        if "$skiptoken" in params:
            saved = read_token(params["$skiptoken"])
            if saved is None or saved.get("p") != request.path:
                raise BadRequest("Invalid skip token.")
            return saved
        top = params.get("$top", str(default_top))
        if not top.isdigit() or not 1 <= int(top) <= max_top:
            raise BadRequest(
                f"Invalid page size specified: '{top}'. Must be between 1 and {max_top}."
            )
        filter_text = params.get("$filter", "")
        if filter_text:
            _odata(filter_text)  # a bad filter fails on the first page
        return {
            "p": request.path,
            "f": filter_text,
            "s": params.get("$select", ""),
            "e": params.get("$expand", ""),
            "t": int(top),
            "a": self.tenant.clock.millis(),
            "o": 0,
        }

    # --- what every Graph endpoint shares ---------------------------------------------------

    def authenticate(self, request: web.Request, need: str) -> web.Response | None:
        grant = self.bearer(request)
        if isinstance(grant, str):
            message = {
                "missing": "Access token is empty.",
                "invalid": "Access token validation failure. Invalid audience.",
                "expired": "Lifetime validation failed, the token is expired.",
            }[grant]
            return _graph_error(401, "InvalidAuthenticationToken", message)
        allowed = USER_ROLES if need == "users" else frozenset({need})
        if not grant.scopes & allowed:
            return _graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        return None

    def throttled(self, request: web.Request, retry_after: float) -> web.Response:
        response = _graph_error(
            429,
            "TooManyRequests",
            "Too many requests. This request is throttled; retry after the time in Retry-After.",
        )
        response.headers["Retry-After"] = retry_after_header(retry_after)
        return response

    def server_error(self, request: web.Request) -> web.Response:
        return _graph_error(500, "generalException", "An unspecified error has occurred.")

    def reset(self) -> None:
        super().reset()
        self.roles = ROLES
        self._cache.clear()


def _next(request: web.Request, query: dict[str, Any], offset: int) -> str:
    token = page_token({**query, "o": offset})
    return url(request, query={"$top": str(query["t"]), "$skiptoken": token})


def _graph_error(status: int, code: str, message: str) -> web.Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return json_response(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": now,
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        },
        status=status,
    )


def _aad_error(status: int, error: str, code: int, message: str) -> web.Response:
    trace = str(uuid.uuid4())
    return json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {message} Trace ID: {trace}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
        },
        status=status,
    )


def _user(person: Employee, now: int) -> dict[str, Any]:
    row = person.row
    first, last = person.first_last
    left = row.terminated_on is not None and day_millis(row.terminated_on) <= now
    hired = iso_millis(day_millis(row.active_from))[:19] + "Z"
    return {
        "businessPhones": [],
        "displayName": row.display_name,
        "givenName": first,
        "id": person.entra_id,
        "jobTitle": None,
        "mail": row.user,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": last,
        "userPrincipalName": row.user,
        "accountEnabled": not left,
        "createdDateTime": hired,
        "employeeHireDate": hired,
        "employeeLeaveDateTime": (
            iso_millis(day_millis(row.terminated_on))[:19] + "Z" if row.terminated_on else None
        ),
        "department": row.department,
        "country": row.country,
        "usageLocation": row.country,
        "userType": "Member",
    }


def _names(select: str) -> list[str]:
    return [name.strip() for name in select.split(",") if name.strip()]


def _expand_manager(expand: str) -> list[str] | None:
    """None without `$expand=manager`; else the manager's `$select` (empty: the default)."""
    if not expand:
        return None
    match = re.fullmatch(r"\s*manager\s*(?:\(\s*\$select\s*=\s*([^)]*)\))?\s*", expand)
    if match is None:
        raise BadRequest(f"Could not find a navigation property for '{expand}' on user.")
    return _names(match.group(1) or "")


def _interactive(record: Any) -> bool:
    return "interactiveUser" in (record.get("signInEventTypes") or ["interactiveUser"])


# --- OData $filter: comparisons, startswith(), any() lambdas, and / or / not ---------------

Test = Callable[[Any, dict[str, Any]], bool]
_ODATA = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<time>\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)?)"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<punct>[(),:])|(?P<name>[A-Za-z_$][\w/$.]*))"
)
_COMPARE = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


def _odata(text: str) -> Callable[[Any], bool]:
    tokens = list(_odata_tokens(text))
    test, at = _o_or(tokens, 0)
    if at != len(tokens):
        raise BadRequest(f"Invalid filter clause: unexpected '{tokens[at][1]}'.")
    return lambda record: test(record, {})


def _odata_tokens(text: str) -> Iterator[tuple[str, str]]:
    position, text = 0, text.strip()
    while position < len(text):
        match = _ODATA.match(text, position)
        if match is None:
            raise BadRequest(f"Invalid filter clause: syntax error at position {position}.")
        kind = match.lastgroup or ""
        yield kind, match.group(kind)
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1


def _o_or(tokens: list[tuple[str, str]], at: int) -> tuple[Test, int]:
    left, at = _o_and(tokens, at)
    while at < len(tokens) and tokens[at] == ("name", "or"):
        right, at = _o_and(tokens, at + 1)
        left = _o_either(left, right)
    return left, at


def _o_and(tokens: list[tuple[str, str]], at: int) -> tuple[Test, int]:
    left, at = _o_factor(tokens, at)
    while at < len(tokens) and tokens[at] == ("name", "and"):
        right, at = _o_factor(tokens, at + 1)
        left = _o_both(left, right)
    return left, at


def _o_factor(tokens: list[tuple[str, str]], at: int) -> tuple[Test, int]:
    if at >= len(tokens):
        raise BadRequest("Invalid filter clause: the expression ends too early.")
    kind, value = tokens[at]
    if (kind, value) == ("name", "not"):
        inner, at = _o_factor(tokens, at + 1)
        return (lambda record, env: not inner(record, env)), at
    if (kind, value) == ("punct", "("):
        inner, at = _o_or(tokens, at + 1)
        _expect(tokens, at, ")")
        return inner, at + 1
    if kind != "name":
        raise BadRequest(f"Invalid filter clause: unexpected '{value}'.")
    if value.lower() in ("startswith", "endswith") and _is(tokens, at + 1, "("):
        path = tokens[at + 2][1]
        _expect(tokens, at + 3, ",")
        literal = _o_literal(tokens, at + 4)
        _expect(tokens, at + 5, ")")
        ends = value.lower() == "endswith"

        def affix(record: Any, env: dict[str, Any]) -> bool:
            return any(
                isinstance(item, str)
                and isinstance(literal, str)
                and (item.lower().endswith if ends else item.lower().startswith)(literal.lower())
                for item in _o_values(record, env, path)
            )

        return affix, at + 6
    if value.endswith("/any") and _is(tokens, at + 1, "("):
        collection = value[: -len("/any")]
        variable = tokens[at + 2][1]
        _expect(tokens, at + 3, ":")
        inner, end = _o_or(tokens, at + 4)
        _expect(tokens, end, ")")

        def any_of(record: Any, env: dict[str, Any]) -> bool:
            return any(
                inner(record, {**env, variable: item})
                for item in _o_values(record, env, collection)
            )

        return any_of, end + 1
    if at + 2 >= len(tokens) or tokens[at + 1][1] not in _COMPARE:
        raise BadRequest(f"Invalid filter clause: no comparison after '{value}'.")
    operator = tokens[at + 1][1]
    literal = _o_literal(tokens, at + 2)
    return _o_compare(value, operator, literal), at + 3


def _is(tokens: list[tuple[str, str]], at: int, punct: str) -> bool:
    return at < len(tokens) and tokens[at] == ("punct", punct)


def _expect(tokens: list[tuple[str, str]], at: int, punct: str) -> None:
    if not _is(tokens, at, punct):
        raise BadRequest(f"Invalid filter clause: '{punct}' expected.")


def _o_literal(tokens: list[tuple[str, str]], at: int) -> Any:
    if at >= len(tokens):
        raise BadRequest("Invalid filter clause: a value is missing.")
    kind, value = tokens[at]
    if kind == "string":
        return value[1:-1].replace("''", "'")
    if kind == "time":
        try:
            return datetime.fromisoformat(value if value[-1:] != "Z" else value[:-1] + "+00:00")
        except ValueError:
            raise BadRequest(f"Invalid filter clause: '{value}' is not a DateTimeOffset.") from None
    if kind == "number":
        return orjson.loads(value)
    if (kind, value) in (("name", "true"), ("name", "false"), ("name", "null")):
        return orjson.loads(value)
    raise BadRequest(f"Invalid filter clause: '{value}' is not a value.")


def _o_values(record: Any, env: dict[str, Any], path: str) -> list[Any]:
    head, _, rest = path.partition("/")
    if head in env:
        item = env[head]
        return [item] if not rest else scim.values(item, rest.replace("/", "."))
    return scim.values(record, path.replace("/", "."))


def _o_compare(path: str, operator: str, literal: Any) -> Test:
    def test(record: Any, env: dict[str, Any]) -> bool:
        for item in _o_values(record, env, path) or [None]:
            left: Any = item
            if isinstance(literal, datetime) and isinstance(item, str):
                try:
                    left = datetime.fromisoformat(item.replace("Z", "+00:00"))
                except ValueError:
                    continue
            try:
                if {
                    "eq": left == literal,
                    "ne": left != literal,
                    "gt": left is not None and left > literal,
                    "ge": left is not None and left >= literal,
                    "lt": left is not None and left < literal,
                    "le": left is not None and left <= literal,
                }[operator]:
                    return True
            except TypeError:
                continue
        return False

    return test


def _o_either(left: Test, right: Test) -> Test:
    return lambda record, env: left(record, env) or right(record, env)


def _o_both(left: Test, right: Test) -> Test:
    return lambda record, env: left(record, env) and right(record, env)


def _both(
    left: Callable[[Any], bool] | None, right: Callable[[Any], bool]
) -> Callable[[Any], bool]:
    if left is None:
        return right
    return lambda record: left(record) and right(record)
