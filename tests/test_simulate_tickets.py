"""Ticket emitter round trip: what the simulator writes, the parser reads back as intended.

The simulator's truth counts tickets per scenario, so EVERY template must classify to its
intent's scenario under the shipped rules: each template is checked with every value of every
slot it uses, in every record shape (ServiceNow, Jira v3 with ADF, Jira v2 plain text).
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.model import HelpdeskTicket, Scenario, Source
from pipeline.simulate.intents import Person, TicketIntent
from pipeline.simulate.vendors import tickets as emitter
from pipeline.sources import registry
from pipeline.sources import tickets as parser
from pipeline.sources._common import top_level

PERSON = Person(
    login="maria.garcia@acme.example",
    display_name="Maria Garcia",
    uid="4be0643f1d98573b97cdca98a65347dd",
    country="ES",
)
SHAPES = {
    "servicenow": emitter._servicenow,
    "jira_v3": emitter._jira_v3,
    "jira_v2": emitter._jira_v2,
}
_SLOT = re.compile(r"\{(\w+)\}")


def intent(
    scenario: Scenario,
    system: str = "servicenow",
    number: int = 10042,
    when: datetime = datetime(2026, 3, 10, 9, 41, 7, 512345, tzinfo=UTC),
    uid: str = "0f8fad5bd9cb469fa16570867728950e",
) -> TicketIntent:
    return TicketIntent(uid, when, PERSON, scenario, system, number)  # type: ignore[arg-type]


def _json(record: dict) -> str:
    return json.dumps(record)


def _slot_cases() -> list[tuple[Scenario, int, dict[str, str]]]:
    """Each template with each value of each slot it uses (the others at their first value)."""
    cases = []
    for scenario, templates in emitter.TEMPLATES.items():
        for index, template in enumerate(templates):
            used = sorted(set(_SLOT.findall(template.summary + template.description)))
            base = {name: values[0] for name, values in emitter.SLOTS.items()}
            cases.append((scenario, index, base))
            for name in used:
                for value in emitter.SLOTS[name][1:]:
                    cases.append((scenario, index, {**base, name: value}))
    return cases


SLOT_CASES = _slot_cases()


def test_every_scenario_has_several_templates() -> None:
    assert set(emitter.TEMPLATES) == set(Scenario)
    for scenario, templates in emitter.TEMPLATES.items():
        assert len(templates) >= 4, scenario


def test_templates_use_only_known_slots() -> None:
    for templates in emitter.TEMPLATES.values():
        for template in templates:
            for name in _SLOT.findall(template.summary + template.description):
                assert name in emitter.SLOTS, name


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_template_with_every_slot_value_classifies_to_its_scenario(shape: str) -> None:
    misses = []
    rng = random.Random(7)
    for scenario, index, values in SLOT_CASES:
        summary, description = emitter.render(emitter.TEMPLATES[scenario][index], values)
        # several draws of the record's own variable parts (category, labels, request type)
        for _ in range(4):
            record = SHAPES[shape](intent(scenario), summary, description, rng)
            got = parser.parse(_json(record)).scenario
            if got is not scenario:
                misses.append((scenario.value, got.value, summary, description))
    assert not misses, "\n".join(map(str, misses[:20]))


@pytest.mark.parametrize("scenario", list(Scenario), ids=lambda s: s.value)
@pytest.mark.parametrize("system", ["servicenow", "jira"])
def test_round_trip(scenario: Scenario, system: str) -> None:
    rng = random.Random(f"{scenario}-{system}")
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    for n in range(150):
        when = start + timedelta(hours=n * 7, seconds=n * 13, microseconds=n * 1237)
        uid = f"{rng.getrandbits(128):032x}"
        ticket_intent = intent(scenario, system, 100 + n, when, uid)
        record = emitter.emit_ticket(ticket_intent, rng)
        assert parser.recognizes(top_level(_json(record)))
        ticket = parser.parse(_json(record))
        assert isinstance(ticket, HelpdeskTicket)
        assert ticket.source is Source.TICKETS
        assert ticket.scenario is scenario
        assert ticket.system == system
        assert ticket.user == PERSON.login
        expected = record["short_description"] if system == "servicenow" else None
        assert ticket.summary == (expected or record["fields"]["summary"])
        assert ticket.summary
        assert ticket.passwordless is None and ticket.method is None and ticket.session is None
        if system == "servicenow":
            assert ticket.event_id == uid
            assert ticket.number == f"INC{100 + n:07d}"
            assert ticket.time == when.replace(microsecond=0)  # the Table API keeps seconds
            assert ticket.event_type == "servicenow.incident"
        else:
            assert ticket.event_id == str(10000 + 100 + n)
            assert ticket.number == f"HELP-{100 + n}"
            assert ticket.time == when.replace(microsecond=when.microsecond // 1000 * 1000)
            assert ticket.event_type == "jira.issue"


def test_jira_v2_and_v3_are_both_emitted() -> None:
    rng = random.Random(11)
    kinds = set()
    for n in range(60):
        record = emitter.emit_ticket(intent(Scenario.LOST_DEVICE, "jira", n), rng)
        description = record["fields"]["description"]
        kinds.add("v3" if isinstance(description, dict) else "v2")
        if isinstance(description, dict):
            assert description["type"] == "doc" and description["version"] == 1
            assert record["self"].startswith(emitter.JIRA_CLOUD + "/rest/api/3/")
            assert record["fields"]["reporter"]["accountId"]
        else:
            assert record["self"].startswith(emitter.JIRA_DATA_CENTER + "/rest/api/2/")
            assert record["fields"]["reporter"]["name"] == "maria.garcia"
    assert kinds == {"v2", "v3"}


def test_other_is_mostly_the_vdi_theme_and_never_matches_a_rule() -> None:
    rng = random.Random(3)
    vdi = 0
    for n in range(400):
        record = emitter.emit_ticket(intent(Scenario.OTHER, "servicenow", n), rng)
        text = record["short_description"] + " " + record["description"]
        if re.search(r"Citrix|Horizon|Virtual Desktop|Cloud PC|WorkSpaces|Remote Desktop", text):
            vdi += 1
        assert parser.parse(_json(record)).scenario is Scenario.OTHER
    assert 0.7 < vdi / 400 < 0.9


def test_deterministic() -> None:
    one = emitter.emit_ticket(intent(Scenario.KIOSK_DEVICE, "jira"), random.Random(5))
    two = emitter.emit_ticket(intent(Scenario.KIOSK_DEVICE, "jira"), random.Random(5))
    assert one == two
    rng = random.Random(5)
    first = [emitter.emit_ticket(intent(s, "servicenow"), rng) for s in Scenario]
    rng = random.Random(5)
    again = [emitter.emit_ticket(intent(s, "servicenow"), rng) for s in Scenario]
    assert first == again


def test_texts_vary() -> None:
    rng = random.Random(9)
    summaries = {
        emitter.emit_ticket(intent(Scenario.LOST_DEVICE, "servicenow", n), rng)["short_description"]
        for n in range(200)
    }
    assert len(summaries) >= 15


def test_servicenow_record_has_the_table_api_shape() -> None:
    record = emitter.emit_ticket(intent(Scenario.LOST_SECURITY_KEY), random.Random(1))
    assert record["sys_id"] == "0f8fad5bd9cb469fa16570867728950e"
    assert record["number"] == "INC0010042"
    assert record["opened_at"] == "2026-03-10 09:41:07"
    assert record["caller_id"] == {
        "link": f"{emitter.SERVICENOW_INSTANCE}/api/now/table/sys_user/{PERSON.uid}",
        "value": PERSON.uid,
    }
    assert record["caller_id.email"] == PERSON.login
    assert record["caller_id.user_name"] == "maria.garcia"
    assert record["sys_class_name"] == "incident"
    assert all(isinstance(v, str | dict) for v in record.values())  # Table API: strings, refs


def test_jira_created_has_the_documented_format() -> None:
    rng = random.Random(2)
    record = emitter.emit_ticket(intent(Scenario.OTHER, "jira"), rng)
    assert record["fields"]["created"] == "2026-03-10T09:41:07.512+0000"


def test_auto_detection_sees_tickets() -> None:
    rng = random.Random(4)
    for system in ("servicenow", "jira"):
        for scenario in Scenario:
            record = emitter.emit_ticket(intent(scenario, system), rng)
            assert registry.detect(_json(record)) is Source.TICKETS


def test_unknown_system_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown helpdesk system"):
        emitter.emit_ticket(intent(Scenario.OTHER, "zendesk"), random.Random(0))


def test_no_factors() -> None:
    assert not emitter.SUPPORTED_METHODS
