"""Time watermarks, for the vendors that give no resumable cursor (Graph, PingOne, ServiceNow,
Jira): where a round starts and ends, and, where the API's order is not ascending, slices of
time each read whole before the watermark moves past them.

A live round starts at the watermark less an overlap (events the vendor makes visible late
are read again; the warehouse stores each once by its vendor id) and ends a delay behind now.
A backfill starts where its own watermark stopped, with no overlap, and ends at `--until`.

Graph lists sign-ins newest first, and neither Graph's `$skiptoken` nor PingOne's next link
can be kept across runs (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/5974):
a watermark can only move once a whole time range has been read. So a round is cut into
slices: each is paged to its end, then its end is committed. A slice's length adapts: one
that took more than `pages` pages is halved next time (a crash re-reads less), one that fit in
a single page is doubled (an idle tenant costs few requests), within [`smallest`, `largest`].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.collect.paging import Fetched
from pipeline.collect.runner import Page, Span


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def round_start(
    cursor: Mapping[str, Any] | None, span: Span, overlap: timedelta, field: str = "until"
) -> datetime:
    """Where a round starts: the watermark (less the overlap when live), or the span's start."""
    if cursor is None or not isinstance(cursor.get(field), str):
        return span.start
    watermark = datetime.fromisoformat(cursor[field])
    return watermark if span.backfill else watermark - overlap


def round_end(span: Span, delay: timedelta, now: datetime | None = None) -> datetime:
    """Where a round ends: the backfill's end, else `delay` behind now (never in the future)."""
    latest = (now or datetime.now(UTC)) - delay
    return latest if span.end is None else min(span.end, latest)


@dataclass(frozen=True)
class Slicing:
    first: timedelta = timedelta(hours=1)
    smallest: timedelta = timedelta(minutes=1)
    largest: timedelta = timedelta(days=1)
    pages: int = 10

    def adapted(self, length: timedelta, pages: int) -> timedelta:
        if pages > self.pages:
            length = length / 2
        elif pages <= 1:
            length = length * 2
        return max(self.smallest, min(self.largest, length))


def sliced(
    start: datetime,
    end: datetime,
    cursor: Mapping[str, Any] | None,
    slicing: Slicing,
    fetch: Callable[[datetime, datetime], Iterator[Fetched]],
) -> Iterator[Page]:
    """The pages of [start, end) slice by slice; after each slice, a page with no records
    that commits its end as the watermark (`until`, and `time` for the status line)."""
    seconds = cursor.get("slice") if cursor is not None else None
    length = timedelta(seconds=seconds) if isinstance(seconds, int | float) else slicing.first
    length = max(slicing.smallest, min(slicing.largest, length))
    while start < end:
        stop = min(start + length, end)
        pages = 0
        for fetched in fetch(start, stop):
            pages += 1
            yield Page(fetched.records)
        length = slicing.adapted(length, pages)
        cursor = {"until": iso(stop), "slice": length.total_seconds(), "time": iso(stop)}
        yield Page([], cursor, fetched=0)
        start = stop
