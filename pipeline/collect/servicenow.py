"""ServiceNow: incidents from the Table API, `GET /api/now/table/incident`, into the tickets
raw topic.

What ServiceNow documents, and what this collector does with it:
- Table API GET (https://docs.servicenow.com/bundle/geneva-servicenow-platform/page/integrate/inbound_rest/reference/r_TableAPI-GET.html):
  `sysparm_query` is an encoded query, `sysparm_fields` the fields returned (dot-walked ones
  such as `caller_id.email`, which the tickets parser reads the user from), `sysparm_limit`;
  pages are `{"result": [...]}`, paged by the `Link` header's `rel="next"`, with
  `X-Total-Count`. Dates are `YYYY-MM-DD HH:MM:SS` in the API user's time zone
  (PIPELINE_SERVICENOW_TIMEZONE; UTC is the usual setting for an integration user).
- The query is `sys_updated_on>=WATERMARK^sys_updated_on<END^QUERY^ORDERBYsys_updated_on`:
  `>=`, not Elastic's `>`, which skips the records updated in the watermark's own second
  (an update shares its second with others); ascending, so the watermark moves page by page
  (the newest `sys_updated_on` read), with an overlap on live rounds. The round's end is fixed
  when it starts: an incident updated during the walk leaves the result set, and the offsets
  of the following pages shift by one. `X-Total-Count` shows it (the set shrank), and the walk
  then starts again from the watermark, so no record slips between two pages.
- Authentication: HTTP Basic, or OAuth 2.0 for the same user (`POST /oauth_token.do`, the
  password grant with the OAuth application's client id and secret,
  https://docs.servicenow.com/bundle/vancouver-api-reference/page/integrate/inbound-rest/reference/r_RESTOAuthExample.html;
  the access token lasts 30 minutes by default and is fetched again as it ends, or on a 401).
- Rate limits are rules an admin sets per hour; a 429 carries `X-RateLimit-Reset`
  (https://www.servicenow.com/docs/bundle/yokohama-api-reference/page/integrate/inbound-rest/concept/inbound-REST-API-rate-limiting.html),
  waited for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec

from pipeline.collect.auth import BearerAuth, OAuthTokens
from pipeline.collect.http import VendorClient
from pipeline.collect.paging import Call, LinkHeader, pages
from pipeline.collect.runner import Collector, Context, Page, Span, user_key
from pipeline.collect.settings import ServiceNowSettings
from pipeline.collect.watermark import iso, round_end, round_start
from pipeline.model import Source
from pipeline.sources._common import RejectedEvent, parse_time

PAGES = LinkHeader(records_path=("result",))
# A walk restarted this often in one round (the table keeps changing under it) goes on
# following its links: it may then miss an update, which the next round's overlap reads.
RESTARTS = 10


def permission(table: str) -> str:
    return (
        f"give PIPELINE_SERVICENOW_USERNAME read access to the {table} table and to the "
        "caller's sys_user record (the itil role, or ACLs), and check its password"
    )


class _Updated(msgspec.Struct):
    sys_updated_on: str | dict[str, Any] | None = None


_updated = msgspec.json.Decoder(_Updated)


def updated_on(raw: bytes) -> datetime | None:
    """A record's `sys_updated_on` (UTC; with `sysparm_display_value=all`, its `value`)."""
    try:
        value = _updated.decode(raw).sys_updated_on
        if isinstance(value, dict):
            value = value.get("value")
        return parse_time(value, "sys_updated_on", naive_is_utc=True)
    except (msgspec.DecodeError, RejectedEvent):
        return None


class Table:
    def __init__(self, client: VendorClient, settings: ServiceNowSettings) -> None:
        self.name = settings.table
        self._client = client
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self._path = f"/api/now/table/{settings.table}"

    def _local(self, when: datetime) -> str:
        return when.astimezone(self._zone).strftime("%Y-%m-%d %H:%M:%S")

    def _first(self, since: datetime, end: datetime) -> Call:
        parts = [f"sys_updated_on>={self._local(since)}", f"sys_updated_on<{self._local(end)}"]
        if self._settings.query:
            parts.append(self._settings.query)
        parts.append("ORDERBYsys_updated_on")
        params = {
            "sysparm_query": "^".join(parts),
            "sysparm_fields": ",".join(self._settings.fields),
            "sysparm_limit": self._settings.limit,
            "sysparm_exclude_reference_link": "true",
        }
        return Call(self._path, params)

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        since = round_start(cursor, span, self._settings.overlap, field="since")
        end = round_end(span, timedelta())
        watermark = since
        restarts = 0
        while since < end:
            total: int | None = None
            walk = pages(self._client, self._first(since, end), PAGES, pace="servicenow")
            for fetched in walk:
                count = _total(fetched.response)
                moved = total is not None and count is not None and count < total
                total = count if total is None else total
                if moved and restarts < RESTARTS:
                    restarts += 1  # this page may have skipped a record: read from here again
                    break
                for raw in fetched.records:
                    if (when := updated_on(raw)) is not None and when > watermark:
                        watermark = when
                yield Page(fetched.records, {"since": iso(watermark), "time": iso(watermark)})
            else:
                return
            since = watermark


def _total(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["X-Total-Count"])
    except (KeyError, ValueError):
        return None


def build(context: Context) -> Collector:
    settings = ServiceNowSettings()
    settings.required("url", "username")
    base = str(settings.url).rstrip("/")
    password = settings.required_secret("password")
    auth: httpx.Auth
    if settings.client_id:
        secret = settings.required_secret("client_secret")
        token_client = context.client(
            "servicenow",
            "check PIPELINE_SERVICENOW_CLIENT_ID, its secret, and the user's password",
            base_url=base,
        )

        def form() -> dict[str, str]:
            return {
                "grant_type": "password",
                "client_id": str(settings.client_id),
                "client_secret": secret.get_secret_value(),
                "username": str(settings.username),
                "password": password.get_secret_value(),
            }

        auth = BearerAuth(OAuthTokens(token_client, "/oauth_token.do", form))
    else:
        auth = httpx.BasicAuth(str(settings.username), password.get_secret_value())
    client = context.client("servicenow", permission(settings.table), base_url=base, auth=auth)
    return Collector(
        name="servicenow",
        tenant=httpx.URL(base).host,
        topic=context.topics.raw(Source.TICKETS),
        streams=[Table(client, settings)],
        poll_seconds=settings.poll_seconds,
        key=user_key(Source.TICKETS),
    )
