"""Microsoft Entra ID: sign-ins (interactive and non-interactive) and directory audits from
Microsoft Graph, into the Entra raw topic.

What Microsoft documents, and what this collector does with it:
- Sign-ins: `GET /beta/auditLogs/signIns` ("List signIns", beta,
  https://learn.microsoft.com/graph/api/signin-list?view=graph-rest-beta). Only beta returns
  the non-interactive sign-ins, through `signInEventTypes/any(t: t eq 'nonInteractiveUser')`;
  without that filter only interactive ones come back, and on v1.0 their absence "looks
  exactly like nobody used it" (https://learn.microsoft.com/entra/identity/monitoring-health/concept-all-sign-ins).
  Each type in PIPELINE_ENTRA_SIGN_IN_TYPES is a stream with a cursor of its own.
- Directory audits: `GET /v1.0/auditLogs/directoryAudits`
  (https://learn.microsoft.com/graph/api/directoryaudit-list), on `activityDateTime`.
- Both filter their time with `ge`/`le` only, list newest first, page by `@odata.nextLink`
  (followed verbatim: it embeds a `$skiptoken`), `$top` at most 1,000, and `$skip` is not
  allowed. A skip token cannot be kept across runs
  (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/5974), so the cursor
  is a time watermark moved slice by slice (`pipeline.collect.watermark`), with an overlap on
  each live round for sign-ins Entra makes visible late.
- Throttling (https://learn.microsoft.com/graph/throttling,
  https://learn.microsoft.com/graph/throttling-limits): the identity and access reports allow
  5 requests per 10 seconds per app per tenant, which every stream of this collector shares
  (PIPELINE_ENTRA_REQUESTS_PER_WINDOW / _WINDOW_SECONDS); a 429 waits its `Retry-After`.
- Tokens: client credentials through MSAL (`acquire_token_for_client`, scope
  `https://graph.microsoft.com/.default`). Application permission `AuditLog.Read.All`
  (Microsoft lists it with `Directory.Read.All` for the audit logs), with admin consent; the
  sign-in logs need a Microsoft Entra ID P1 or P2 licence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pipeline.collect.auth import BearerAuth, MsalTokens
from pipeline.collect.http import VendorClient
from pipeline.collect.paging import BodyLink, Call, Fetched, pages
from pipeline.collect.runner import Collector, Context, Page, Span, user_key
from pipeline.collect.settings import EntraSettings
from pipeline.collect.watermark import Slicing, round_end, round_start, sliced
from pipeline.model import Source

PACE = "graph.reports"
PAGES = BodyLink(records_path=("value",), link_path=("@odata.nextLink",))
PERMISSION = (
    "grant the app registration the Microsoft Graph application permission AuditLog.Read.All "
    "(with Directory.Read.All) and an admin's consent; sign-in logs also need a Microsoft "
    "Entra ID P1 or P2 licence"
)


def odata_time(when: datetime) -> str:
    """A DateTimeOffset literal of OData's `$filter` (UTC, whole seconds)."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphLog:
    """One Graph audit log (or one sign-in type), read by time slices."""

    def __init__(
        self,
        name: str,
        client: VendorClient,
        path: str,
        time_field: str,
        condition: str | None,
        settings: EntraSettings,
        slicing: Slicing,
    ) -> None:
        self.name = name
        self._client = client
        self._path = path
        self._field = time_field
        self._condition = condition
        self._settings = settings
        self._slicing = slicing

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        start = round_start(cursor, span, self._settings.overlap)
        end = round_end(span, self._settings.delay)
        yield from sliced(start, end, cursor, self._slicing, self._slice)

    def _slice(self, start: datetime, end: datetime) -> Iterator[Fetched]:
        window = f"{self._field} ge {odata_time(start)} and {self._field} le {odata_time(end)}"
        condition = f"({window}) and {self._condition}" if self._condition else window
        params = {"$filter": condition, "$top": self._settings.page_size}
        return pages(self._client, Call(self._path, params), PAGES, pace=PACE)


def graph_client(context: Context, settings: EntraSettings, permission: str) -> VendorClient:
    """A Graph client with an app-only token, paced at the reports' limit."""
    settings.required("tenant_id", "client_id")
    authority = f"{settings.authority_url.rstrip('/')}/{settings.tenant_id}"
    ca = context.collect.ca_file
    tokens = MsalTokens(
        "entra",
        authority,
        str(settings.client_id),
        settings.required_secret("client_secret"),
        settings.scope,
        str(ca) if ca is not None else True,
        "check PIPELINE_ENTRA_TENANT_ID, PIPELINE_ENTRA_CLIENT_ID and the client secret (its "
        "value, not its id)",
    )
    context.pacer.limit(PACE, window=(settings.requests_per_window, settings.window_seconds))
    return context.client(
        "entra", permission, base_url=settings.graph_url.rstrip("/"), auth=BearerAuth(tokens)
    )


def build(context: Context) -> Collector:
    settings = EntraSettings()
    client = graph_client(context, settings, PERMISSION)
    slicing = Slicing(first=settings.slice, largest=max(settings.slice, settings.slice_max))
    streams = [
        GraphLog(
            f"signins.{kind}",
            client,
            "/beta/auditLogs/signIns",
            "createdDateTime",
            f"signInEventTypes/any(t: t eq '{kind}')",
            settings,
            slicing,
        )
        for kind in settings.sign_in_types
    ]
    if settings.audits:
        streams.append(
            GraphLog(
                "audits",
                client,
                "/v1.0/auditLogs/directoryAudits",
                "activityDateTime",
                None,
                settings,
                slicing,
            )
        )
    return Collector(
        name="entra",
        tenant=str(settings.tenant_id),
        topic=context.topics.raw(Source.ENTRA),
        streams=streams,
        poll_seconds=settings.poll_seconds,
        key=user_key(Source.ENTRA),
    )
