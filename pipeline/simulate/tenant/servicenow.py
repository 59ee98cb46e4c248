"""ServiceNow: the Table API's incidents (`GET /api/now/table/incident`), Basic auth.

Sources:
- Table API GET, https://docs.servicenow.com/bundle/geneva-servicenow-platform/page/integrate/inbound_rest/reference/r_TableAPI-GET.html
  (also `/api/now/v2/table/{tableName}`): `sysparm_query` (an encoded query: conditions joined
  by `^`, `^OR` for an alternative, `ORDERBY<field>` / `ORDERBYDESC<field>`; "invalid parts
  are ignored" unless `glide.invalid_query.returns_no_rows` is set: here a condition on a field
  no incident has is ignored), `sysparm_limit` (default 10000), `sysparm_offset`,
  `sysparm_fields` (the fields returned, dot-walked ones included), `sysparm_display_value`
  (the records are served as actual values, the default `false`), the answer
  `{"result": [...]}`. Paging: `X-Total-Count` and one `Link` header with
  `rel="first"`, `rel="prev"`, `rel="next"`, `rel="last"` (prev/next only where they apply;
  no Link header when there is one page), as Elastic's ServiceNow mock records it
  (elastic/integrations `packages/servicenow/_dev/deploy/docker/files/config.yml`). Each
  request runs the query again over the table as it is then (records updated since move).
- Encoded-query operators: https://docs.servicenow.com/bundle/utah-platform-user-interface/page/use/common-ui-elements/reference/r_OpAvailableFiltersQueries.html
  (`=`, `!=`, `>`, `>=`, `<`, `<=`, `STARTSWITH`, `ENDSWITH`, `LIKE`, `NOT LIKE`, `IN`);
  date-time values `YYYY-MM-DD HH:MM:SS`, read here in UTC (the integration user's time zone).
- Auth and errors: Basic (`user:password`); 401 `{"error": {"message": "User Not
  Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"}`.
- Rate limits, https://www.servicenow.com/docs/bundle/yokohama-api-reference/page/integrate/inbound-rest/concept/inbound-REST-API-rate-limiting.html:
  rules per hour set by the instance's admin (none by default); over one, 429 with
  `X-RateLimit-Limit`, `X-RateLimit-Reset` (Unix seconds) and `X-RateLimit-Rule`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from pipeline.simulate.tenant.framework import Vendor, json_response, url

TABLES = ("incident",)
DEFAULT_LIMIT = 10_000
# longest first: ">=" before ">"
_OPERATORS = ("NOT LIKE", "STARTSWITH", "ENDSWITH", "LIKE", "!=", ">=", "<=", "IN", "=", ">", "<")


class ServiceNowAPI(Vendor):
    key = "servicenow"

    def __init__(self, tenant: Any) -> None:
        super().__init__(tenant)
        self.user = "pipeline.collector"
        self.password = secrets.token_urlsafe(24)
        self._fields = {
            name for line in tenant.rollout.servicenow.lines for name in orjson.loads(line)
        }

    def routes(self) -> list[web.RouteDef]:
        table = self.endpoint(self.table, need="itil")
        return [
            web.get("/api/now/table/{table}", table),
            web.get("/api/now/v2/table/{table}", table),
        ]

    def table(self, request: web.Request) -> web.Response:
        if request.match_info["table"] not in TABLES:
            return _failure(400, f"Invalid table {request.match_info['table']}", None)
        query = request.query
        try:
            limit = _number(query.get("sysparm_limit", str(DEFAULT_LIMIT)), "sysparm_limit")
            offset = _number(query.get("sysparm_offset", "0"), "sysparm_offset")
        except ValueError as exc:
            return _failure(400, str(exc), None)
        test, order = self._encoded_query(query.get("sysparm_query", ""))
        feed = self.tenant.rollout.servicenow
        records = [
            orjson.loads(line) for line in feed.lines[: feed.visible(self.tenant.clock.millis())]
        ]
        chosen = [record for record in records if test(record)]
        chosen.sort(key=lambda record: record.get("sys_id", ""))
        for field, descending in reversed(order):
            chosen.sort(key=lambda record, f=field: _value(record, f) or "", reverse=descending)
        page = chosen[offset : offset + limit]
        fields = [
            name.strip() for name in query.get("sysparm_fields", "").split(",") if name.strip()
        ]
        if fields:
            page = [{name: record[name] for name in fields if name in record} for record in page]
        response = json_response({"result": page})
        total = len(chosen)
        response.headers["X-Total-Count"] = str(total)
        if total > limit > 0:
            response.headers["Link"] = _links(request, limit, offset, total)
        return response

    def _encoded_query(self, text: str) -> tuple[Callable[[dict], bool], list[tuple[str, bool]]]:
        """The conditions (AND of OR groups) and the order of an encoded query."""
        groups: list[list[Callable[[dict], bool]]] = []
        order: list[tuple[str, bool]] = []
        for part in text.split("^") if text else []:
            if part.startswith("ORDERBYDESC"):
                order.append((part[len("ORDERBYDESC") :], True))
                continue
            if part.startswith("ORDERBY"):
                order.append((part[len("ORDERBY") :], False))
                continue
            alternative = part.startswith("OR") and groups
            condition = _condition(part[2:] if alternative else part, self._fields)
            if condition is None:
                continue  # an invalid part is ignored
            if alternative:
                groups[-1].append(condition)
            else:
                groups.append([condition])

        def test(record: dict) -> bool:
            return all(any(condition(record) for condition in group) for group in groups)

        return test, order

    def authenticate(self, request: web.Request, need: str) -> web.Response | None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(credential).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if (
            scheme != "Basic"
            or user != self.user
            or not secrets.compare_digest(password, self.password)
        ):
            return _failure(401, "User Not Authenticated", "Required to provide Auth information")
        return None

    def throttled(self, request: web.Request, retry_after: float) -> web.Response:
        response = _failure(
            429,
            "Rate limit exceeded",
            "The rate limit rule for this user has been exceeded; retry after the reset time.",
        )
        response.headers["X-RateLimit-Limit"] = "0"
        response.headers["X-RateLimit-Reset"] = str(
            int(self.tenant.clock.now() + retry_after + 0.999)
        )
        response.headers["X-RateLimit-Rule"] = "simulated-tenant-rule"
        return response

    def server_error(self, request: web.Request) -> web.Response:
        return _failure(
            500, "Internal Server Error", "An error occurred while processing the request"
        )


def _failure(status: int, message: str, detail: str | None) -> web.Response:
    return json_response(
        {"error": {"message": message, "detail": detail}, "status": "failure"}, status
    )


def _number(text: str, name: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{name} must be a non-negative integer")
    return int(text)


def _value(record: dict, field: str) -> str | None:
    value = record.get(field)
    if isinstance(value, dict):  # a reference: {"link", "value"}
        value = value.get("value")
    return None if value is None else str(value)


def _condition(part: str, fields: set[str]) -> Callable[[dict], bool] | None:
    for operator in _OPERATORS:
        field, found, wanted = part.partition(operator)
        if found and field and field in fields:
            break
    else:
        return None

    def holds(record: dict) -> bool:
        value = _value(record, field)
        if value is None:
            return operator in ("!=", "NOT LIKE")
        if operator == "IN":
            return value in wanted.split(",")
        if operator in ("LIKE", "NOT LIKE"):
            return (wanted.lower() in value.lower()) == (operator == "LIKE")
        if operator == "STARTSWITH":
            return value.lower().startswith(wanted.lower())
        if operator == "ENDSWITH":
            return value.lower().endswith(wanted.lower())
        return {
            "=": value == wanted,
            "!=": value != wanted,
            ">": value > wanted,
            ">=": value >= wanted,
            "<": value < wanted,
            "<=": value <= wanted,
        }[operator]

    return holds


def _links(request: web.Request, limit: int, offset: int, total: int) -> str:
    def link(to: int, rel: str) -> str:
        query = {**request.query, "sysparm_limit": str(limit), "sysparm_offset": str(to)}
        return f'<{url(request, query=query)}>;rel="{rel}"'

    last = ((total - 1) // limit) * limit
    links = [link(0, "first")]
    if offset > 0:
        links.append(link(max(offset - limit, 0), "prev"))
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    links.append(link(last, "last"))
    return ",".join(links)
