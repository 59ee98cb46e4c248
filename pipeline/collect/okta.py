"""Okta: the System Log API, `GET /api/v1/logs`, into the Okta raw topic.

Okta's guidance, and what this collector does with it (System Log API reference,
https://developer.okta.com/docs/reference/api/system-log/, and "System Log query",
https://developer.okta.com/docs/reference/system-log-query/):
- A *polling* request (`since`, no `until`, `sortOrder=ASCENDING`) filters by Okta's internal
  persistence time "to avoid skipping records due to system delays", may return events "out of
  order according to the `published` field", and always has a `next` link, "even if there
  are no new events". Okta says to "always follow the `next` links" and never to craft
  `after` yourself, and not to page by `since`/`until` windows ("may lead to skipped or
  duplicated events"). So `since` goes on the first request only; the cursor is the `next`
  link itself (its `after` token), kept in Kafka and followed on restart. Resuming from the
  newest `published` instead, as Elastic's integration does, re-reads or skips events that
  Okta persisted late.
- A polling round ends at a short page (fewer events than `limit`): the `next` link is saved
  and followed at the next poll, instead of spending a request on the empty page that always
  follows (elastic/integrations#15212).
- A backfill (`--since/--until`) is a *bounded* request: filtered by `published`, in order,
  its last page has no `next`; pages are followed to that last one, an empty page pointing to
  itself (events not persisted yet) is asked again after a back-off.
- `limit=1000`, the maximum, cuts requests tenfold (elastic/integrations#2776). Okta's
  `X-Rate-Limit-Remaining` / `X-Rate-Limit-Reset` headers pace the next request (a spent
  budget waits for its reset); a 429 (E0000047) waits until `X-Rate-Limit-Reset`
  (https://developer.okta.com/docs/reference/rl-best-practices/).
- Authentication: an API token, `Authorization: SSWS <token>`, or, as Okta recommends, an
  API service app's OAuth 2.0 access token for the scope `okta.logs.read` (client
  credentials with a `private_key_jwt` client assertion, "Implement OAuth for Okta with a
  service app", https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/).
  The token lasts an hour; a 401 fetches a new one once. DPoP-bound tokens are not supported:
  turn "Require Demonstrating Proof of Possession" off for the app.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx
import msgspec
from pydantic import SecretStr

from pipeline.collect.auth import (
    BearerAuth,
    OAuthTokens,
    StaticAuth,
    client_credentials_form,
    private_key_jwt,
)
from pipeline.collect.http import VendorClient
from pipeline.collect.paging import Call, LinkHeader, pages
from pipeline.collect.runner import Collector, Context, Page, Span, cursor_time, user_key
from pipeline.collect.settings import OktaSettings
from pipeline.collect.watermark import iso
from pipeline.model import Source
from pipeline.sources._common import RejectedEvent, parse_time

LOGS_PATH = "/api/v1/logs"
LOGS_SCOPE = "okta.logs.read"
USERS_SCOPE = "okta.users.read"


def permission(scope: str) -> str:
    return (
        f"grant the API service app the {scope} scope (its Okta API Scopes tab) and an admin "
        "role that can read it (Read-only Administrator), or use an API token (SSWS) of an "
        "admin with that access (PIPELINE_OKTA_TOKEN)"
    )


class _Published(msgspec.Struct):
    published: str | None = None


_published = msgspec.json.Decoder(_Published)


def newest_published(records: list[bytes], newest: datetime | None) -> datetime | None:
    """The newest `published` among `records` and `newest` (events come out of order)."""
    for raw in records:
        try:
            when = parse_time(_published.decode(raw).published, "published")
        except (msgspec.DecodeError, RejectedEvent):
            continue
        if newest is None or when > newest:
            newest = when
    return newest


class SystemLog:
    """The System Log as one stream; its cursor is the `next` link to follow."""

    name = "logs"

    def __init__(self, client: VendorClient, limit: int) -> None:
        self._client = client
        self._limit = limit

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        newest = cursor_time(cursor)
        if cursor is not None:
            if not cursor.get("next"):  # a backfill read to its last page
                return
            first = Call(str(cursor["next"]))
        else:
            params: dict[str, Any] = {
                "since": iso(span.start),
                "sortOrder": "ASCENDING",
                "limit": self._limit,
            }
            if span.end is not None:
                params["until"] = iso(span.end)
            first = Call(LOGS_PATH, params)
        stalled = "wait" if span.backfill else "end"
        for fetched in pages(self._client, first, LinkHeader(), pace=LOGS_PATH, stalled=stalled):
            newest = newest_published(fetched.records, newest)
            following = str(fetched.next.url) if fetched.next is not None else None
            yield Page(
                fetched.records, {"next": following, "time": iso(newest) if newest else None}
            )
            if not span.backfill and len(fetched.records) < self._limit:
                return  # caught up: the saved `next` is where the next poll starts


def okta_client(context: Context, settings: OktaSettings, scope: str) -> VendorClient:
    """A client of the org's API, with an API token or a service app's access token."""
    settings.required("url")
    base = str(settings.url).rstrip("/")
    auth: httpx.Auth
    token = settings.secret("token")
    if token is not None:
        auth = StaticAuth("Authorization", SecretStr(f"SSWS {token.get_secret_value()}"))
    else:
        client_id = settings.client_id
        if client_id is None:
            raise ValueError(
                "set PIPELINE_OKTA_TOKEN, or PIPELINE_OKTA_CLIENT_ID and PIPELINE_OKTA_PRIVATE_KEY"
            )
        token_url = f"{base}/oauth2/v1/token"
        assertion = private_key_jwt(
            client_id, token_url, settings.required_secret("private_key"), settings.key_id
        )
        form = client_credentials_form(scope)
        token_client = context.client(
            "okta",
            "check PIPELINE_OKTA_CLIENT_ID, that the app's public key matches "
            f"PIPELINE_OKTA_PRIVATE_KEY, and that the {scope} scope is granted to the app",
            base_url=base,
        )
        auth = BearerAuth(OAuthTokens(token_client, token_url, lambda: {**form(), **assertion()}))
    return context.client("okta", permission(scope), base_url=base, auth=auth)


def build(context: Context) -> Collector:
    settings = OktaSettings()
    client = okta_client(context, settings, LOGS_SCOPE)
    return Collector(
        name="okta",
        tenant=httpx.URL(str(settings.url)).host,
        topic=context.topics.raw(Source.OKTA),
        streams=[SystemLog(client, settings.limit)],
        poll_seconds=settings.poll_seconds,
        key=user_key(Source.OKTA),
    )
