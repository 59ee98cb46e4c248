"""`pipeline collect directory --from okta|entra`: the workforce roster (the denominators) from
the IdP's users, for teams without an HR export, as the roster topic's records.

Each round lists every user and writes one roster record per person, keyed by login; the
roster table keeps a user's latest record, so a listing that is cut short and done again
changes nothing. The IdP's values go through the HR import's own row check
(`roster_file.map_row`): country names or codes, dates, the privileged departments
(PIPELINE_COLLECT_PRIVILEGED_DEPARTMENTS); a user it refuses (no department, no country) is
skipped and named in the log.

- Okta, "List users" (https://developer.okta.com/docs/reference/api/users/#list-users):
  `GET /api/v1/users`, `limit` 200, Link paging; a plain listing "returns all users that do
  not have a status of DEPROVISIONED", so the deprovisioned are listed too, with
  `filter=status eq "DEPROVISIONED"`. Profile `login`, `displayName`, `department`,
  `countryCode`; `activated` (else `created`) is the start, `statusChanged` a deprovisioned
  user's leaving day; a STAGED user (never activated) is not in the workforce yet. Scope
  `okta.users.read`.
- Microsoft Graph, "List users" (https://learn.microsoft.com/graph/api/user-list): the
  properties past the default set only with `$select`; `$top` up to 999; `@odata.nextLink`.
  `userPrincipalName`, `displayName`, `department`, `country` (else `usageLocation`),
  `employeeHireDate` (else `createdDateTime`); a disabled account (`accountEnabled` false) left
  on `employeeLeaveDateTime`, or, without one, is counted as leaving today. Guests
  (`userType` Guest) are not the workforce. Permission `User.Read.All`.
- The manager (Okta `manager`, Graph `$expand=manager`) has no place in the roster record
  (`pipeline.model.WorkforceUser`) and is not read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson

from pipeline.collect import okta
from pipeline.collect.entra import graph_client
from pipeline.collect.http import VendorClient
from pipeline.collect.paging import BodyLink, Call, LinkHeader, Paging, pages
from pipeline.collect.roster_file import Columns, ImportRules, map_row, plan_columns
from pipeline.collect.runner import Collector, Context, Page, Span
from pipeline.collect.settings import EntraSettings, OktaSettings
from pipeline.model import Source, WorkforceUser

log = logging.getLogger("pipeline.collect")

HEADER = ["user", "display name", "department", "country", "active from", "terminated on", "status"]
GRAPH_SELECT = (
    "id,userPrincipalName,displayName,department,country,usageLocation,accountEnabled,"
    "createdDateTime,employeeHireDate,employeeLeaveDateTime,userType"
)
GRAPH_PERMISSION = (
    "grant the app registration the Microsoft Graph application permission User.Read.All, "
    "with an admin's consent"
)
# At most this many refused users are named in the log each round; the rest are counted.
NAMED = 20


@dataclass(frozen=True)
class Person:
    """A user as the roster check reads it (a row of HEADER), or None: not the workforce."""

    login: str
    display_name: str
    department: str
    country: str
    active_from: str
    terminated_on: str
    status: str  # active | terminated

    def row(self) -> list[str]:
        return [
            self.login,
            self.display_name,
            self.department,
            self.country,
            self.active_from,
            self.terminated_on,
            self.status,
        ]


def _day(stamp: object) -> str:
    return str(stamp)[:10] if isinstance(stamp, str) else ""


def okta_person(user: Mapping[str, Any], today: date) -> Person | None:
    profile = user.get("profile") or {}
    status = str(user.get("status") or "")
    if status == "STAGED":
        return None
    gone = status == "DEPROVISIONED"
    name = profile.get("displayName") or " ".join(
        filter(None, (profile.get("firstName"), profile.get("lastName")))
    )
    return Person(
        login=str(profile.get("login") or ""),
        display_name=str(name or ""),
        department=str(profile.get("department") or ""),
        country=str(profile.get("countryCode") or ""),
        active_from=_day(user.get("activated") or user.get("created")),
        terminated_on=_day(user.get("statusChanged")) if gone else "",
        status="terminated" if gone else "active",
    )


def graph_person(user: Mapping[str, Any], today: date) -> Person | None:
    if user.get("userType") == "Guest":
        return None
    gone = user.get("accountEnabled") is False
    left = _day(user.get("employeeLeaveDateTime")) or (today.isoformat() if gone else "")
    return Person(
        login=str(user.get("userPrincipalName") or ""),
        display_name=str(user.get("displayName") or ""),
        department=str(user.get("department") or ""),
        country=str(user.get("country") or user.get("usageLocation") or ""),
        active_from=_day(user.get("employeeHireDate") or user.get("createdDateTime")),
        terminated_on=left if gone else "",
        status="terminated" if gone else "active",
    )


class Users:
    """The IdP's whole user list, each round, as roster records."""

    name = "users"

    def __init__(
        self,
        client: VendorClient,
        listings: list[tuple[Call, Paging]],
        person: Callable[[Mapping[str, Any], date], Person | None],
        idp: Source,
        privileged_departments: list[str],
    ) -> None:
        self._client = client
        self._listings = listings
        self._person = person
        self._idp = idp
        self._rules = ImportRules(
            termination_date_means="first-day-off",
            active_values=["active"],
            terminated_values=["terminated"],
            privileged_departments=privileged_departments,
        )
        self._plan = plan_columns(HEADER, Columns())

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]:
        today = datetime.now(UTC).date()
        seen: set[str] = set()
        refused: list[str] = []
        for call, paging in self._listings:
            for fetched in pages(self._client, call, paging):
                records: list[bytes] = []
                for raw in fetched.records:
                    user = orjson.loads(raw)
                    person = self._person(user, today) if isinstance(user, dict) else None
                    if person is None:
                        continue
                    mapped = map_row(person.row(), self._plan, self._rules, today)
                    if isinstance(mapped, list):
                        refused.append(f"{person.login or '(no login)'}: {'; '.join(mapped)}")
                        continue
                    if mapped.user in seen:
                        continue
                    seen.add(mapped.user)
                    roster = mapped.model_copy(update={"idp": self._idp})
                    records.append(roster.model_dump_json().encode())
                yield Page(records)
        for line in refused[:NAMED]:
            log.warning("directory: skipped %s", line)
        if len(refused) > NAMED:
            log.warning("directory: skipped %d more users", len(refused) - NAMED)
        log.info("directory: %d users listed, %d skipped", len(seen), len(refused))


def _key(raw: bytes) -> bytes | None:
    return WorkforceUser.model_validate_json(raw).user.encode()


def build(context: Context, idp: str) -> Collector:
    departments = context.collect.privileged_departments
    if idp == "okta":
        settings = OktaSettings()
        client = okta.okta_client(context, settings, okta.USERS_SCOPE)
        users = "/api/v1/users"
        listings: list[tuple[Call, Paging]] = [
            (Call(users, {"limit": 200}), LinkHeader()),
            (Call(users, {"limit": 200, "filter": 'status eq "DEPROVISIONED"'}), LinkHeader()),
        ]
        stream = Users(client, listings, okta_person, Source.OKTA, departments)
        tenant = httpx.URL(str(settings.url)).host
    else:
        entra = EntraSettings()
        client = graph_client(context, entra, GRAPH_PERMISSION)
        params = {"$select": GRAPH_SELECT, "$top": 999}
        paging = BodyLink(records_path=("value",), link_path=("@odata.nextLink",))
        stream = Users(
            client, [(Call("/v1.0/users", params), paging)], graph_person, Source.ENTRA, departments
        )
        tenant = str(entra.tenant_id)
    return Collector(
        name="directory",
        tenant=f"{idp}/{tenant}",
        topic=context.topics.roster,
        streams=[stream],
        poll_seconds=context.collect.directory_poll_seconds,
        key=_key,
        cursors=False,
    )
