"""`pipeline classify` as a user runs it: a subprocess, files in, NDJSON out, rejects on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IDP_SOURCES = ("okta", "entra", "ping", "duo")
REQUIRED_KEYS = {
    "source",
    "event_id",
    "time",
    "user",
    "kind",
    "outcome",
    "method",
    "raw_method",
    "passwordless",
    "session",
}


def _classify(source: str, data: bytes, *extra: str) -> tuple[list[dict], list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "classify", "--source", source, *extra, "-"],
        input=data,
        capture_output=True,
        check=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    return lines, result.stderr.decode().splitlines()


def _fixture_events(source: str) -> list[bytes]:
    """Every fixture of a source that its parser reads (malformed ones are named so)."""
    return [
        json.dumps(json.loads(path.read_bytes())).encode()
        for path in sorted((FIXTURES / source).glob("*.json"))
    ]


@pytest.fixture(scope="module")
def per_source() -> dict[str, tuple[list[bytes], list[dict], list[str]]]:
    results = {}
    for source in IDP_SOURCES:
        events = _fixture_events(source)
        lines, errors = _classify(source, b"\n".join(events))
        results[source] = (events, lines, errors)
    return results


def test_every_line_carries_the_interface_fields(per_source: dict) -> None:
    for source, (events, lines, errors) in per_source.items():
        assert len(lines) + len(errors) == len(events), source
        assert lines, source
        for line in lines:
            assert line.keys() >= REQUIRED_KEYS
            assert line["source"] == source
            assert line["time"].endswith("Z")
            if line["kind"] in ("authentication", "authentication_step"):
                assert isinstance(line["passwordless"], bool)
            else:
                assert line["passwordless"] is None


def test_auto_over_a_mixed_file_equals_each_source_alone(per_source: dict) -> None:
    mixed = [event for source in IDP_SOURCES for event in per_source[source][0]]
    # Interleave the sources, as a shared file would hold them.
    mixed = mixed[::2] + mixed[1::2]
    auto_lines, auto_errors = _classify("auto", b"\n".join(mixed))
    alone = [line for source in IDP_SOURCES for line in per_source[source][1]]
    key = lambda line: json.dumps(line, sort_keys=True)  # noqa: E731
    assert sorted(map(key, auto_lines)) == sorted(map(key, alone))
    assert len(auto_errors) == sum(len(per_source[s][2]) for s in IDP_SOURCES)


def test_bad_input_is_one_stderr_line_each_and_the_run_goes_on() -> None:
    good = _fixture_events("okta")[0]
    data = b"\n".join([good, b'{"uuid": "x", "published": ', b"[1, 2]", b'{"eventType": 5}', good])
    lines, errors = _classify("okta", data)
    assert len(lines) == 2
    assert len(errors) == 4  # the array is a batch of two records, each its own answer
    assert all(error.startswith("pipeline classify: stdin line ") for error in errors)
    assert "invalid JSON" in errors[0]
    assert [error.split(":")[1] for error in errors[1:3]] == [
        " stdin line 3 record 1",
        " stdin line 3 record 2",
    ]


def test_auto_rejects_an_event_of_no_known_shape() -> None:
    lines, errors = _classify("auto", b'{"hello": "world"}')
    assert lines == []
    assert len(errors) == 1
    assert "cannot tell the source" in errors[0]


def test_json_array_and_stats(tmp_path: Path) -> None:
    events = [json.loads(e) for e in _fixture_events("entra")]
    path = tmp_path / "entra.json"
    path.write_text(json.dumps(events, indent=2))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "classify",
            "--source",
            "entra",
            "--stats",
            str(path),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    lines = result.stdout.decode().splitlines()
    summary = result.stderr.decode().splitlines()[-1]
    assert summary.startswith(f"pipeline classify: {len(lines)} classified")


def test_an_api_response_is_classified_event_by_event() -> None:
    events = [json.loads(e) for e in _fixture_events("entra")]
    graph_response = {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata",
        "value": events,
    }
    lines, errors = _classify("entra", json.dumps(graph_response).encode())
    alone, alone_errors = _classify("entra", b"\n".join(_fixture_events("entra")))
    assert lines == alone
    assert len(errors) == len(alone_errors)
    assert all(" record " in error for error in errors)
