"""Hostile input: mutated vendor events thrown at the batch builder the worker runs.

Seeds are the vendor-shaped fixtures of every source (and roster rows); hypothesis mutates
them: truncated bytes, invalid UTF-8, wrong types and missing or extra fields anywhere in the
tree, huge strings, deep nesting, timestamps far in the past or future, non-objects, the same
event twice. Every message must become exactly one classified row or one dead letter with a
reason, and whatever a batch holds must be writable to the real engine without blowing up
the views that span the data's calendar.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import msgspec
import pytest
from commands import pipeline_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warehouse_fill import migrated

from pipeline.aggregate.batch import BatchRules, Limits, RawMessage, build_batch
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse
from pipeline.sources.records import split_batch

FIXTURES = Path(__file__).parent / "fixtures"
TOPICS = Settings().topics
RULES = BatchRules(TOPICS.source_of(), Settings().duo_fronted_apps)
ROSTER_ROW = {
    "user": "ana.lima@example.com",
    "display_name": "Ana Lima",
    "department": "Finance",
    "country": "BR",
    "privileged": False,
    "idp": "okta",
    "active_from": "2024-01-02",
    "terminated_on": None,
}
SEEDS: list[tuple[str, Any]] = [
    (getattr(TOPICS, source), json.loads(path.read_text()))
    for source in ("okta", "entra", "ping", "duo", "tickets")
    for path in sorted((FIXTURES / source).glob("*.json"))
] + [(TOPICS.roster, ROSTER_ROW)]
DEEP = "<nested arrays go here>"
TIMESTAMPS = [
    "0001-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2299-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999Z",
    "2026-02-30T10:00:00Z",
    "2026-03-01T10:00:00",
    "2026-03-01T10:00:00+14:00",
    "",
    -1,
    1e20,
    253402300800,
]


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.sampled_from(TIMESTAMPS),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )


def paths(tree: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a value in a JSON tree."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from paths(value, (*prefix, index))


def replaced(tree: Any, path: tuple, value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    head, rest = path[0], path[1:]
    if delete and not rest:
        del copy[head]
        return copy
    copy[head] = replaced(tree[head], rest, value, delete=delete)
    return copy


@st.composite
def mutated(draw: st.DrawFn) -> RawMessage:
    topic, seed = draw(st.sampled_from(SEEDS))
    where = draw(st.sampled_from(list(paths(seed))))
    kind = draw(
        st.sampled_from(
            [
                "as is",
                "value",
                "delete",
                "extra",
                "huge",
                "deep",
                "time",
                "truncate",
                "utf8",
                "not an object",
            ]
        )
    )
    tree: Any = seed
    if kind == "value":
        tree = replaced(seed, where, draw(json_values()))
    elif kind == "delete" and where:
        tree = replaced(seed, where, None, delete=True)
    elif kind == "extra":
        tree = {**seed, draw(st.text(min_size=1, max_size=12)): draw(json_values())}
    elif kind == "huge":
        tree = replaced(seed, where, "x" * draw(st.sampled_from([70_000, 2_000_000])))
    elif kind == "deep":
        tree = replaced(seed, where, DEEP)
    elif kind == "time":
        tree = replaced(seed, where, draw(st.sampled_from(TIMESTAMPS)))
    elif kind == "not an object":
        tree = draw(json_values())
    raw = json.dumps(tree).encode()
    if kind == "deep":  # nested deeper than Python's own json would build
        depth = draw(st.sampled_from([50, 600, 5000]))
        raw = raw.replace(json.dumps(DEEP).encode(), b"[" * depth + b"]" * depth)
    if kind == "truncate":
        raw = raw[: draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))]
    elif kind == "utf8":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])) + raw[at:]
    return RawMessage(topic, 0, 0, None, raw)


OFFSETS = itertools.count()


def numbered(messages: list[RawMessage]) -> list[RawMessage]:
    """Offsets never used before: a batch's dedup token is its offsets."""
    return [message._replace(offset=next(OFFSETS)) for message in messages]


def records_in(value: bytes | None) -> int:
    """Events a message holds: its batch's records, or itself."""
    items = split_batch(value) if value is not None else None
    return 1 if items is None else len(items)


def classified(batch: Any) -> int:
    tables = ("auth_events", "enrollment_events", "tickets", "roster")
    return sum(len(batch.rows[table]) for table in tables)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=12), st.booleans())
def test_every_message_is_classified_or_a_dead_letter(
    messages: list[RawMessage], twice: bool
) -> None:
    messages = numbered(messages * 2 if twice else messages)  # duplicate event ids too
    batch = build_batch(messages, RULES)
    events = sum(records_in(message.value) for message in messages)
    assert classified(batch) + len(batch.dead_letters) == events  # in = stored + dead letters
    assert all(dead.reason for dead in batch.dead_letters)
    assert sum(batch.received.values()) == sum(batch.events.values()) == events
    assert sum(batch.messages.values()) == len(messages)
    limits = Limits()
    now = datetime.now(UTC)
    for table in ("auth_events", "enrollment_events", "tickets"):
        for row in batch.rows[table]:
            time = next(v for v in row if isinstance(v, datetime))
            assert limits.time_problem(time, now) is None, row


def test_the_limits_are_explicit_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    okta = json.loads((FIXTURES / "okta" / "oie_password_success.json").read_text())
    raw = json.dumps(okta).encode()

    def outcome(event: bytes, limits: Limits = Limits()) -> str:  # noqa: B008
        rules = dataclasses.replace(RULES, limits=limits)
        batch = build_batch([RawMessage(TOPICS.okta, 0, 0, None, event)], rules)
        return batch.dead_letters[0].reason if batch.dead_letters else "classified"

    assert outcome(raw) == "classified"
    assert "(PIPELINE_MAX_EVENT_BYTES)" in outcome(raw, Limits(max_event_bytes=len(raw) - 1))
    assert "before 2030-01-01" in outcome(
        raw, Limits(oldest_event=datetime(2030, 1, 1, tzinfo=UTC))
    )
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    ahead = json.dumps({**okta, "published": soon}).encode()
    assert "ahead" in outcome(ahead)
    assert outcome(ahead, Limits(max_future=timedelta(days=3))) == "classified"
    monkeypatch.setenv("PIPELINE_MAX_EVENT_BYTES", "2048")
    monkeypatch.setenv("PIPELINE_OLDEST_EVENT", "2024-01-01")
    monkeypatch.setenv("PIPELINE_MAX_FUTURE_SECONDS", "600")
    configured = Settings()
    assert configured.max_event_bytes == 2048
    assert configured.oldest_event == datetime(2024, 1, 1, tzinfo=UTC)
    assert configured.max_future_seconds == 600


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    opened = migrated(tmp_path_factory.mktemp("hostile") / "wh")
    try:
        yield opened
    finally:
        opened.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=5, max_size=40))
def test_whatever_a_batch_holds_is_written_and_the_calendar_stays_bounded(
    warehouse: Warehouse, messages: list[RawMessage]
) -> None:
    batch = build_batch(numbered(messages), RULES)
    warehouse.write(batch)
    (days,) = warehouse.query("SELECT count() FROM rollout_days")[0]
    assert days <= (datetime.now(UTC) - Limits().oldest_event).days + 2
    warehouse.query("SELECT count() FROM weekly_metrics")


def test_a_parser_bug_costs_its_one_event_and_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.sources import entra
    from pipeline.sources.registry import PARSER_FAILURES

    decode = entra.decode

    def buggy(raw: Any, into: Any) -> Any:
        if b"parser-bug" in bytes(raw):
            raise KeyError("a bug")
        return decode(raw, into)

    monkeypatch.setattr(entra, "decode", buggy)
    good = (FIXTURES / "entra" / "eh_signin_passkey_synced.json").read_bytes()
    bad = json.dumps({**json.loads(good), "correlationId": "parser-bug"}).encode()
    before = PARSER_FAILURES[("entra", "KeyError")]
    messages = [RawMessage(TOPICS.entra, 0, n, None, raw) for n, raw in enumerate([good, bad])]
    batch = build_batch(messages, RULES)
    assert [dead.message.offset for dead in batch.dead_letters] == [1]
    assert batch.dead_letters[0].reason.startswith("the entra parser failed: KeyError at ")
    assert "a bug" not in batch.dead_letters[0].reason  # the exception's words may be the event's
    assert len(batch.rows["auth_events"]) == 1
    assert PARSER_FAILURES[("entra", "KeyError")] == before + 1


def test_an_event_no_table_takes_is_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from pipeline.aggregate import batch as batch_module
    from pipeline.model import Source

    # a kind a parser may learn before the batch builder does
    stray = SimpleNamespace(time=datetime.now(UTC) - timedelta(hours=1), kind="revocation")
    monkeypatch.setitem(batch_module.PARSERS, Source.OKTA, lambda raw: stray)
    built = build_batch([RawMessage(TOPICS.okta, 0, 0, None, b"{}")], RULES)
    assert [dead.reason for dead in built.dead_letters] == [
        "no table for a SimpleNamespace (kind revocation)"
    ]
    assert sum(len(rows) for table, rows in built.rows.items() if table != "ingest_batches") == 1


# -- the CLI's reader and the splitter ------------------------------------------------------

ENVELOPES = [
    lambda items: {"records": items},
    lambda items: {"@odata.context": "x", "value": items},
    lambda items: {"eventType": "com.okta.event_hook", "data": {"events": items}},
    lambda items: {"_embedded": {"activities": items}},
    lambda items: {"stat": "OK", "response": {"authlogs": items}},
    lambda items: items,
]


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A hostile record, or vendor envelopes (inside envelopes) of hostile records."""
    if draw(st.booleans()):
        return draw(mutated()).value or b""
    parts = draw(st.lists(documents(), max_size=4))
    wrap = draw(st.sampled_from(ENVELOPES))
    text = json.dumps(wrap(["@@"] * len(parts))).encode()
    for part in parts:  # spliced in as bytes: broken records stay broken inside the envelope
        text = text.replace(b'"@@"', part.replace(b"\n", b" ") or b"null", 1)
    return text


def answers_expected(inputs: list[bytes]) -> int:
    return sum(records_in(data) for data in inputs)


def classify_in_process(data: bytes) -> tuple[int, list[bytes], list[str]]:
    """`pipeline classify --source auto -` on `data`, in this process."""
    from pipeline.cli import main

    stdin, stdout, stderr = io.BytesIO(data), io.BytesIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(patch.object(sys, "stdin", io.TextIOWrapper(stdin)))
        stack.enter_context(patch.object(sys, "stdout", io.TextIOWrapper(stdout)))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        code = main(["classify", "--source", "auto", "-"])
        sys.stdout.flush()
        written = stdout.getvalue()  # before the wrapper, going, closes it
    return code, written.splitlines(), stderr.getvalue().splitlines()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents(), min_size=1, max_size=6), st.sampled_from(["ndjson", "array"]))
def test_classify_answers_every_input_of_hostile_documents(docs: list[bytes], framing: str) -> None:
    if framing == "ndjson":  # one document a line (a line opening with `[` would be an array file)
        lines = [b"x" + doc if doc.lstrip()[:1] == b"[" else doc for doc in docs]
        lines = [line.replace(b"\n", b" ") for line in lines if line.strip()]
        data = b"\n".join(lines) + b"\n"
        expected = answers_expected(lines)
    else:
        data = b"[" + b",\n".join(doc or b"null" for doc in docs) + b"]"
        items = split_items(data)
        expected = 1 if items is None else answers_expected(items)
    code, out, err = classify_in_process(data)
    assert code == 0
    assert len(out) + len(err) == expected
    assert all(line.startswith("pipeline classify: ") for line in err)
    assert not any("Traceback" in line for line in err)
    for line in out:
        event = json.loads(line)
        assert event["source"] and event["event_id"] and event["time"]


def split_items(data: bytes) -> list[bytes] | None:
    """The items of a JSON array file as the reader gives them, or None when it is not one."""
    try:  # items as bytes: a string's bad UTF-8 is its record's problem, not the array's
        return [bytes(item) for item in msgspec.json.decode(data, type=list[msgspec.Raw])]
    except (msgspec.DecodeError, RecursionError):
        return None


def test_a_broken_line_before_a_deep_one_is_two_inputs_each_answered() -> None:
    """Found by the test above: read together, the broken line's open value runs into the
    deep line, too deep to tell whether the two make one document: they are two lines."""
    deep = b'{"records": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    code, out, err = classify_in_process(b'{"time": "2024-06-24T09:29:28Z", "op":\n' + deep + b"\n")
    assert code == 0 and out == []
    assert [line.split(": ")[1] for line in err] == ["stdin line 1", "stdin line 2"]


def test_classify_survives_what_no_generator_makes_small(tmp_path: Path) -> None:
    """Through the real command: a 100 MB line, nesting 100,000 deep, an array of Event Hubs
    bodies on one line, invalid UTF-8, a file ending in a truncated array: one answer each."""
    good = (FIXTURES / "okta" / "oie_password_success.json").read_bytes().replace(b"\n", b" ")
    entra = (FIXTURES / "entra" / "eh_signin_passkey_synced.json").read_bytes()
    bodies = json.dumps([{"records": [json.loads(entra)] * 2}] * 3).encode()
    huge = json.dumps({**json.loads(good), "displayMessage": "x" * 100_000_000}).encode()
    lines = [
        good,
        huge,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        bodies,
        b'{"uuid": "\xff\xfe", "published": "2026-03-02T10:00:00Z"}',
        b"\xc3( not even JSON",
        good,
        b'[{"uuid": "a"}, {"uuid": ',
    ]
    path = tmp_path / "hostile.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    done = pipeline_cli("classify", "--source", "auto", str(path), env={}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    out, err = done.stdout.splitlines(), done.stderr.splitlines()
    # good, huge (read or refused: one answer), 2 deep, 6 records, 2 unreadable, good, truncated
    assert len(out) + len(err) == 1 + 1 + 2 + 6 + 2 + 1 + 1
    assert len(out) >= 2 + 6  # the good events and the Event Hubs records are read
    assert sum(json.loads(line)["source"] == "entra" for line in out) == 6
