"""A simulated rollout as the vendors' APIs hold it: each API's records in the order it pages
them, with the time that decides when a record is visible, and the workforce as directories.

Read from a `pipeline simulate` directory (`DIR/{okta,entra,ping,duo,tickets,roster}.ndjson`).
Records are kept as the simulator wrote them (bytes), except Entra's Event Hub records, which
Graph serves as the `signIn` / `directoryAudit` they carry (below).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.model import Source, WorkforceUser
from pipeline.plan import load_plan, save_plan
from pipeline.simulate.output import ROSTER_FILE
from pipeline.simulate.run import simulate
from pipeline.sources._common import parse_time

PLAN_FILE = "plan.yaml"
# Event Hub categories of sign-ins and the Graph `signInEventTypes` value each one is
# (https://learn.microsoft.com/entra/identity/monitoring-health/concept-sign-ins: interactive
# user, non-interactive user, service principal and managed identity sign-ins).
_EVENT_TYPES = {
    "SignInLogs": "interactiveUser",
    "NonInteractiveUserSignInLogs": "nonInteractiveUser",
    "ServicePrincipalSignInLogs": "servicePrincipal",
    "ManagedIdentitySignInLogs": "managedIdentity",
}


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def parse_millis(value: object, where: str) -> int:
    """A vendor timestamp (ISO 8601, or naive as UTC where the vendor documents UTC) in Unix
    milliseconds; `ValueError` (parse_time's RejectedEvent) when unreadable."""
    return millis(parse_time(value, where, naive_is_utc=True))  # type: ignore[arg-type]


@dataclass
class Feed:
    """One API's records, ascending by (time, id): the time is when the record becomes
    visible, the id the vendor's id of the record."""

    times: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)

    def add(self, time_ms: int, record_id: str, line: bytes) -> None:
        self.times.append(time_ms)
        self.ids.append(record_id)
        self.lines.append(line)

    def sort(self) -> None:
        order = sorted(range(len(self.ids)), key=lambda i: (self.times[i], self.ids[i]))
        self.times = [self.times[i] for i in order]
        self.ids = [self.ids[i] for i in order]
        self.lines = [self.lines[i] for i in order]

    def visible(self, now_ms: int) -> int:
        """How many records exist at `now_ms` (a prefix of the feed)."""
        return bisect_right(self.times, now_ms)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class OktaLog(Feed):
    """Okta System Log events in persistence order (`times`), with each one's `published`."""

    published: list[int] = field(default_factory=list)
    # indices into the feed, ascending by (published, uuid): the order of bounded queries
    by_published: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Employee:
    """A roster row with the ids its directories give it."""

    row: WorkforceUser
    okta_id: str
    entra_id: str
    manager: Employee | None

    @property
    def first_last(self) -> tuple[str, str]:
        first, _, last = (self.row.display_name or self.row.user).partition(" ")
        return first, last or first


@dataclass
class Rollout:
    okta: OktaLog
    signins: Feed
    audits: Feed
    duo_authentication: Feed
    duo_activity: Feed
    duo_telephony: Feed
    duo_administrator: Feed
    ping: Feed
    servicenow: Feed
    jira: Feed
    jira_dc: Feed
    employees: list[Employee]
    ping_environment: str | None
    unserved: list[bytes]


def simulate_rollout(
    directory: Path,
    users: int,
    weeks: int,
    seed: int = 1,
    plan_file: Path | None = None,
    **options: Any,
) -> str:
    """`pipeline simulate` into `directory` (`options`: its other arguments), the plan moved
    to end before today (as the demo does), so that every record is in the past when served;
    the summary line."""
    plan = load_plan(plan_file).ending_before(datetime.now(UTC).date(), weeks)
    directory.mkdir(parents=True, exist_ok=True)
    save_plan(plan, directory / PLAN_FILE)
    return simulate(
        users=users,
        weeks=weeks,
        seed=seed,
        out=directory,
        plan_file=directory / PLAN_FILE,
        **options,
    )


def load_rollout(directory: Path, okta_reorder: float) -> Rollout:
    """The records of a simulation directory, per API. `okta_reorder`: the most seconds an
    Okta event is persisted after it was published."""
    rollout = Rollout(
        okta=OktaLog(),
        signins=Feed(),
        audits=Feed(),
        duo_authentication=Feed(),
        duo_activity=Feed(),
        duo_telephony=Feed(),
        duo_administrator=Feed(),
        ping=Feed(),
        servicenow=Feed(),
        jira=Feed(),
        jira_dc=Feed(),
        employees=[],
        ping_environment=None,
        unserved=[],
    )
    okta_ids: dict[str, str] = {}
    entra_ids: dict[str, str] = {}
    for record, line in _records(directory / f"{Source.OKTA.value}.ndjson"):
        _add_okta(rollout.okta, record, line, okta_reorder, okta_ids)
    for record, _ in _records(directory / f"{Source.ENTRA.value}.ndjson"):
        _add_entra(rollout, record, entra_ids)
    for record, line in _records(directory / f"{Source.DUO.value}.ndjson"):
        _add_duo(rollout, record, line)
    for record, line in _records(directory / f"{Source.PING.value}.ndjson"):
        if "recordedAt" not in record:  # PingFederate's audit log: a file, no API
            rollout.unserved.append(line)
            continue
        rollout.ping.add(parse_millis(record["recordedAt"], "recordedAt"), record["id"], line)
        if rollout.ping_environment is None:
            rollout.ping_environment = _ping_environment(record)
    for record, line in _records(directory / f"{Source.TICKETS.value}.ndjson"):
        if "sys_id" in record:
            time_ms = parse_millis(record["sys_updated_on"], "sys_updated_on")
            rollout.servicenow.add(time_ms, record["sys_id"], line)
        else:
            feed = rollout.jira if "/rest/api/3/" in record.get("self", "") else rollout.jira_dc
            feed.add(parse_millis(record["fields"]["updated"], "updated"), record["id"], line)
    _sort_okta(rollout.okta)
    for feed in (
        rollout.signins,
        rollout.audits,
        rollout.duo_authentication,
        rollout.duo_activity,
        rollout.ping,
        rollout.servicenow,
        rollout.jira,
        rollout.jira_dc,
    ):
        feed.sort()
    rows = [
        WorkforceUser.model_validate_json(line)
        for line in (directory / ROSTER_FILE).read_bytes().splitlines()
        if line.strip()
    ]
    rollout.employees = _employees(rows, okta_ids, entra_ids)
    return rollout


def _records(path: Path) -> list[tuple[dict, bytes]]:
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines()
    return [(orjson.loads(line), line) for line in lines if line.strip()]


def _add_okta(log: OktaLog, record: dict, line: bytes, reorder: float, ids: dict[str, str]) -> None:
    published = parse_millis(record["published"], "published")
    uuid = record["uuid"]
    # Persistence lags publication by a stable, uuid-derived delay: polling (which filters
    # and orders by persistence time) returns events out of `published` order.
    digest = int.from_bytes(hashlib.sha256(uuid.encode()).digest()[:4], "big")
    delay = digest % (int(reorder * 1000) + 1)
    log.add(published + delay, uuid, line)
    log.published.append(published)
    actor = record.get("actor") or {}
    if actor.get("type") == "User" and actor.get("alternateId"):
        ids.setdefault(actor["alternateId"].lower(), actor["id"])


def _sort_okta(log: OktaLog) -> None:
    order = sorted(range(len(log.ids)), key=lambda i: (log.times[i], log.ids[i]))
    log.times = [log.times[i] for i in order]
    log.ids = [log.ids[i] for i in order]
    log.lines = [log.lines[i] for i in order]
    log.published = [log.published[i] for i in order]
    log.by_published = sorted(range(len(log.ids)), key=lambda i: (log.published[i], log.ids[i]))


def _add_entra(rollout: Rollout, record: dict, ids: dict[str, str]) -> None:
    """Graph records as they are; an Event Hub record as the Graph resource in its
    `properties` (the diagnostic-settings record carries the same `signIn` / `directoryAudit`,
    https://learn.microsoft.com/entra/identity/monitoring-health/howto-stream-logs-to-event-hub),
    its times in Graph's `Z` form ("always in UTC", signIn resource), and for a sign-in the
    `signInEventTypes` its category stands for."""
    category = record.get("category")
    body = record.get("properties") if "operationName" in record else record
    if not isinstance(body, dict):
        return
    if "createdDateTime" in body:
        if category in _EVENT_TYPES:
            body = {**body, "signInEventTypes": [_EVENT_TYPES[category]]}
        time_ms = parse_millis(body["createdDateTime"], "createdDateTime")
        body["createdDateTime"] = _graph_time(body["createdDateTime"])
        rollout.signins.add(time_ms, body["id"], orjson.dumps(body))
        if body.get("userPrincipalName") and body.get("userId"):
            ids.setdefault(body["userPrincipalName"].lower(), body["userId"])
    elif "activityDateTime" in body:
        time_ms = parse_millis(body["activityDateTime"], "activityDateTime")
        body["activityDateTime"] = _graph_time(body["activityDateTime"])
        rollout.audits.add(time_ms, body["id"], orjson.dumps(body))


def _graph_time(text: str) -> str:
    """`2026-01-05T01:45:45.0000000+00:00` -> `2026-01-05T01:45:45.0000000Z` (fraction kept)."""
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _add_duo(rollout: Rollout, record: dict, line: bytes) -> None:
    if "txid" in record and "isotimestamp" in record:
        time_ms = parse_millis(record["isotimestamp"], "isotimestamp")
        rollout.duo_authentication.add(time_ms, record["txid"], line)
    elif "activity_id" in record:
        rollout.duo_activity.add(parse_millis(record["ts"], "ts"), record["activity_id"], line)
    elif "telephony_id" in record:
        rollout.duo_telephony.add(parse_millis(record["ts"], "ts"), record["telephony_id"], line)


def _ping_environment(record: dict) -> str | None:
    for resource in record.get("resources") or ():
        environment = (resource.get("environment") or {}).get("id")
        if environment:
            return environment
    return None


def _employees(
    rows: list[WorkforceUser], okta_ids: dict[str, str], entra_ids: dict[str, str]
) -> list[Employee]:
    """The roster as Okta and Entra hold it: the ids the logs use for a person (derived ones
    for people a log never mentions), and a manager per department: its longest-serving
    member manages the others."""
    heads: dict[str, WorkforceUser] = {}
    for row in sorted(rows, key=lambda r: (r.active_from, r.user)):
        heads.setdefault(row.department, row)
    made: dict[str, Employee] = {}

    def employee(row: WorkforceUser) -> Employee:
        if row.user not in made:
            head = heads[row.department]
            manager = None if head.user == row.user else employee(head)
            made[row.user] = Employee(
                row=row,
                okta_id=okta_ids.get(row.user) or _okta_id(row.user),
                entra_id=entra_ids.get(row.user) or _guid(row.user),
                manager=manager,
            )
        return made[row.user]

    return [employee(row) for row in rows]


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _okta_id(login: str) -> str:
    """An Okta user id (`00u` + 17 base62 characters) for a login."""
    number = int.from_bytes(hashlib.sha256(login.encode()).digest()[:13], "big")
    chars = []
    for _ in range(17):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "00u" + "".join(chars)


def _guid(login: str) -> str:
    h = hashlib.sha256(login.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def day_millis(day: date) -> int:
    return millis(datetime.combine(day, datetime.min.time(), tzinfo=UTC))
