"""A batch of raw Kafka messages -> the rows the warehouse stores, with no I/O.

Each message is parsed by its topic's source parser (the roster topic holds roster rows).
What cannot be read becomes a dead letter carrying the original bytes and the reason; the
rest of the batch goes on. Every row is keyed by the vendor's own id (or the roster user),
so writing the same message twice stores it once (see schemas/clickhouse/).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pydantic import ValidationError

from pipeline.aggregate.privacy import Pseudonymizer
from pipeline.aggregate.signins import SIGN_IN_PART_COLUMNS, SignInFold
from pipeline.model import AuthEvent, EnrollmentEvent, HelpdeskTicket, Source, WorkforceUser
from pipeline.settings import Settings
from pipeline.sources.registry import PARSERS, RejectedEvent

AUTH_EVENT_COLUMNS = (
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
    "event_type",
    "factors",
    "raw_factors",
    "interactive",
    "app",
    "src_ip",
    "country",
    "reason",
    "fronted_idp",
    "topic",
    "partition",
    "offset",
)
ENROLLMENT_COLUMNS = (
    "source",
    "event_id",
    "time",
    "user",
    "method",
    "raw_method",
    "action",
    "passwordless_factor",
    "event_type",
)
TICKET_COLUMNS = ("event_id", "time", "user", "system", "number", "scenario", "summary")
ROSTER_COLUMNS = (
    "user",
    "display_name",
    "department",
    "country",
    "privileged",
    "idp",
    "active_from",
    "terminated_on",
)
# received_at and written_at are the warehouse's clock (their column defaults), not the worker's
DEAD_LETTER_COLUMNS = ("topic", "partition", "offset", "source", "reason", "raw")
INGEST_BATCH_COLUMNS = (
    "topic",
    "partition",
    "source",
    "first_offset",
    "last_offset",
    "messages",
    "end_offset",
)

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "auth_events": AUTH_EVENT_COLUMNS,
    "sign_in_parts": SIGN_IN_PART_COLUMNS,
    "enrollment_events": ENROLLMENT_COLUMNS,
    "tickets": TICKET_COLUMNS,
    "roster": ROSTER_COLUMNS,
    "dead_letters": DEAD_LETTER_COLUMNS,
    "ingest_batches": INGEST_BATCH_COLUMNS,
}

# The warehouse keeps the head of a dead letter's bytes; the topic keeps all of them.
DEAD_LETTER_STORED_BYTES = 16_384


@dataclass(frozen=True)
class Limits:
    """What an event may be (PIPELINE_MAX_EVENT_BYTES, _OLDEST_EVENT, _MAX_FUTURE_SECONDS).
    An event outside them is a dead letter. Times matter beyond tidiness: the calendars of the
    rollup views run from the first event to the last, so one event dated 9999 would make
    every daily view millions of rows long."""

    max_event_bytes: int = 1_048_576
    oldest_event: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(days=1)

    def time_problem(self, time: datetime, now: datetime) -> str | None:
        if time < self.oldest_event:
            return f"event time {time.isoformat()} is before {self.oldest_event.date()}"
        if time > now + self.max_future:
            return f"event time {time.isoformat()} is more than {self.max_future} ahead"
        return None


class RawMessage(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    message: RawMessage
    source: str
    reason: str


@dataclass
class Batch:
    rows: dict[str, list[tuple]] = field(default_factory=lambda: {t: [] for t in TABLE_COLUMNS})
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # events by source (the roster as "roster"), dead letters included
    received: Counter[str] = field(default_factory=Counter)
    # (topic, partition) -> (first offset, last offset) of this batch
    ranges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    # (topic, partition) -> messages of this batch
    messages: Counter[tuple[str, int]] = field(default_factory=Counter)

    def dedup_token(self, table: str) -> str:
        """The batch's offset ranges: the same messages written again are dropped whole."""
        spans = ",".join(f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items()))
        return f"{table}/{hashlib.sha256(spans.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class BatchRules:
    """How the worker turns messages into rows, from its settings."""

    sources: dict[str, Source | None]  # topic -> its source (None: the roster)
    duo_fronted_apps: list[str]
    limits: Limits = field(default_factory=Limits)
    pseudonymize: Pseudonymizer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchRules:
        key = settings.pseudonymization_key()
        return cls(
            settings.topics.source_of(),
            settings.duo_fronted_apps,
            Limits(
                settings.max_event_bytes,
                settings.oldest_event,
                timedelta(seconds=settings.max_future_seconds),
            ),
            Pseudonymizer(key) if key is not None else None,
        )


def build_batch(
    messages: list[RawMessage],
    rules: BatchRules,
    end_offsets: Mapping[tuple[str, int], int | None] | None = None,
    refused: Mapping[tuple[str, int, int], str] | None = None,
) -> Batch:
    """Parse, classify and fold one batch; `end_offsets` (where known) gives each
    partition's end as the consumer last saw it; `refused` names messages (topic, partition,
    offset) the warehouse refused, with its reason: they are dead letters, not parsed."""
    batch = Batch()
    sources, limits, pseudonymize = rules.sources, rules.limits, rules.pseudonymize
    fold = SignInFold(rules.duo_fronted_apps)
    rows = batch.rows
    now = datetime.now(UTC)
    for message in messages:
        partition = (message.topic, message.partition)
        span = batch.ranges.get(partition)
        batch.ranges[partition] = (
            (message.offset, message.offset)
            if span is None
            else (min(span[0], message.offset), max(span[1], message.offset))
        )
        batch.messages[partition] += 1
        source = sources.get(message.topic)
        label = _label(source)
        batch.received[label] += 1
        try:
            if refused and (reason := refused.get((*partition, message.offset))):
                raise RejectedEvent(reason)
            if message.value is None:
                raise RejectedEvent("empty message (no value)")
            if len(message.value) > limits.max_event_bytes:
                raise RejectedEvent(
                    f"{len(message.value):,} bytes, over the limit of {limits.max_event_bytes:,} "
                    "(PIPELINE_MAX_EVENT_BYTES)"
                )
            if source is None:
                row = _roster_row(message.value)
                rows["roster"].append(pseudonymize.roster_row(row) if pseudonymize else row)
                continue
            event = PARSERS[source](message.value)
            if (problem := limits.time_problem(event.time, now)) is not None:
                raise RejectedEvent(problem)
            if pseudonymize is not None:
                event = pseudonymize.event(event)
        except RejectedEvent as exc:
            batch.dead_letters.append(DeadLetter(message, label, exc.reason))
            continue
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            batch.dead_letters.append(DeadLetter(message, label, f"roster row: {reason}"))
            continue
        if isinstance(event, AuthEvent):
            rows["auth_events"].append(_auth_row(event, fold.fronted_idp(event), message))
            fold.add(event)
        elif isinstance(event, EnrollmentEvent):
            rows["enrollment_events"].append(_enrollment_row(event))
        elif isinstance(event, HelpdeskTicket):
            rows["tickets"].append(_ticket_row(event))
        else:  # a parser returned a kind no table takes: kept as a dead letter, not dropped
            reason = f"no table for a {type(event).__name__} (kind {getattr(event, 'kind', None)})"
            batch.dead_letters.append(DeadLetter(message, label, reason))
    rows["sign_in_parts"] = fold.rows()
    keep_raw = pseudonymize is None
    rows["dead_letters"] = [_dead_letter_row(dead, keep_raw) for dead in batch.dead_letters]
    ends = end_offsets or {}
    rows["ingest_batches"] = [
        (
            topic,
            partition,
            _label(sources.get(topic)),
            first,
            last,
            batch.messages[(topic, partition)],
            ends.get((topic, partition)),
        )
        for (topic, partition), (first, last) in batch.ranges.items()
    ]
    return batch


def _label(source: Source | None) -> str:
    return source.value if source else "roster"


def _auth_row(event: AuthEvent, fronted_idp: str | None, message: RawMessage) -> tuple:
    return (
        event.source.value,
        event.event_id,
        event.time,
        event.user or "",
        event.kind.value,
        event.outcome.value,
        event.method.value if event.method else None,
        event.raw_method,
        event.passwordless,
        event.session,
        event.event_type,
        [factor.value for factor in event.factors],
        event.raw_factors,
        event.interactive,
        event.app,
        event.src_ip,
        event.country,
        event.reason,
        fronted_idp,
        message.topic,
        message.partition,
        message.offset,
    )


def _enrollment_row(event: EnrollmentEvent) -> tuple:
    return (
        event.source.value,
        event.event_id,
        event.time,
        event.user or "",
        event.method.value if event.method else None,
        event.raw_method,
        event.action,
        event.passwordless_factor,
        event.event_type,
    )


def _ticket_row(event: HelpdeskTicket) -> tuple:
    return (
        event.event_id,
        event.time,
        event.user or "",
        event.system,
        event.number,
        event.scenario.value,
        event.summary,
    )


def _roster_row(value: bytes) -> tuple:
    user = WorkforceUser.model_validate_json(value)
    return (
        user.user.lower(),
        user.display_name,
        user.department,
        user.country,
        user.privileged,
        user.idp.value if user.idp else None,
        user.active_from,
        user.terminated_on,
    )


def _dead_letter_row(dead: DeadLetter, keep_raw: bool) -> tuple:
    raw = (dead.message.value or b"")[:DEAD_LETTER_STORED_BYTES] if keep_raw else b""
    return (
        dead.message.topic,
        dead.message.partition,
        dead.message.offset,
        dead.source,
        dead.reason,
        raw.decode("utf-8", errors="replace"),
    )
