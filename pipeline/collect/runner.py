"""The collectors' one loop: rounds of pages from a vendor's streams into a raw topic, each
page's events acknowledged by Kafka before the cursor that covers them is committed.

A collector is a few streams (Okta: its System Log; Entra: interactive and non-interactive
sign-ins and directory audits; Duo: four logs), each with a cursor of its own. A round takes
each stream from its cursor as far as the vendor has events (live), or through the window of
a backfill (`--since/--until`, with cursors of its own, so that a backfill killed and started
again with the same window resumes, and says so when it is already complete).

Framing: one event per Kafka message, the vendor's record as it sent it, keyed by the user's
login as the worker's parser reads it (so one person's events share a partition, and other
consumers of the raw topics, a SIEM, can read them too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from pipeline.collect.cursor import CursorStore
from pipeline.collect.http import GaveUp, Stopped, VendorClient
from pipeline.collect.pacing import Pacer
from pipeline.collect.progress import Progress
from pipeline.collect.settings import CollectSettings
from pipeline.model import Source
from pipeline.runtime.broker import BufferedProducer
from pipeline.runtime.metrics import CollectorMetrics
from pipeline.settings import Topics
from pipeline.sources.registry import PARSERS, RejectedEvent

log = logging.getLogger("pipeline.collect")


@dataclass(frozen=True)
class Page:
    """Records to produce, then the stream's cursor after them (None: nothing to commit yet,
    as inside a time slice that must be read whole)."""

    records: list[bytes]
    cursor: dict[str, Any] | None = None
    fetched: int = 1  # vendor pages it stands for (0: a cursor alone)


@dataclass(frozen=True)
class Span:
    """What a round covers. Live: from a stream's cursor (or `start`, without one) up to now,
    less the stream's delay. Backfill: `start` to `end`."""

    start: datetime
    end: datetime | None = None

    @property
    def backfill(self) -> bool:
        return self.end is not None

    def label(self) -> str:
        if self.end is None:
            return "live"
        return f"backfill/{_stamp(self.start)}/{_stamp(self.end)}"


class Stream(Protocol):
    """One vendor log with a cursor of its own. `round` yields its pages from `cursor` (None:
    start at `span.start`); every cursor it yields carries `time`, the newest event time it
    covers (ISO 8601), for the status line."""

    name: str

    def round(self, cursor: Mapping[str, Any] | None, span: Span) -> Iterator[Page]: ...


@dataclass
class Context:
    """What a vendor module builds its collector with."""

    collect: CollectSettings
    topics: Topics
    progress: Progress
    stop: threading.Event
    pacer: Pacer
    clients: list[VendorClient] = field(default_factory=list)

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def client(
        self,
        vendor: str,
        permission: str,
        base_url: str = "",
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> VendorClient:
        """An HTTP client with this run's retries, pacing, progress and stop."""
        client = VendorClient(
            vendor,
            progress=self.progress,
            pacer=self.pacer,
            stop=self.stop,
            permission=permission,
            base_url=base_url,
            auth=auth,
            attempts=self.collect.attempts,
            timeout=self.collect.timeout,
            backoff_max=self.collect.backoff_max,
            retry_after_max=self.collect.retry_after_max,
            verify=self.collect.verify(),
            headers=headers,
        )
        self.clients.append(client)
        return client


@dataclass
class Collector:
    name: str  # the command's source name: okta, entra, …
    tenant: str  # whose logs: a domain, a tenant id, an API host
    topic: str
    streams: list[Stream]
    poll_seconds: float
    key: Callable[[bytes], bytes | None]
    # False: the streams have no cursor (the directory is listed whole each round)
    cursors: bool = True

    def cursor_key(self, stream: Stream, span: Span) -> str:
        return f"{self.name}/{self.tenant}/{stream.name}/{span.label()}"


def user_key(source: Source) -> Callable[[bytes], bytes | None]:
    """A record's Kafka key: the login its source's parser reads (as the worker will), or
    none for a record the parser refuses (the worker makes it a dead letter)."""
    parse = PARSERS[source]

    def key(raw: bytes) -> bytes | None:
        try:
            user = parse(raw).user
        except RejectedEvent:
            return None
        return user.encode() if user else None

    return key


class Runner:
    def __init__(
        self,
        collector: Collector,
        producer: BufferedProducer,
        cursors: CursorStore | None,
        progress: Progress,
        stop: threading.Event,
        status_seconds: float = 60.0,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self._collector = collector
        self._metrics = metrics
        self._producer = producer
        self._cursors = cursors
        self._progress = progress
        self._stop = stop
        self._status_seconds = status_seconds
        self._last_status = time.monotonic()

    def run(self, span: Span, once: bool) -> None:
        """Rounds until stopped; one with `once`; a backfill until its window is done.
        Raises CollectError when the vendor refuses, or (one round, a backfill) keeps
        failing; a live collector logs a failed round and tries again at the next poll."""
        collector = self._collector
        if self._cursors is not None:
            self._cursors.load()
            for stream in collector.streams:
                cursor = self._cursors.get(collector.cursor_key(stream, span))
                if cursor is not None:
                    self._note_cursor(stream, cursor)
        pending = [stream for stream in collector.streams if not self._done(stream, span)]
        if span.backfill and not pending:
            log.info("%s: the %s is already complete", collector.name, span.label())
            return
        while not self._stop.is_set():
            self._progress.rounds += 1
            self._progress.next_poll = None
            try:
                for stream in pending:
                    self._stream_round(stream, span)
            except Stopped:
                break
            except GaveUp as exc:
                if once or span.backfill:
                    raise
                self._progress.errors += 1
                log.error("%s: this round failed: %s", collector.name, exc)
            if span.backfill or once or self._stop.is_set():
                self._status()
                break
            self._progress.next_poll = datetime.now(UTC) + timedelta(seconds=collector.poll_seconds)
            self._status()
            self._stop.wait(collector.poll_seconds)

    def _stream_round(self, stream: Stream, span: Span) -> None:
        key = self._collector.cursor_key(stream, span)
        cursor = self._cursors.get(key) if self._cursors is not None else None
        for page in stream.round(cursor, span):
            self._produce(page.records)
            self._progress.pages += page.fetched
            if page.cursor is not None and self._cursors is not None:
                self._cursors.commit(key, page.cursor)
                self._note_cursor(stream, page.cursor)
            self._publish()
            if time.monotonic() - self._last_status >= self._status_seconds:
                self._status()
            if self._stop.is_set():
                raise Stopped
        if span.backfill and self._cursors is not None:
            last = self._cursors.get(key) or {}
            self._cursors.commit(key, {**last, "done": True})

    def _produce(self, records: list[bytes]) -> None:
        if not records:
            return
        topic, key = self._collector.topic, self._collector.key
        for raw in records:
            self._producer.send(topic, key(raw), raw)
        self._producer.flush()  # acks=all: every event is in Kafka before the cursor moves
        self._progress.events += len(records)

    def _done(self, stream: Stream, span: Span) -> bool:
        if self._cursors is None or not span.backfill:
            return False
        cursor = self._cursors.get(self._collector.cursor_key(stream, span))
        return bool(cursor and cursor.get("done"))

    def _note_cursor(self, stream: Stream, cursor: Mapping[str, Any]) -> None:
        if (when := cursor_time(cursor)) is not None:
            self._progress.cursor_times[stream.name] = when

    def _status(self) -> None:
        self._last_status = time.monotonic()
        self._publish()
        log.info("%s: %s", self._collector.name, self._progress.status_line())

    def _publish(self) -> None:
        """The status line's figures to /metrics (runtime/metrics.py), when served."""
        if self._metrics is None:
            return
        progress = self._progress
        self._metrics.progress(
            progress.collector,
            events=progress.events,
            pages=progress.pages,
            rate_limited=progress.rate_limited,
            errors=progress.errors,
            cursor_time=progress.cursor_time(),
        )


def cursor_time(cursor: Mapping[str, Any] | None) -> datetime | None:
    """The newest event time a cursor covers (its `time`), if it says."""
    stamp = cursor.get("time") if cursor is not None else None
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
