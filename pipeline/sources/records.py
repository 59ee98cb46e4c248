"""Split an input file into raw events: a JSON array, one JSON object, or NDJSON.

`envelope_items` opens the vendors' API envelopes, so an API response can be piped in as it
comes (tried only on a document no parser reads, so plain events pay nothing for it):
Entra Event Hub `{"records": [...]}`, Microsoft Graph `{"value": [...]}`, ServiceNow
`{"result": [...]}`, Jira search `{"issues": [...]}`, Duo `{"response": {"authlogs": [...]}}`
or `{"response": [...]}`, PingOne `{"_embedded": {"activities": [...]}}`, Okta event hook
`{"data": {"events": [...]}}`.
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

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])


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
        yield from _document(line + stream.read(), f"{name}")
        return
    if _is_json(line):
        yield from _ndjson(chain([(number, line)], enumerate(stream, start=number + 1)), name)
        return
    # A pretty-printed document spans lines: read it whole, or fall back to NDJSON lines.
    rest = stream.read()
    whole = line + rest
    if _is_json(whole):
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
        for index, item in enumerate(items):
            yield RawRecord(f"{where} item {index + 1}", data=bytes(item))
        return
    yield RawRecord(where, data=stripped)


def _ndjson(lines: Iterable[tuple[int, bytes]], name: str) -> Iterator[RawRecord]:
    for number, line in lines:
        stripped = line.strip()
        if stripped:
            yield RawRecord(f"{name} line {number}", data=stripped)


def envelope_items(data: bytes) -> list[bytes] | None:
    """The events inside a vendor API envelope, or None when `data` is not one."""
    try:
        top = _raw_object.decode(data)
    except msgspec.DecodeError:
        return None  # the parser reports what is wrong with it
    for path in _ENVELOPES:
        value: msgspec.Raw | None = top.get(path[0])
        for key in path[1:]:
            if value is None:
                break
            try:
                value = _raw_object.decode(value).get(key)
            except msgspec.DecodeError:
                value = None
        if value is not None:
            try:
                return [bytes(item) for item in _raw_list.decode(value)]
            except msgspec.DecodeError:
                continue
    return None


def _is_json(data: bytes) -> bool:
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError:
        return False
    return True


def _first_content_line(stream: BinaryIO) -> tuple[int, bytes] | None:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            return number, line
    return None
