"""Jira (Service Management): issues into the tickets raw topic, from Jira Cloud's enhanced
search, `GET /rest/api/3/search/jql`, or Jira Data Center's (and Server's) search,
`GET /rest/api/2/search` (PIPELINE_JIRA_DEPLOYMENT=cloud|datacenter). Both take the same JQL,
and each record goes on as Jira sent it.

What Atlassian documents, and what this collector does with it:
- Cloud: `/rest/api/3/search` was removed in 2025 (CHANGE-2046; it answers 410 "Please migrate
  to the /rest/api/3/search/jql API", https://github.com/pycontribs/jira/issues/2369). Its
  replacement takes `jql`, `maxResults`, `fields` and `nextPageToken`, returns "only issue
  IDs … by default" (so `fields` is sent: PIPELINE_JIRA_FIELDS, `*navigable` by default,
  which holds the request-type custom field), and pages by `nextPageToken`, null or absent
  on the last page, with `isLast` (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/).
  There is no `startAt` and no reliable `total`; an empty page ends the walk whatever token
  it carries (a token chain that never ends has been reported,
  https://github.com/smaramwbc/statewave/issues/233).
- Data Center keeps `/rest/api/2/search` (https://docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/search):
  `jql`, `startAt` (0-based), `maxResults` (50 by default, capped by the instance's
  `jira.search.views.default.max`, https://jira.atlassian.com/browse/JRASERVER-23960), `fields`;
  the answer `{"expand", "startAt", "maxResults", "total", "issues"}`. It is paged by offset
  (paging.OffsetParam): the next page starts after the records read, until an empty page or
  `startAt + len(issues) >= total`. An offset walk over issues ordered by `updated` shifts
  when one is updated during it: it leaves the round's set (its `updated` is now past the
  round's end) and the issues after it move up one place, so the first of the next page
  would be skipped. `total` shows it (the set shrank), and the walk starts again from the
  watermark (paging.restarting); the moved issue itself is read by the next round (its new
  `updated` is past the watermark), and what is read twice the warehouse stores once by its
  issue id.
- JQL dates have minute precision and are read in the API user's time zone
  (PIPELINE_JIRA_TIMEZONE; https://confluence.atlassian.com/spaces/JIRA052/pages/314448708/__JQL+Date+Time+Formats):
  the query is `(<your JQL>) AND updated >= "<watermark>" AND updated < "<round end>" ORDER BY
  updated ASC`, the watermark floored to its minute, so that the minute it fell in is read
  again; the watermark moves page by page to the newest `fields.updated` read, and a live
  round also re-reads PIPELINE_JIRA_OVERLAP.
- Authentication. Cloud: HTTP Basic with the Atlassian account's e-mail and an API token
  (https://developer.atlassian.com/cloud/jira/software/basic-auth-for-rest-apis/). Data
  Center: a personal access token as `Authorization: Bearer` (Jira 8.14 and later,
  https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html),
  or HTTP Basic with a username and password (the simulated tenant's Data Center takes this).
- Rate limits: a 429 waits its `Retry-After` (Cloud keeps burst limits for API-token
  traffic, https://developer.atlassian.com/cloud/jira/platform/rate-limiting/; Data Center
  8.6 and later rate-limits REST users as its admin configures,
  https://confluence.atlassian.com/adminjiraserver/improving-instance-stability-with-rate-limiting-983794911.html).
- The cursor is kept per instance: `jira/<host[:port]/context path>/issues/…`, so that a Cloud
  site and a Data Center instance collected side by side keep cursors of their own (a Cloud
  site's key, `jira/acme.atlassian.net/…`, is what it was before Data Center was supported).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
from pydantic import SecretStr

from pipeline.collect.auth import StaticAuth
from pipeline.collect.http import VendorClient
from pipeline.collect.paging import Call, Fetched, OffsetParam, TokenParam, pages, restarting
from pipeline.collect.runner import Collector, Context, Page, Span, user_key
from pipeline.collect.settings import JiraSettings
from pipeline.collect.watermark import iso, round_end, round_start
from pipeline.model import Source
from pipeline.sources._common import RejectedEvent, parse_time

CLOUD_PATH = "/rest/api/3/search/jql"
CLOUD_PAGES = TokenParam(
    records_path=("issues",),
    token_path=("nextPageToken",),
    param="nextPageToken",
    last_path=("isLast",),
    empty_ends=True,
)
DATACENTER_PATH = "/rest/api/2/search"
DATACENTER_PAGES = OffsetParam(records_path=("issues",), param="startAt", total_path=("total",))
PERMISSION = {
    "cloud": "give the account PIPELINE_JIRA_EMAIL the Browse projects permission on the "
    "service project(s) (and check its API token, PIPELINE_JIRA_API_TOKEN)",
    "datacenter": "give the user of PIPELINE_JIRA_PAT (or PIPELINE_JIRA_USERNAME) the Browse "
    "Projects permission on the service project(s) (and check the token or password, and "
    "that PIPELINE_JIRA_URL holds the context path, e.g. https://jira.acme.com/jira)",
}


class _Fields(msgspec.Struct):
    updated: str | None = None


class _Issue(msgspec.Struct):
    fields: _Fields | None = None


_issue = msgspec.json.Decoder(_Issue)


def updated(raw: bytes) -> datetime | None:
    try:
        fields = _issue.decode(raw).fields
        return parse_time(fields.updated if fields else None, "fields.updated")
    except (msgspec.DecodeError, RejectedEvent):
        return None


def _minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


class Issues:
    name = "issues"

    def __init__(self, client: VendorClient, settings: JiraSettings) -> None:
        self._client = client
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)

    def _jql_time(self, when: datetime) -> str:
        return when.astimezone(self._zone).strftime("%Y/%m/%d %H:%M")

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        since = _minute(round_start(cursor, span, self._settings.overlap, field="since"))
        end = round_end(span, timedelta())
        # The end's minute is read whole: a backfill ends on the minute after it, a live round
        # on the current minute (its later events come with the next round).
        end = _minute(end) + timedelta(minutes=1) if span.backfill else _minute(end)
        if since >= end:
            return
        watermark = since

        def search(path: str) -> Call:
            # From the watermark as it stands (a Data Center walk starts again from there).
            return Call(path, self._params(_minute(watermark), end))

        walk: Iterator[Fetched]
        if self._settings.deployment == "cloud":
            walk = pages(self._client, search(CLOUD_PATH), CLOUD_PAGES, pace="jira")
        else:
            walk = restarting(
                self._client,
                lambda: search(DATACENTER_PATH),
                DATACENTER_PAGES,
                count=lambda fetched: DATACENTER_PAGES.total(fetched.body),
                pace="jira",
            )
        for fetched in walk:
            for raw in fetched.records:
                if (when := updated(raw)) is not None and when > watermark:
                    watermark = when
            yield Page(fetched.records, {"since": iso(watermark), "time": iso(watermark)})

    def _params(self, since: datetime, end: datetime) -> dict[str, Any]:
        condition = f'updated >= "{self._jql_time(since)}" AND updated < "{self._jql_time(end)}"'
        jql = f"({self._settings.jql}) AND {condition}" if self._settings.jql else condition
        return {
            "jql": f"{jql} ORDER BY updated ASC",
            "maxResults": self._settings.max_results,
            "fields": ",".join(self._settings.fields),
        }


def instance(base: str) -> str:
    """The instance a cursor belongs to: host, port when not the default, and context path
    (a Data Center instance at https://acme.com/jira is not one at https://acme.com)."""
    url = httpx.URL(base)
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.host}{port}{url.path.rstrip('/')}"


def build(context: Context) -> Collector:
    settings = JiraSettings()
    credentials = settings.credentials()
    auth: httpx.Auth
    if isinstance(credentials, SecretStr):  # a Data Center personal access token
        auth = StaticAuth("Authorization", SecretStr(f"Bearer {credentials.get_secret_value()}"))
    else:
        user, secret = credentials
        auth = httpx.BasicAuth(user, secret.get_secret_value())
    base = str(settings.url).rstrip("/")
    permission = PERMISSION[settings.deployment]
    client = context.client("jira", permission, base_url=base, auth=auth)
    return Collector(
        name="jira",
        tenant=instance(base),
        topic=context.topics.raw(Source.TICKETS),
        streams=[Issues(client, settings)],
        poll_seconds=settings.poll_seconds,
        key=user_key(Source.TICKETS),
    )
