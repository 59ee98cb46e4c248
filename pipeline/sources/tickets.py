"""Helpdesk tickets: ServiceNow incidents and Jira Service Management issues -> HelpdeskTicket.

One raw event is one record as the helpdesk's REST API returns it (an item of `result` /
`issues`; `pipeline.sources.records` opens those envelopes):

- ServiceNow Table API, `GET /api/now/table/incident` ("Table API", ServiceNow REST API
  reference, https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html).
  With `sysparm_display_value=false` (the default) every field is a string and a reference
  is `{"link": ..., "value": <sys_id>}`; with `all` every field is
  `{"display_value": ..., "value": ...}`; with `true` a field is its display string. Dates
  are `YYYY-MM-DD HH:MM:SS` in UTC as `value`; a `display_value` is in the reader's own time
  zone, so only `value` is read for times. Dot-walked fields added through `sysparm_fields`
  arrive as flat keys (`"caller_id.email"`): "Dot-walking in the REST Table API",
  https://developer.servicenow.com/blog.do?p=/post/dot-walking-in-the-rest-table-api-2/.
- Jira REST API `GET /rest/api/2|3/issue/{key}` or `/search` ("The Jira Cloud platform REST
  API", https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/):
  `id`, `key`, `fields.created` like `2026-01-26T09:15:02.123+0000`, `fields.reporter`
  (Cloud: `accountId`, `emailAddress` unless hidden by the user's profile visibility;
  Server/Data Center: `name`, `key`, `emailAddress`), `fields.description` as plain text in
  v2 or an Atlassian Document Format tree in v3 ("Atlassian Document Format",
  https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/), and the
  Jira Service Management request type in a `customfield_NNNNN` whose value holds
  `requestType.name` (the field number differs per site).

Choices (documented in docs/sources/tickets.md):
- `event_id` is ServiceNow's `sys_id` and Jira's numeric issue `id`: both are immutable,
  whereas a Jira key changes when an issue moves project. The key / INC number is `number`.
  A record exported without its id gets one derived from its number / key (never from its
  content, which changes with every update).
- `user` prefers an e-mail (`caller_id.email`, `reporter.emailAddress`), then a login
  (`caller_id.user_name`, Server `reporter.name`); a sys_id or Atlassian accountId is not a
  login and is never used as one (then `user` is null).
- The scenario is classified over summary + description + category / subcategory /
  labels / issue type / request type, with the rules of `pipeline.classify.tickets`.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from pipeline.classify.tickets import TicketRules, classify_ticket, default_rules
from pipeline.model import HelpdeskTicket, Outcome, Source
from pipeline.sources._common import (
    RawEvent,
    RejectedEvent,
    decode,
    derived_id,
    normalize_user,
    parse_time,
)

__all__ = ["SOURCE", "parse", "recognizes"]

SOURCE = Source.TICKETS

# --- ServiceNow ---------------------------------------------------------------------------


class _SnValue(msgspec.Struct):
    """A field read with `sysparm_display_value=all` (or a reference with `true`)."""

    value: str | None = None
    display_value: str | None = None


# A ServiceNow field: a plain string, a {value, display_value[, link]} object, or absent.
_SnField = str | _SnValue | None


# --- Jira ---------------------------------------------------------------------------------


class _AdfNode(msgspec.Struct):
    """One node of an Atlassian Document Format tree; only text matters here."""

    type: str = ""
    text: str | None = None
    content: list[_AdfNode] | None = None


class _JiraUser(msgspec.Struct):
    emailAddress: str | None = None
    name: str | None = None  # Server / Data Center username


class _Named(msgspec.Struct):
    name: str | None = None


class _JiraFields(msgspec.Struct):
    created: str | None = None
    summary: str | None = None
    description: str | _AdfNode | None = None  # v2 plain text, v3 ADF
    reporter: _JiraUser | None = None
    labels: list[str] | None = None
    issuetype: _Named | None = None


class _Ticket(msgspec.Struct):
    """The fields either helpdesk's record may carry; which ones are set tells the system."""

    # ServiceNow incident (Table API); UNSET tells an absent sys_id from a null one
    sys_id: _SnField | msgspec.UnsetType = msgspec.UNSET
    number: _SnField = None
    opened_at: _SnField = None
    sys_created_on: _SnField = None
    sys_class_name: _SnField = None
    short_description: _SnField = None
    description: _SnField = None
    category: _SnField = None
    subcategory: _SnField = None
    caller_email: _SnField = msgspec.field(default=None, name="caller_id.email")
    caller_user_name: _SnField = msgspec.field(default=None, name="caller_id.user_name")
    # Jira issue
    id: str | None = None
    key: str | None = None
    fields: _JiraFields | None = None


class _RequestType(msgspec.Struct):
    name: str | None = None


class _RequestTypeField(msgspec.Struct):
    requestType: _RequestType | None = None


class _CustomFields(msgspec.Struct):
    fields: dict[str, msgspec.Raw] = {}


_REQUEST_TYPE_MARK = b'"requestType"'


def recognizes(top: Mapping[str, msgspec.Raw]) -> bool:
    """A ServiceNow record has `sys_id` (or, exported without it, `number` and `opened_at` /
    `sys_created_on`); a Jira issue has `key` and `fields`."""
    if "sys_id" in top or ("key" in top and "fields" in top):
        return True
    return "number" in top and ("opened_at" in top or "sys_created_on" in top)


def parse(raw: RawEvent, rules: TicketRules | None = None) -> HelpdeskTicket:
    """One ticket record -> HelpdeskTicket, or RejectedEvent with the reason."""
    try:
        ticket = decode(raw, _Ticket)
    except RecursionError:
        raise RejectedEvent("unexpected shape: nested too deeply") from None
    rules = rules if rules is not None else default_rules()
    # ServiceNow: its sys_id, or (exported without it) its number or dates and no Jira `fields`
    if ticket.sys_id is not msgspec.UNSET or (
        ticket.fields is None
        and (
            ticket.number is not None
            or ticket.opened_at is not None
            or ticket.sys_created_on is not None
        )
    ):
        return _servicenow(ticket, rules)
    if ticket.fields is not None or ticket.key is not None:
        return _jira(raw, ticket, rules)
    raise RejectedEvent(
        "not a helpdesk ticket: neither a ServiceNow record (`sys_id` or `number`) "
        "nor a Jira issue (`key` and `fields`)"
    )


# --- ServiceNow ---------------------------------------------------------------------------


def _actual(field: _SnField) -> str | None:
    """The database value of a field (never a display value, which is localised)."""
    value = field.value if isinstance(field, _SnValue) else field
    return value or None


def _shown(field: _SnField) -> str | None:
    """Text for people: the value, or the display value when only that was exported."""
    if isinstance(field, _SnValue):
        return field.value or field.display_value or None
    return field or None


def _servicenow(ticket: _Ticket, rules: TicketRules) -> HelpdeskTicket:
    sys_id = _actual(ticket.sys_id) if ticket.sys_id is not msgspec.UNSET else None
    number = _shown(ticket.number)
    if number is None:
        raise RejectedEvent(f"ServiceNow record {sys_id or ''} without a `number`")
    opened = _actual(ticket.opened_at)
    name = "opened_at"
    if opened is None:  # an incident always has opened_at; other task tables may not
        opened, name = _actual(ticket.sys_created_on), "sys_created_on"
    if opened is None:
        raise RejectedEvent(f"ServiceNow record {number} without `opened_at`")
    # The database value of a date is UTC ("Table API": "The database value is in UTC
    # format"), written `2026-01-26 09:15:02`; the instance's date format may be d/m or m/d
    # order, which a record does not say (such a date is rejected as ambiguous).
    when = parse_time(opened, name, naive_is_utc=True)
    summary = _shown(ticket.short_description) or ""
    texts = (
        summary,
        _shown(ticket.description),
        _shown(ticket.category),
        _shown(ticket.subcategory),
    )
    return HelpdeskTicket(
        source=SOURCE,
        # A ticket is a mutable record exported again after each update: without its sys_id
        # the id derives from its number (immutable, unique per instance), not its content.
        event_id=sys_id or derived_id({"system": "servicenow", "number": number}),
        time=when,
        user=normalize_user(_shown(ticket.caller_email) or _shown(ticket.caller_user_name)),
        outcome=Outcome.UNKNOWN,
        method=None,
        raw_method=None,
        passwordless=None,
        session=None,
        event_type=f"servicenow.{_actual(ticket.sys_class_name) or 'incident'}",
        system="servicenow",
        number=number,
        scenario=classify_ticket("\n".join(t for t in texts if t), rules),
        summary=summary,
    )


# --- Jira ---------------------------------------------------------------------------------


def _adf_text(root: _AdfNode) -> str:
    """Text nodes of an ADF tree in document order; blocks and hard breaks become newlines."""
    parts: list[str] = []
    stack: list[_AdfNode | None] = [root]
    while stack:  # iterative: documents can nest lists in tables in panels...
        node = stack.pop()
        if node is None:
            parts.append("\n")
            continue
        if node.text:
            parts.append(node.text)
        elif node.type == "hardBreak":
            parts.append("\n")
        if node.content:
            stack.append(None)  # close the block after its children
            stack.extend(reversed(node.content))
    return "".join(parts).strip()


def _request_type(raw: RawEvent) -> str | None:
    """The JSM request type name, from whichever customfield holds it on this site."""
    for name, value in decode(raw, _CustomFields).fields.items():
        if name.startswith("customfield_") and _REQUEST_TYPE_MARK in bytes(value):
            try:
                field = msgspec.json.decode(value, type=_RequestTypeField)
            except msgspec.ValidationError:
                continue  # another custom field that merely mentions the word
            if field.requestType is not None and field.requestType.name:
                return field.requestType.name
    return None


def _jira(raw: RawEvent, ticket: _Ticket, rules: TicketRules) -> HelpdeskTicket:
    if not ticket.key:
        raise RejectedEvent(f"Jira issue {ticket.id or ''} without a `key`")
    fields = ticket.fields
    if fields is None:
        raise RejectedEvent(f"Jira issue {ticket.key} without `fields`")
    if not fields.created:
        raise RejectedEvent(f"Jira issue {ticket.key} without `fields.created`")
    description = fields.description
    if isinstance(description, _AdfNode):
        description = _adf_text(description)
    reporter = fields.reporter
    user = (reporter.emailAddress or reporter.name) if reporter else None
    summary = fields.summary or ""
    texts = (
        summary,
        description,
        " ".join(fields.labels or ()),
        fields.issuetype.name if fields.issuetype else None,
        _request_type(raw) if _mentions_request_type(raw) else None,
    )
    time = parse_time(fields.created, "fields.created")
    return HelpdeskTicket(
        source=SOURCE,
        # Without the numeric id: one derived from the key, as for a ServiceNow number.
        event_id=ticket.id or derived_id({"system": "jira", "key": ticket.key}),
        time=time,
        user=normalize_user(user),
        outcome=Outcome.UNKNOWN,
        method=None,
        raw_method=None,
        passwordless=None,
        session=None,
        event_type="jira.issue",
        system="jira",
        number=ticket.key,
        scenario=classify_ticket("\n".join(t for t in texts if t), rules),
        summary=summary,
    )


def _mentions_request_type(raw: RawEvent) -> bool:
    # A cheap substring test first: most Jira issues outside JSM have no request type.
    if isinstance(raw, str):
        return '"requestType"' in raw
    return _REQUEST_TYPE_MARK in raw if isinstance(raw, bytes | bytearray) else True
