"""Split an input into raw events: a file (a JSON array, one JSON object, or NDJSON), and a
batch message into its records.

`split_batch` is the one splitter of vendor batches, for the CLI and the worker alike: a JSON
array, Entra Event Hubs `{"records": [...]}`, Microsoft Graph `{"value": [...]}`, ServiceNow
`{"result": [...]}`, Jira search `{"issues": [...]}`, Duo `{"response": {"authlogs": [...]}}`
or `{"response": [...]}`, PingOne `{"_embedded": {"activities": [...]}}`, Okta event hook
`{"data": {"events": [...]}}`. A key only makes an envelope when its value is a list, so a
record with, say, an object `result` stays a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO

import msgspec

# Paths from an envelope object to its list of events; only taken when the value is a list.
_ENVELOPES: tuple[tuple[str, ...], ...] = (
    ("records",),
    ("value",),
    ("result",),
    ("issues",),
    ("response", "authlogs"),
    ("response",),
    ("_embedded", "activities"),
    ("data", "events"),
)

# Envelopes inside envelopes (an array of Event Hubs bodies) are opened this deep.
MAX_NESTING = 3

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_raw = msgspec.json.Decoder(msgspec.Raw)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One raw event (`data`), or an input that could not be split into events (`error`)."""

    where: str
    data: bytes | None = None
    error: str | None = None


def read_records(stream: BinaryIO, name: str = "input") -> Iterator[RawRecord]:
    """Yield the raw events of one input, streaming NDJSON line by line."""
    first = _first_content_line(stream)
    if first is None:
        return
    number, line = first
    if line.lstrip().startswith(b"["):
        whole = line + stream.read()
        if _is_json(whole, too_deep=False) or not _is_json(line, too_deep=False):
            # an array, whole, broken or too deep to read: one document
            yield from _document(whole, name)
        else:  # NDJSON whose first line is an array
            yield from _ndjson(enumerate(whole.splitlines(), start=number), name)
        return
    if _is_json(line):
        yield from _ndjson(chain([(number, line)], enumerate(stream, start=number + 1)), name)
        return
    # A pretty-printed document spans lines: read it whole, or fall back to NDJSON lines.
    rest = stream.read()
    whole = line + rest
    if _is_json(whole, too_deep=False):
        yield from _document(whole, name)
        return
    yield from _ndjson(enumerate(whole.splitlines(), start=number), name)


def _document(data: bytes, where: str) -> Iterator[RawRecord]:
    stripped = data.strip()
    if stripped.startswith(b"["):
        try:
            items = _raw_list.decode(stripped)
        except msgspec.DecodeError as exc:
            yield RawRecord(where, error=f"not a valid JSON array: {exc}")
            return
        except RecursionError:
            yield RawRecord(where, error="not a JSON array that can be read: nested too deeply")
            return
        for index, item in enumerate(items):
            yield RawRecord(f"{where} item {index + 1}", data=bytes(item))
        return
    yield RawRecord(where, data=stripped)


def _ndjson(lines: Iterable[tuple[int, bytes]], name: str) -> Iterator[RawRecord]:
    for number, line in lines:
        stripped = line.strip()
        if stripped:
            yield RawRecord(f"{name} line {number}", data=stripped)


_ABSENT = msgspec.Raw()  # (msgspec takes Raw alone, not in a union with None)


class _Envelope(msgspec.Struct):
    """The top-level keys an envelope may hold its events under; the rest is skipped unread."""

    records: msgspec.Raw = _ABSENT
    value: msgspec.Raw = _ABSENT
    result: msgspec.Raw = _ABSENT
    issues: msgspec.Raw = _ABSENT
    response: msgspec.Raw = _ABSENT
    embedded: msgspec.Raw = msgspec.field(default=_ABSENT, name="_embedded")
    data: msgspec.Raw = _ABSENT


_envelope = msgspec.json.Decoder(_Envelope)
# (the struct's attribute of each path's first key, the path)
_PATHS = [(path[0].lstrip("_"), path) for path in _ENVELOPES]
_UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


def split_batch(data: bytes) -> list[bytes] | None:
    """The records of a batch message (a JSON array, or a vendor envelope), or None when
    `data` is one record, or cannot be read as a batch: its parser then says what is wrong.

    Batches inside batches are opened up to `MAX_NESTING` deep, the records coming out in
    order, flattened: an array's items may be envelopes or arrays (an array of Event Hubs
    bodies), an envelope's items arrays. An envelope's object items are its records: they are
    not scanned again (that would cost each record a second read). Never raises."""
    items = _items(data)
    if items is None:
        return None
    records: list[bytes] = []
    _flatten(items, data.lstrip()[:1] == b"[", 1, records)
    return records


def _flatten(items: list[bytes], in_array: bool, depth: int, records: list[bytes]) -> None:
    for item in items:
        opens = depth < MAX_NESTING and (in_array or item[:1] == b"[")
        inner = _items(item) if opens else None
        if inner is None:
            records.append(item)
        else:
            _flatten(inner, item[:1] == b"[", depth + 1, records)


def _items(data: bytes) -> list[bytes] | None:
    """The items of one level: a top-level array's, or an envelope's list."""
    try:
        head = data.lstrip()[:1]
        if head == b"[":
            return [bytes(item) for item in _raw_list.decode(data)]
        if head != b"{":
            return None
        top = _envelope.decode(data)
        for attribute, path in _PATHS:
            value = getattr(top, attribute)
            if value is _ABSENT:  # nearly every record: no envelope key at all
                continue
            for key in path[1:]:
                value = (
                    _raw_object.decode(value).get(key, _ABSENT) if _starts(value, b"{") else _ABSENT
                )
            if _starts(value, b"["):
                return [bytes(item) for item in _raw_list.decode(value)]
    except _UNREADABLE:
        return None
    return None


def _starts(value: msgspec.Raw, head: bytes) -> bool:
    # A Raw value holds exactly the value's bytes: no whitespace before it.
    return memoryview(value)[:1] == head


def _is_json(data: bytes, too_deep: bool = True) -> bool:
    """Whether `data` is one whole JSON value (checked, not built: a line may be 100 MB).
    Too deep to tell: `too_deep` (a line is one input, whose parser says it is too deep; the
    lines of a file may be a broken line and a deep one, each its own input)."""
    try:
        _raw.decode(data)
    except msgspec.DecodeError:
        return False
    except RecursionError:
        return too_deep
    return True


def _first_content_line(stream: BinaryIO) -> tuple[int, bytes] | None:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            return number, line
    return None
