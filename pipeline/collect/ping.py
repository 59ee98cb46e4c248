"""PingOne: the audit activities into the Ping raw topic.

What Ping documents, and what this collector does with it:
- "Read Audit Activities", `GET {apiPath}/environments/{envID}/activities`
  (https://developer.pingidentity.com/pingone-api/platform/audit-activities/get-user-activities.html):
  "the minimum filter must include a date range", a SCIM filter on `recordedAt`, which takes
  `ge`, `gt`, `le` and `lt` ("Query parameter quick reference",
  https://developer.pingidentity.com/pingone-api/platform/reference/query-parameter-quick-reference.html):
  each request asks for `recordedAt ge "<start>" AND recordedAt lt "<end>"`, half-open, so
  slices neither overlap nor leave a gap. Pages are `_embedded.activities`, followed by
  `_links.next.href`; the order is newest first (Elastic's integration reads its cursor off
  the first event of the first page), so the cursor is a time watermark moved slice by slice
  (`pipeline.collect.watermark`).
- The endpoint "has a lower rate limit than other endpoints"
  (https://developer.pingidentity.com/pingone-api/platform/audit-activities.html), a number Ping
  does not publish: a 429 waits its `Retry-After`, else backs off.
- Token: a worker application's client credentials, `POST {authPath}/{envID}/as/token`,
  with Client Secret Basic (PingOne's default) or Post; regions by the domain's top level
  (`com`, `eu`, `asia`, `ca`, `com.au`, `sg`: auth.pingone.TLD and api.pingone.TLD,
  https://developer.pingidentity.com/pingone-api/foundations/conventions/pingone-api-requests.html).
  The worker app needs a role that can read audit activities.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from pipeline.collect.auth import BearerAuth, OAuthTokens, client_credentials_form
from pipeline.collect.http import VendorClient
from pipeline.collect.paging import BodyLink, Call, Fetched, pages
from pipeline.collect.runner import Collector, Context, Page, Span, user_key
from pipeline.collect.settings import PingSettings
from pipeline.collect.watermark import Slicing, round_end, round_start, sliced
from pipeline.model import Source

PAGES = BodyLink(records_path=("_embedded", "activities"), link_path=("_links", "next", "href"))
PERMISSION = (
    "give the worker application a role whose permissions include reading audit activities "
    "(Environment Admin, or a custom role), in the environment PIPELINE_PING_ENVIRONMENT_ID"
)


def ping_time(when: datetime) -> str:
    """`yyyy-MM-dd'T'HH:mm:ss.SSSZ`, the form Ping's filter examples use."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class Activities:
    name = "activities"

    def __init__(self, client: VendorClient, path: str, settings: PingSettings) -> None:
        self._client = client
        self._path = path
        self._settings = settings
        self._slicing = Slicing(
            first=settings.slice, largest=max(settings.slice, settings.slice_max)
        )

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        start = round_start(cursor, span, self._settings.overlap)
        end = round_end(span, self._settings.delay)
        yield from sliced(start, end, cursor, self._slicing, self._slice)

    def _slice(self, start: datetime, end: datetime) -> Iterator[Fetched]:
        condition = f'recordedAt ge "{ping_time(start)}" AND recordedAt lt "{ping_time(end)}"'
        params = {"filter": condition, "limit": self._settings.limit}
        return pages(self._client, Call(self._path, params), PAGES, pace="ping:activities")


def build(context: Context) -> Collector:
    settings = PingSettings()
    settings.required("environment_id", "client_id")
    secret = settings.required_secret("client_secret")
    environment = str(settings.environment_id)
    token_url = f"{settings.auth_base().rstrip('/')}/{environment}/as/token"
    token_auth: httpx.Auth | None = None
    grant = client_credentials_form()

    def form() -> dict[str, str]:
        if token_auth is not None:
            return grant()
        return {
            **grant(),
            "client_id": str(settings.client_id),
            "client_secret": secret.get_secret_value(),
        }

    if settings.client_auth == "client_secret_basic":
        token_auth = httpx.BasicAuth(str(settings.client_id), secret.get_secret_value())
    token_client = context.client(
        "ping",
        "check PIPELINE_PING_CLIENT_ID, the client secret and PIPELINE_PING_CLIENT_AUTH (the "
        "worker app's token endpoint authentication method)",
        auth=token_auth,
    )
    tokens = OAuthTokens(token_client, token_url, form)
    client = context.client(
        "ping", PERMISSION, base_url=settings.api_base().rstrip("/"), auth=BearerAuth(tokens)
    )
    path = f"/environments/{environment}/activities"
    return Collector(
        name="ping",
        tenant=environment,
        topic=context.topics.raw(Source.PING),
        streams=[Activities(client, path, settings)],
        poll_seconds=settings.poll_seconds,
        key=user_key(Source.PING),
    )
