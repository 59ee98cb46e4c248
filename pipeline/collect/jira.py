"""Jira Cloud (Service Management): issues from the enhanced search, `GET /rest/api/3/search/jql`,
into the tickets raw topic.

What Atlassian documents, and what this collector does with it:
- `/rest/api/3/search` was removed in 2025 (CHANGE-2046; it answers 410 "Please migrate to
  the /rest/api/3/search/jql API", https://github.com/pycontribs/jira/issues/2369). Its
  replacement takes `jql`, `maxResults`, `fields` and `nextPageToken`, returns "only issue
  IDs … by default" (so `fields` is sent: PIPELINE_JIRA_FIELDS, `*navigable` by default,
  which holds the request-type custom field), and pages by `nextPageToken`, null or absent
  on the last page, with `isLast` (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/).
  There is no `startAt` and no reliable `total`; an empty page ends the walk whatever token
  it carries (a token chain that never ends has been reported,
  https://github.com/smaramwbc/statewave/issues/233).
- JQL dates have minute precision and are read in the API user's time zone
  (PIPELINE_JIRA_TIMEZONE; https://confluence.atlassian.com/spaces/JIRA052/pages/314448708/__JQL+Date+Time+Formats):
  the query is `(<your JQL>) AND updated >= "<watermark>" AND updated < "<round end>" ORDER BY
  updated ASC`, the watermark floored to its minute, so that the minute it fell in is read
  again; the watermark moves page by page to the newest `fields.updated` read, and a live
  round also re-reads PIPELINE_JIRA_OVERLAP.
- Authentication: HTTP Basic with the Atlassian account's e-mail and an API token
  (https://developer.atlassian.com/cloud/jira/software/basic-auth-for-rest-apis/). API-token
  traffic keeps Jira's burst limits: a 429 waits its `Retry-After`
  (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec

from pipeline.collect.http import VendorClient
from pipeline.collect.paging import Call, TokenParam, pages
from pipeline.collect.runner import Collector, Context, Page, Span, user_key
from pipeline.collect.settings import JiraSettings
from pipeline.collect.watermark import iso, round_end, round_start
from pipeline.model import Source
from pipeline.sources._common import RejectedEvent, parse_time

SEARCH_PATH = "/rest/api/3/search/jql"
PAGES = TokenParam(
    records_path=("issues",),
    token_path=("nextPageToken",),
    param="nextPageToken",
    last_path=("isLast",),
    empty_ends=True,
)
PERMISSION = (
    "give the account PIPELINE_JIRA_EMAIL the Browse projects permission on the service "
    "project(s) (and check its API token, PIPELINE_JIRA_API_TOKEN)"
)


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
        condition = f'updated >= "{self._jql_time(since)}" AND updated < "{self._jql_time(end)}"'
        jql = f"({self._settings.jql}) AND {condition}" if self._settings.jql else condition
        params = {
            "jql": f"{jql} ORDER BY updated ASC",
            "maxResults": self._settings.max_results,
            "fields": ",".join(self._settings.fields),
        }
        watermark = since
        for fetched in pages(self._client, Call(SEARCH_PATH, params), PAGES, pace="jira"):
            for raw in fetched.records:
                if (when := updated(raw)) is not None and when > watermark:
                    watermark = when
            yield Page(fetched.records, {"since": iso(watermark), "time": iso(watermark)})


def build(context: Context) -> Collector:
    settings = JiraSettings()
    settings.required("url", "email")
    token = settings.required_secret("api_token")
    base = str(settings.url).rstrip("/")
    auth = httpx.BasicAuth(str(settings.email), token.get_secret_value())
    client = context.client("jira", PERMISSION, base_url=base, auth=auth)
    return Collector(
        name="jira",
        tenant=httpx.URL(base).host,
        topic=context.topics.raw(Source.TICKETS),
        streams=[Issues(client, settings)],
        poll_seconds=settings.poll_seconds,
        key=user_key(Source.TICKETS),
    )
