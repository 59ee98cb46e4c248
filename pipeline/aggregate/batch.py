"""A batch of raw Kafka messages -> the rows the warehouse stores, with no I/O.

A message holds one record, or a vendor batch of them (an Event Hubs body, an Okta Event
Hook, a JSON array: sources/records.py `split_batch`); each record is parsed by its topic's
source parser (the roster topic holds roster rows). What cannot be read becomes a dead letter
carrying its own bytes, its message's place and its item index, and the reason; the rest of
the batch goes on. Every row is keyed by the vendor's own id (or the roster user), so writing
the same message twice stores it once (see schemas/clickhouse/).
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
from pipeline.sources.records import split_batch
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
DEAD_LETTER_COLUMNS = ("topic", "partition", "offset", "item", "source", "reason", "raw")
INGEST_BATCH_COLUMNS = (
    "topic",
    "partition",
    "source",
    "first_offset",
    "last_offset",
    "messages",
    "events",
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

# The warehouse keeps the head of a dead letter's bytes; the dead-letter topic keeps all of
# them up to what a Kafka topic takes by default (1 MB), and the raw topic the whole message.
DEAD_LETTER_STORED_BYTES = 16_384
DEAD_LETTER_TOPIC_BYTES = 900_000


@dataclass(frozen=True)
class Limits:
    """What an event and a message may be (PIPELINE_MAX_EVENT_BYTES, _MAX_MESSAGE_BYTES,
    _OLDEST_EVENT, _MAX_FUTURE_SECONDS). An event outside them is a dead letter; so is a
    message over its limit, whole and unsplit. Times matter beyond tidiness: the calendars of
    the rollup views run from the first event to the last, so one event dated 9999 would make
    every daily view millions of rows long."""

    max_event_bytes: int = 1_048_576
    max_message_bytes: int = 16_777_216
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


class Record(NamedTuple):
    """One event of a message: the whole message (`item` 0), or item `item` (from 1) of the
    `items` records of a vendor batch. `value` None and no `problem`: a batch holding no
    record, a message with no event. `problem`: why it is a dead letter before parsing."""

    message: RawMessage
    item: int
    items: int
    value: bytes | None
    problem: str | None = None


def records_of(messages: list[RawMessage], limits: Limits) -> list[Record]:
    """Each message's events, in order: itself, or its batch's records."""
    records: list[Record] = []
    for message in messages:
        value = message.value
        if value is None:
            records.append(Record(message, 0, 0, None, "empty message (no value)"))
        elif len(value) > limits.max_message_bytes:
            problem = (
                f"a message of {len(value):,} bytes, over the limit of "
                f"{limits.max_message_bytes:,} (PIPELINE_MAX_MESSAGE_BYTES): not split"
            )
            records.append(Record(message, 0, 0, value, problem))
        elif (items := split_batch(value)) is None:
            records.append(Record(message, 0, 0, value))
        elif not items:
            records.append(Record(message, 0, 0, None))
        else:
            count = len(items)
            records += [Record(message, n, count, item) for n, item in enumerate(items, 1)]
    return records


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    source: str
    reason: str

    @property
    def message(self) -> RawMessage:
        return self.record.message

    def topic_value(self) -> bytes | None:
        """What the dead-letter topic gets: the event's bytes, within what it takes."""
        value = self.record.value
        return value[:DEAD_LETTER_TOPIC_BYTES] if value is not None else None

    def headers(self) -> list[tuple[str, bytes]]:
        """Why, and where the event is in its raw topic (its message, and its item there)."""
        message, value = self.record.message, self.record.value
        headers = [
            ("dead_letter.reason", self.reason.encode()),
            ("dead_letter.source", self.source.encode()),
            ("dead_letter.topic", message.topic.encode()),
            ("dead_letter.partition", str(message.partition).encode()),
            ("dead_letter.offset", str(message.offset).encode()),
            ("dead_letter.item", str(self.record.item).encode()),
        ]
        if value is not None and len(value) > DEAD_LETTER_TOPIC_BYTES:
            headers.append(("dead_letter.truncated_from", str(len(value)).encode()))
        return headers


# (topic, partition, offset, item) of the records the warehouse refused -> its reason
Refused = Mapping[tuple[str, int, int, int], str]


@dataclass
class Batch:
    rows: dict[str, list[tuple]] = field(default_factory=lambda: {t: [] for t in TABLE_COLUMNS})
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # events by source (the roster as "roster"), dead letters included
    received: Counter[str] = field(default_factory=Counter)
    # (topic, partition) -> (first offset, last offset) of this batch
    ranges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    # (topic, partition) -> messages whose last record is in this batch
    messages: Counter[tuple[str, int]] = field(default_factory=Counter)
    # (topic, partition) -> events (records) of this batch
    events: Counter[tuple[str, int]] = field(default_factory=Counter)
    # partitions whose first or last message is only partly here: their (offset, item) spans
    partial: dict[tuple[str, int], tuple[tuple[int, int], tuple[int, int]]] = field(
        default_factory=dict
    )

    def dedup_token(self, table: str) -> str:
        """The batch's offset ranges (to the item where a batch holds part of a message): the
        same records written again are dropped whole."""
        spans = []
        for partition, (first, last) in sorted(self.ranges.items()):
            topic, number = partition
            if (edges := self.partial.get(partition)) is None:
                spans.append(f"{topic}:{number}:{first}-{last}")
            else:
                (start, item), (end, last_item) = edges
                spans.append(f"{topic}:{number}:{start}.{item}-{end}.{last_item}")
        digest = hashlib.sha256(",".join(spans).encode()).hexdigest()
        return f"{table}/{digest[:32]}"


@dataclass(frozen=True)
class BatchRules:
    """How the worker turns messages into rows, from its settings."""

    sources: dict[str, Source | None]  # topic -> its source (None: the roster)
    duo_fronted_apps: list[str]
    limits: Limits = field(default_factory=Limits)
    pseudonymize: Pseudonymizer | None = None
    batch_events: int = 10_000  # most events per warehouse write (a batch of bodies is split)

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchRules:
        key = settings.pseudonymization_key()
        return cls(
            settings.topics.source_of(),
            settings.duo_fronted_apps,
            Limits(
                max_event_bytes=settings.max_event_bytes,
                max_message_bytes=settings.max_message_bytes,
                oldest_event=settings.oldest_event,
                max_future=timedelta(seconds=settings.max_future_seconds),
            ),
            Pseudonymizer(key) if key is not None else None,
            settings.batch_size,
        )


def build_batch(
    messages: list[RawMessage],
    rules: BatchRules,
    end_offsets: Mapping[tuple[str, int], int | None] | None = None,
) -> Batch:
    """Parse, classify and fold one batch of messages (see `build_records_batch`)."""
    return build_records_batch(records_of(messages, rules.limits), rules, end_offsets)


def build_records_batch(
    records: list[Record],
    rules: BatchRules,
    end_offsets: Mapping[tuple[str, int], int | None] | None = None,
    refused: Refused | None = None,
) -> Batch:
    """Parse, classify and fold one batch of records (`records_of`, in order); `end_offsets`
    (where known) gives each partition's end as the consumer last saw it; `refused` names
    records the warehouse refused, with its reason: they are dead letters, not parsed."""
    batch = Batch()
    sources, limits, pseudonymize = rules.sources, rules.limits, rules.pseudonymize
    fold = SignInFold(rules.duo_fronted_apps)
    rows = batch.rows
    now = datetime.now(UTC)
    # (topic, partition) -> [first (offset, item), last (offset, item), items of the last]
    spans: dict[tuple[str, int], list] = {}
    for record in records:
        message = record.message
        partition = (message.topic, message.partition)
        position = (message.offset, record.item)
        span = spans.get(partition)
        if span is None:
            spans[partition] = [position, position, record.items]
        elif position < span[0]:
            span[0] = position
        elif position > span[1]:
            span[1:] = [position, record.items]
        if record.item == record.items:  # a message's last record (or its only one)
            batch.messages[partition] += 1
        if record.value is None and record.problem is None:
            continue  # a vendor batch with no record in it
        batch.events[partition] += 1
        source = sources.get(message.topic)
        label = _label(source)
        batch.received[label] += 1
        try:
            if record.problem is not None:
                raise RejectedEvent(record.problem)
            if refused and (reason := refused.get((*partition, *position))):
                raise RejectedEvent(reason)
            value = record.value
            if value is None:  # only a problem comes without a value
                raise RejectedEvent("empty message (no value)")
            if len(value) > limits.max_event_bytes:
                raise RejectedEvent(
                    f"{len(value):,} bytes, over the limit of {limits.max_event_bytes:,} "
                    "(PIPELINE_MAX_EVENT_BYTES)"
                )
            if source is None:
                row = _roster_row(value)
                rows["roster"].append(pseudonymize.roster_row(row) if pseudonymize else row)
                continue
            event = PARSERS[source](value)
            if (problem := limits.time_problem(event.time, now)) is not None:
                raise RejectedEvent(problem)
            if pseudonymize is not None:
                event = pseudonymize.event(event)
        except RejectedEvent as exc:
            batch.dead_letters.append(DeadLetter(record, label, exc.reason))
            continue
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            batch.dead_letters.append(DeadLetter(record, label, f"roster row: {reason}"))
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
            batch.dead_letters.append(DeadLetter(record, label, reason))
    for partition, (first, last, items) in spans.items():
        batch.ranges[partition] = (first[0], last[0])
        if first[1] > 1 or 0 < last[1] < items:
            batch.partial[partition] = (first, last)
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
            batch.events[(topic, partition)],
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
    raw = (dead.record.value or b"")[:DEAD_LETTER_STORED_BYTES] if keep_raw else b""
    return (
        dead.message.topic,
        dead.message.partition,
        dead.message.offset,
        dead.record.item,
        dead.source,
        dead.reason,
        raw.decode("utf-8", errors="replace"),
    )
