"""Helpdesk tickets (ServiceNow Table API incidents, Jira REST issues) -> HelpdeskTicket.

Fixtures under tests/fixtures/tickets follow the vendors' documented record shapes (see
docs/sources/tickets.md). Authentication-only cases of the source contract (password, push,
factor mapping, enrollment) do not apply to tickets: a ticket carries no factors, so method,
raw_method, passwordless and session are always null.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.classify.tickets import load_rules
from pipeline.model import HelpdeskTicket, Kind, Outcome, Scenario, Source
from pipeline.sources import registry, tickets
from pipeline.sources._common import RejectedEvent, top_level

FIXTURES = Path(__file__).parent / "fixtures" / "tickets"
ALL_FIXTURES = sorted(FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def parse(record: dict[str, Any] | str | bytes) -> HelpdeskTicket:
    raw = record if isinstance(record, str | bytes) else json.dumps(record)
    return tickets.parse(raw)


def assert_ticket_invariants(ticket: HelpdeskTicket) -> None:
    """What every ticket carries, whatever the helpdesk."""
    assert ticket.source is Source.TICKETS
    assert ticket.kind is Kind.TICKET
    assert ticket.outcome is Outcome.UNKNOWN
    assert ticket.method is None
    assert ticket.raw_method is None
    assert ticket.passwordless is None
    assert ticket.session is None
    assert ticket.time.tzinfo is not None and ticket.time.utcoffset().total_seconds() == 0


# --- the fixtures, field by field -----------------------------------------------------------

EXPECTED = {
    "servicenow_incident_full.json": dict(
        system="servicenow",
        event_id="9d385017c611228701d22104cc95c371",
        number="INC0010482",
        time=datetime(2026, 1, 26, 9, 15, 2, tzinfo=UTC),
        user="abel.tuter@acme.example",  # caller_id.email, lower-cased
        scenario=Scenario.LOST_DEVICE,
        summary="Phone stolen - can't sign in with passkey",
        event_type="servicenow.incident",
    ),
    "servicenow_incident_display_all.json": dict(
        system="servicenow",
        event_id="a83820b58f723300e7e16c7827bdeed2",
        number="INC0010517",
        time=datetime(2026, 2, 2, 14, 3, 11, tzinfo=UTC),  # `value`, not the local display
        user="fred.luddy@acme.example",
        scenario=Scenario.BIOMETRIC_FAILURE,
        summary="Windows Hello fingerprint not working",
        event_type="servicenow.incident",
    ),
    "servicenow_incident_fields.json": dict(
        system="servicenow",
        event_id="e329de99731423002728660c4cf6a7e8",
        number="INC0010533",
        time=datetime(2026, 2, 9, 6, 48, 30, tzinfo=UTC),
        user="david.miller@acme.example",
        scenario=Scenario.KIOSK_DEVICE,
        summary="Front desk PC asks for Windows Hello",
        event_type="servicenow.incident",
    ),
    "servicenow_incident_no_dotwalk.json": dict(
        system="servicenow",
        event_id="1c741bd70b2322007518478d83673af3",
        number="INC0010601",
        time=datetime(2026, 3, 4, 11, 20, 45, tzinfo=UTC),
        user=None,  # only caller_id's sys_id: not a login
        scenario=Scenario.OTHER,
        summary="Passkey prompt never completes inside Citrix Workspace",
        event_type="servicenow.incident",
    ),
    "jira_v3_issue_jsm.json": dict(
        system="jira",
        event_id="10231",
        number="HELP-231",
        time=datetime(2026, 2, 11, 8, 2, 47, 318000, tzinfo=UTC),
        user="priya.shah@acme.example",
        scenario=Scenario.LOST_SECURITY_KEY,
        summary="Security key lost while travelling",
        event_type="jira.issue",
    ),
    "jira_v3_issue_task.json": dict(
        system="jira",
        event_id="10412",
        number="HELP-412",
        time=datetime(2026, 3, 9, 9, 0, 3, 1000, tzinfo=UTC),  # +0100 -> UTC
        user="s.okafor@contoso.example",
        scenario=Scenario.MNA_INTEGRATION,
        summary="Can't register a passkey - laptop still joined to Contoso tenant",
        event_type="jira.issue",
    ),
    "jira_v3_search_item.json": dict(
        system="jira",
        event_id="10377",
        number="HELP-377",
        time=datetime(2026, 3, 2, 21, 27, 55, 940000, tzinfo=UTC),  # -0500 -> UTC
        user=None,  # e-mail hidden by the reporter's profile visibility; accountId is no login
        scenario=Scenario.PHISHING_LOCKDOWN,
        summary="Locked out since the phishing incident - need emergency access",
        event_type="jira.issue",
    ),
    # Our own closed incident as Elastic's ServiceNow input fetches it
    # (`sysparm_display_value=all&sysparm_exclude_reference_link=true`, then adds `table_name`:
    # elastic/integrations packages/servicenow/data_stream/event/agent/stream/cel.yml.hbs):
    # every field {"display_value", "value"}, journal fields with the entries as
    # `display_value` and an empty `value`, dates with `value` in UTC and `display_value` in
    # the reader's zone (5 h behind).
    "servicenow_incident_display_all_closed.json": dict(
        system="servicenow",
        event_id="9a57b49c0e734f3897dac4af46e9f78b",
        number="INC0020417",
        time=datetime(2025, 11, 18, 14, 6, 23, tzinfo=UTC),  # `value` (UTC), not the display
        user=None,  # caller_id without dot-walked e-mail or user name
        scenario=Scenario.OTHER,
        summary="Floor 3 printer jams on every job",
        event_type="servicenow.incident",
    ),
    "jira_v2_issue_datacenter.json": dict(
        system="jira",
        event_id="48213",
        number="ITSD-1877",
        time=datetime(2026, 2, 17, 3, 41, 9, tzinfo=UTC),
        user="wei.zhang@acme.example",
        scenario=Scenario.UNSUPPORTED_COUNTRY,
        summary="Cannot sign in with passkey from Shanghai office",
        event_type="jira.issue",
    ),
}


def test_every_fixture_has_expectations() -> None:
    assert sorted(EXPECTED) == [p.name for p in ALL_FIXTURES]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    ticket = tickets.parse(raw)
    assert isinstance(ticket, HelpdeskTicket)
    assert_ticket_invariants(ticket)
    for field, expected in EXPECTED[name].items():
        assert getattr(ticket, field) == expected, field
    # str input reads the same as bytes
    assert tickets.parse(raw.decode()) == ticket


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_recognizes_every_fixture(path: Path) -> None:
    assert tickets.recognizes(top_level(path.read_bytes()))


@pytest.mark.parametrize(
    "other",
    [
        {
            "uuid": "x",
            "published": "2026-01-01T00:00:00Z",
            "eventType": "user.session.start",
            "actor": {},
        },
        {
            "id": "x",
            "createdDateTime": "2026-01-01T00:00:00Z",
            "userPrincipalName": "a@b",
            "authenticationDetails": [],
            "status": {},
        },
        {"id": "x", "activityDisplayName": "Register security info", "loggedByService": "x"},
        {
            "time": "2026-01-01T00:00:00Z",
            "resourceId": "/x",
            "category": "SignInLogs",
            "operationName": "Sign-in activity",
            "properties": {},
        },
        {"txid": "x", "access_device": {}, "auth_device": {}, "factor": "duo_push"},
        {"action": "x", "object": "y", "username": "z", "timestamp": 1},
        {"id": "x", "recordedAt": "2026-01-01T00:00:00Z", "action": {}, "resources": []},
    ],
    ids=["okta", "entra_graph", "entra_audit", "entra_eventhub", "duo", "duo_admin", "ping"],
)
def test_does_not_recognize_other_vendors(other: dict[str, Any]) -> None:
    assert not tickets.recognizes(top_level(json.dumps(other)))


def test_auto_detection_picks_tickets() -> None:
    for path in ALL_FIXTURES:
        assert registry.detect(path.read_bytes()) is Source.TICKETS, path.name


# --- ServiceNow specifics ---------------------------------------------------------------------


def test_servicenow_user_falls_back_to_user_name() -> None:
    record = load("servicenow_incident_fields.json")
    del record["caller_id.email"]
    assert parse(record).user == "david.miller"
    record["caller_id.email"] = ""  # an empty dot-walk is no e-mail
    assert parse(record).user == "david.miller"


def test_servicenow_opened_at_missing_falls_back_to_sys_created_on() -> None:
    record = load("servicenow_incident_full.json")
    record["opened_at"] = ""
    assert parse(record).time == datetime(2026, 1, 26, 9, 15, 4, tzinfo=UTC)


def test_servicenow_iso_timestamp_with_offset_is_accepted() -> None:
    record = load("servicenow_incident_fields.json")
    record["opened_at"] = "2026-02-09T07:48:30+01:00"
    assert parse(record).time == datetime(2026, 2, 9, 6, 48, 30, tzinfo=UTC)


def test_servicenow_other_task_table_names_the_event_type() -> None:
    record = load("servicenow_incident_full.json")
    record["sys_class_name"] = "sc_req_item"
    assert parse(record).event_type == "servicenow.sc_req_item"


def test_servicenow_category_words_take_part_in_the_scenario() -> None:
    record = load("servicenow_incident_fields.json")
    record.update(short_description="Help", description="", category="kiosk", subcategory="")
    assert parse(record).scenario is Scenario.KIOSK_DEVICE


# --- Jira specifics ---------------------------------------------------------------------------


def test_jira_adf_text_nodes_are_read_in_order() -> None:
    record = load("jira_v3_issue_jsm.json")
    doc = msgspec.json.decode(json.dumps(record["fields"]["description"]), type=tickets._AdfNode)
    text = tickets._adf_text(doc)
    assert text.startswith("Hi team,\nI left my YubiKey in a taxi")  # hardBreak -> newline
    assert "Model: YubiKey 5C NFC" in text and "Serial on the sticker: 21874633" in text
    assert "@Service Desk" not in text  # mention nodes carry no text node


def test_jira_request_type_takes_part_in_the_scenario() -> None:
    record = load("jira_v3_issue_jsm.json")
    fields = record["fields"]
    fields["summary"] = "Help please"
    fields["description"] = {"type": "doc", "version": 1, "content": []}
    fields["labels"] = []
    assert parse(record).scenario is Scenario.LOST_SECURITY_KEY  # "lost or stolen security key"
    fields["customfield_10010"]["requestType"]["name"] = "Get IT help"
    assert parse(record).scenario is Scenario.OTHER


def test_jira_request_type_found_whatever_the_custom_field_number() -> None:
    record = load("jira_v3_issue_jsm.json")
    fields = record["fields"]
    fields["customfield_12801"] = fields.pop("customfield_10010")
    fields["customfield_10099"] = 'free text mentioning "requestType"'  # not the JSM field
    fields.update(summary="Help", labels=[], description=None)
    assert parse(record).scenario is Scenario.LOST_SECURITY_KEY


def test_jira_labels_take_part_in_the_scenario() -> None:
    record = load("jira_v3_search_item.json")
    record["fields"].update(summary="Sign-in help", description=None, labels=["kiosk"])
    assert parse(record).scenario is Scenario.KIOSK_DEVICE


def test_jira_server_reporter_without_email_uses_username() -> None:
    record = load("jira_v2_issue_datacenter.json")
    del record["fields"]["reporter"]["emailAddress"]
    assert parse(record).user == "wei.zhang"


def test_jira_v2_null_description_is_fine() -> None:
    record = load("jira_v2_issue_datacenter.json")
    record["fields"]["description"] = None
    ticket = parse(record)
    assert ticket.scenario is Scenario.UNSUPPORTED_COUNTRY  # the summary names Shanghai


def test_custom_rules_can_be_passed(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "version: 1\nscenarios:\n  kiosk_device: {signals: [{any: ['shanghai']}]}\n"
    )
    raw = (FIXTURES / "jira_v2_issue_datacenter.json").read_bytes()
    assert tickets.parse(raw, rules=load_rules(rules_file)).scenario is Scenario.KIOSK_DEVICE


# --- rejects --------------------------------------------------------------------------------


def _without(name: str, *path: str) -> dict[str, Any]:
    record = load(name)
    target = record
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return record


def _with(name: str, value: Any, *path: str) -> dict[str, Any]:
    record = load(name)
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return record


SN = "servicenow_incident_full.json"
SN_FIELDS = "servicenow_incident_fields.json"
JIRA = "jira_v3_issue_jsm.json"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"sys_id": "abc", "number": ', "invalid JSON"),
        (b"\xff\xfe not utf-8", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[]", "unexpected shape"),
        (json.dumps([load(SN)]), "unexpected shape"),
        (b"{}", "not a helpdesk ticket"),
        (b'"INC0010482"', "unexpected shape"),
        (b"null", "unexpected shape"),
        (json.dumps(_with(SN, 12345, "sys_id")), "unexpected shape"),
        (json.dumps(_with(SN, {"value": 1}, "sys_id")), "unexpected shape"),
        (json.dumps(_without(SN, "number")), "without a `number`"),
        (json.dumps(_with(SN, ["INC1"], "number")), "unexpected shape"),
        # the sysparm_fields export has no sys_created_on to fall back to
        (json.dumps(_with(SN_FIELDS, "", "opened_at")), "without `opened_at`"),
        (json.dumps(_with(SN, "yesterday morning", "opened_at")), "unreadable timestamp"),
        (json.dumps(_with(SN, "2026-01-26", "opened_at")), "no time of day"),
        (json.dumps(_with(SN, "01/02/2026 09:15:02", "opened_at")), "day/month order"),
        (json.dumps(_with(SN, 1769418902, "opened_at")), "unexpected shape"),
        (json.dumps(_with(SN, ["a@b.example"], "caller_id.email")), "unexpected shape"),
        (json.dumps(_with(JIRA, 10231, "id")), "unexpected shape"),
        (json.dumps(_without(JIRA, "key")), "without a `key`"),
        (json.dumps(_with(JIRA, None, "fields")), "without `fields`"),
        (json.dumps(_with(JIRA, [], "fields")), "unexpected shape"),
        (json.dumps(_without(JIRA, "fields", "created")), "without `fields.created`"),
        (json.dumps(_with(JIRA, 1770796967318, "fields", "created")), "unexpected shape"),
        (json.dumps(_with(JIRA, "11/Feb/26 8:02 AM", "fields", "created")), "unreadable"),
        (json.dumps(_with(JIRA, 42, "fields", "description")), "unexpected shape"),
        (json.dumps(_with(JIRA, "label", "fields", "labels")), "unexpected shape"),
        (json.dumps(_with(JIRA, [1, 2], "fields", "labels")), "unexpected shape"),
        (json.dumps(_with(JIRA, "Priya", "fields", "reporter")), "unexpected shape"),
        (
            b'{"id": "1", "key": "HELP-1", "fields": {"created": "2026-01-01T00:00:00.000+0000", '
            b'"description": ' + b'{"type": "x", "content": [' * 3000 + b"]}" * 3000 + b"}}",
            "nested too deeply",
        ),
    ],
)
def test_unreadable_records_are_rejected_with_a_reason(raw: str | bytes, reason: str) -> None:
    with pytest.raises(RejectedEvent, match=reason) as info:
        tickets.parse(raw)
    assert info.value.reason


# --- never any other exception --------------------------------------------------------------

_ODD_VALUES = [None, 0, -1, 1.5, True, "", "x", [], [None], {}, {"value": None}, {"value": 3}]


def _variants(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record with each key (top level and inside `fields`) set to each odd value."""
    out = []
    for key in record:
        for value in _ODD_VALUES:
            out.append({**record, key: value})
    if isinstance(record.get("fields"), dict):
        for key in record["fields"]:
            for value in _ODD_VALUES:
                out.append({**record, "fields": {**record["fields"], key: value}})
    return out


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_odd_values_anywhere_never_raise_anything_else(path: Path) -> None:
    for variant in _variants(json.loads(path.read_text())):
        try:
            ticket = tickets.parse(json.dumps(variant))
        except RejectedEvent as exc:
            assert exc.reason
        else:
            assert_ticket_invariants(ticket)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "sys_id",
                    "number",
                    "opened_at",
                    "id",
                    "key",
                    "fields",
                    "created",
                    "summary",
                    "description",
                    "reporter",
                    "labels",
                    "type",
                    "text",
                    "content",
                    "value",
                    "caller_id.email",
                    "requestType",
                    "customfield_10010",
                    "name",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_random_json_never_raises_anything_else(value: Any) -> None:
    try:
        ticket = tickets.parse(json.dumps(value))
    except RejectedEvent as exc:
        assert exc.reason
    else:
        assert_ticket_invariants(ticket)


# --- records as real shippers deliver them ----------------------------------------------------


def test_a_change_request_with_a_slash_date_is_rejected_as_ambiguous() -> None:
    """A change request whose `opened_at` is "11/07/2025 9:42:18", the slash form an instance
    with a custom date format returns: that format decides between d/m and m/d, and the record
    does not say which (Elastic's integration needs a `date_format_preference` for it)."""
    data = (FIXTURES / "rejected" / "servicenow_change_request_slash_date.json").read_bytes()
    with pytest.raises(RejectedEvent, match="day/month order") as caught:
        tickets.parse(data)
    assert "opened_at" in caught.value.reason


@pytest.mark.parametrize(
    ("opened_at", "expected"),
    [
        # the database value, UTC ("Table API": "The database value is in UTC format")
        ("2026-01-26 09:15:02", datetime(2026, 1, 26, 9, 15, 2, tzinfo=UTC)),
        ("2026-01-26T09:15:02", datetime(2026, 1, 26, 9, 15, 2, tzinfo=UTC)),
        ("2026-01-26T10:15:02+01:00", datetime(2026, 1, 26, 9, 15, 2, tzinfo=UTC)),
    ],
)
def test_servicenow_time_forms(opened_at: str, expected: datetime) -> None:
    assert parse(_with(SN, opened_at, "opened_at")).time == expected


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        # offsets as Jira writes them (no colon), from public Cloud and Server responses
        ("2015-11-21T07:03:02.000-0500", datetime(2015, 11, 21, 12, 3, 2, tzinfo=UTC)),
        ("2022-03-20T06:21:50.520+0530", datetime(2022, 3, 20, 0, 51, 50, 520000, tzinfo=UTC)),
        ("2026-02-11T08:02:47.318+0000", datetime(2026, 2, 11, 8, 2, 47, 318000, tzinfo=UTC)),
    ],
)
def test_jira_created_forms(created: str, expected: datetime) -> None:
    assert parse(_with(JIRA, created, "fields", "created")).time == expected


def test_jira_created_without_zone_is_rejected() -> None:
    with pytest.raises(RejectedEvent, match="has no timezone"):
        parse(_with(JIRA, "2026-02-11T08:02:47.318", "fields", "created"))


def _reshipped(record: dict[str, Any]) -> list[bytes]:
    """One record as different shippers serialize it: compact, pretty, keys reversed."""
    reversed_keys = {key: record[key] for key in reversed(list(record))}
    return [
        json.dumps(record, separators=(",", ":")).encode(),
        json.dumps(record, indent=2).encode(),
        json.dumps(reversed_keys).encode(),
    ]


@pytest.mark.parametrize(
    ("name", "id_path", "changed"),
    [
        (SN, ("sys_id",), ("short_description",)),
        ("servicenow_incident_display_all_closed.json", ("sys_id",), ("sys_updated_on",)),
        (JIRA, ("id",), ("fields", "summary")),
    ],
)
def test_ticket_without_its_id_gets_one_derived_from_its_number(
    name: str, id_path: tuple[str, ...], changed: tuple[str, ...]
) -> None:
    """A ticket is exported again after every update: the derived id follows its number /
    key (what identifies it), not its content, so an update replaces the row it had."""
    original = parse(load(name))
    record = _without(name, *id_path)
    assert tickets.recognizes(top_level(json.dumps(record)))
    ids = {tickets.parse(variant).event_id for variant in _reshipped(record)}
    assert len(ids) == 1
    (derived,) = ids
    assert derived.startswith("derived:") and len(derived) == 40
    ticket = parse(record)
    assert {**ticket.__dict__, "event_id": 0} == {**original.__dict__, "event_id": 0}
    target = record
    for key in changed[:-1]:
        target = target[key]
    target[changed[-1]] = "updated later"
    assert parse(record).event_id == derived
    other = parse(_with(SN, "INC0099999", "number") | {"sys_id": None})
    assert other.event_id.startswith("derived:") and other.event_id != derived


def test_ticket_without_its_id_or_time_is_rejected_for_its_time() -> None:
    record = _without(SN, "sys_id")
    del record["opened_at"]
    del record["sys_created_on"]
    with pytest.raises(RejectedEvent, match="without `opened_at`"):
        parse(record)
