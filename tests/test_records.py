"""Splitting an input into raw events: JSON array, one object, NDJSON, vendor envelopes."""

from __future__ import annotations

import io
import json

from pipeline.sources.records import MAX_NESTING, RawRecord, read_records, split_batch


def _split(text: str) -> list[RawRecord]:
    return list(read_records(io.BytesIO(text.encode()), "in"))


def _payloads(records: list[RawRecord]) -> list[object]:
    return [json.loads(r.data) if r.data is not None else None for r in records]


def test_ndjson_lines_with_blank_lines() -> None:
    records = _split('{"a": 1}\n\n{"a": 2}\n')
    assert _payloads(records) == [{"a": 1}, {"a": 2}]
    assert [r.where for r in records] == ["in line 1", "in line 3"]


def test_json_array() -> None:
    records = _split('[{"a": 1},\n {"a": 2}]')
    assert _payloads(records) == [{"a": 1}, {"a": 2}]
    assert records[1].where == "in item 2"


def test_pretty_printed_single_object() -> None:
    records = _split(json.dumps({"a": {"b": [1, 2]}}, indent=2))
    assert _payloads(records) == [{"a": {"b": [1, 2]}}]


def test_bad_ndjson_line_is_passed_on_for_the_parser_to_reject() -> None:
    records = _split('{"a": 1}\n{"a": \n{"a": 3}\n')
    assert [r.data for r in records] == [b'{"a": 1}', b'{"a":', b'{"a": 3}']


def test_broken_first_line_falls_back_to_lines() -> None:
    records = _split('{"a": \n{"a": 2}\n')
    assert [r.data for r in records] == [b'{"a":', b'{"a": 2}']
    assert records[1].where == "in line 2"


def test_truncated_array_is_one_error() -> None:
    records = _split('[{"a": 1}, {"a": ')
    assert len(records) == 1
    assert records[0].data is None
    assert "not a valid JSON array" in (records[0].error or "")


def test_vendor_envelopes_are_opened() -> None:
    event_hub = {"records": [{"category": "SignInLogs"}, {"category": "AuditLogs"}]}
    graph = {"@odata.context": "x", "value": [{"id": "1"}]}
    duo = {"stat": "OK", "response": {"authlogs": [{"txid": "t"}], "metadata": {}}}
    duo_v1 = {"stat": "OK", "response": [{"action": "user_update"}]}
    pingone = {"_embedded": {"activities": [{"id": "p"}]}, "count": 1}
    okta_hook = {"eventType": "com.okta.event_hook", "data": {"events": [{"uuid": "o"}]}}
    servicenow = {"result": [{"sys_id": "s"}]}
    jira = {"startAt": 0, "issues": [{"key": "HELP-1"}]}
    expected = [
        (event_hub, [{"category": "SignInLogs"}, {"category": "AuditLogs"}]),
        (graph, [{"id": "1"}]),
        (duo, [{"txid": "t"}]),
        (duo_v1, [{"action": "user_update"}]),
        (pingone, [{"id": "p"}]),
        (okta_hook, [{"uuid": "o"}]),
        (servicenow, [{"sys_id": "s"}]),
        (jira, [{"key": "HELP-1"}]),
    ]
    for envelope, events in expected:
        items = split_batch(json.dumps(envelope).encode())
        assert items is not None, envelope
        assert [json.loads(item) for item in items] == events


def test_an_event_with_an_object_result_is_not_an_envelope() -> None:
    activity = {"id": "a", "result": {"status": "SUCCESS"}, "recordedAt": "2026-01-01T00:00:00Z"}
    assert split_batch(json.dumps(activity).encode()) is None
    assert split_batch(json.dumps({"value": "x", "records": {"a": 1}}).encode()) is None
    assert split_batch(b"not json") is None
    assert split_batch(b'{"records": [1, ') is None  # truncated: the parser says so


def test_an_array_is_a_batch_of_whatever_it_holds() -> None:
    assert split_batch(b' [1, {"a": 2}]') == [b"1", b'{"a": 2}']
    assert split_batch(b"[]") == []
    assert split_batch(b'{"records": []}') == []


def test_envelopes_inside_envelopes_are_flattened_in_order_to_a_depth() -> None:
    bodies = [{"records": [{"n": 1}, {"n": 2}]}, [{"n": 3}], {"n": 4}]
    assert [json.loads(item) for item in split_batch(json.dumps(bodies).encode()) or []] == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
        {"n": 4},
    ]
    nested: object = {"n": 5}
    for _ in range(MAX_NESTING + 1):
        nested = [nested]
    (deepest,) = split_batch(json.dumps(nested).encode()) or []
    assert json.loads(deepest) == [{"n": 5}]  # past the depth: one record, which its parser rejects


def test_the_splitter_never_raises() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for data in (deep, b'{"records": ' + deep + b"}", b'{"records": ["\xff"]}', b"\xff", b""):
        split_batch(data)


def test_empty_input() -> None:
    assert _split("\n  \n") == []
