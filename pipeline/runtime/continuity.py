"""Every message of a partition, in order: the worker's check that Faust handed it all of them.

Faust commits what was acknowledged, and it treats offsets it never delivered as a gap that
Kafka does not hold (compaction, transaction markers) and commits past it. In one race of its
recovery after a (re)start, it drops messages it had already fetched (faust-streaming#596 and
#216 describe the family); seen here, with a worker restarted after a SIGKILL, as five
messages of one partition never written while the offsets after them were committed.

So, per partition, the worker keeps the next offset it must see: the group's committed offset
when the partition was assigned, then one past the last message it took. A batch that starts
past it is checked against Kafka itself: if Kafka holds a message there, Faust dropped it, and
the worker stops before acknowledging anything past it, so that a restart reads it again.

The check fails closed. Offsets are let through only when Kafka positively says it holds no
message there: a fetch positioned at the first of them (or at the log's start, when the log
starts after it) answers with a record at or past the end of the range (the offsets between
are transaction markers or compacted away). A broker that does not answer in time (slow, a
TLS / SASL handshake stuck, a leader moving), or says the log ends before the range although
the stream has just delivered an offset past it (a stale answer), is asked again a few
times, and then the check raises `ContinuityUnknown`: the worker stops without
acknowledging, as for a dropped message. Silence is never taken for absence.
(The end offsets of a ListOffsets request are not used: the embedded broker, Tansu 0.6,
answers it short of the true end, see pipeline/runtime/lag.py; a fetch's high watermark is exact.)

The same questions tell the watchdog (pipeline/runtime/watchdog.py) where the worker stands:
`positions` gives, per assigned partition, the group's committed offset, the next offset the
stream must deliver, the partition's end, and whether Kafka holds a message at that next
offset: the consumer lag, and the sign of a stream that stalled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import OffsetOutOfRangeError

from pipeline.aggregate.batch import RawMessage
from pipeline.runtime.lag import committed_offsets
from pipeline.settings import Kafka

log = logging.getLogger("pipeline.worker")

# (topic, partition, the offset expected, the offset seen instead)
Jump = tuple[str, int, int, int]

_T = TypeVar("_T")

# How often a question is put to Kafka before the check gives up, and the pause before the
# second attempt (doubled before each next one). Each attempt is bounded by the connect
# timeout of the Kafka settings. Three attempts over a couple of seconds ride out a dropped
# connection or a partition leader moving; more would only keep a worker whose Kafka cannot
# answer holding its partitions without progress, where stopping gets it restarted and seen.
ATTEMPTS = 3
BACKOFF = 0.5
# How long one fetch waits at the broker for records (and one poll for the fetch): short,
# since an empty answer carries the high watermark, which is an answer too.
_FETCH_WAIT = 0.1


@dataclass(frozen=True)
class Position:
    """Where a worker stands in one partition, as Kafka answers it."""

    start: int  # where the group resumes: its committed offset, or the log's first offset
    next: int  # the next offset the stream must deliver: `start`, or past what it delivered
    end: int  # the partition's end (a fetch's high watermark)
    held: int | None  # the first offset at or past `next` that Kafka holds a message at

    @property
    def lag(self) -> int:
        """Messages the group has not committed yet."""
        return max(0, self.end - self.start)


class DroppedMessages(RuntimeError):
    """Kafka holds messages of a partition that the stream skipped."""


class ContinuityUnknown(DroppedMessages):
    """Kafka could not be asked whether it holds skipped messages (or where the worker
    resumes): treated as a dropped message, so nothing is acknowledged past the question."""


class Continuity:
    """The next offset this worker must see per partition, for one consumer generation. Its
    state changes on the event loop only; Kafka is asked in a thread."""

    def __init__(self, bootstrap: str, group: str, kafka: Kafka) -> None:
        self._bootstrap, self._group, self._kafka = bootstrap, group, kafka
        self._generation: int | None = None
        self._expected: dict[tuple[str, int], int] = {}

    async def gaps(self, messages: Iterable[RawMessage], generation: int) -> list[Jump]:
        """Each jump past the expected offset; advances the expected offsets. A new generation
        (a rebalance) starts again from the committed offsets."""
        if generation != self._generation:
            self._generation, self._expected = generation, {}
        by_partition: dict[tuple[str, int], list[int]] = {}
        for message in messages:
            by_partition.setdefault((message.topic, message.partition), []).append(message.offset)
        if unknown := [tp for tp in by_partition if tp not in self._expected]:
            names = ", ".join(f"{topic}[{partition}]" for topic, partition in unknown)
            starts = await self._ask(
                f"where the worker resumes {names} (the group's committed offsets)",
                "nothing of this batch was acknowledged",
                self._starts,
                unknown,
            )
            for tp, start in starts.items():
                self._expected.setdefault(tp, start)
        jumps = []
        for tp, offsets in by_partition.items():
            expected = self._expected.get(tp)
            for offset in offsets:
                if expected is not None and offset > expected:
                    jumps.append((*tp, expected, offset))
                if expected is None or offset >= expected:
                    expected = offset + 1
            self._expected[tp] = expected  # type: ignore[assignment]
        return jumps

    async def dropped(self, jump: Jump) -> int | None:
        """The first offset of the jump's range that Kafka holds a message at; None only when
        Kafka says it holds none. Raises ContinuityUnknown when Kafka does not say."""
        topic, partition, start, end = jump
        return await self._ask(
            f"whether Kafka holds offsets {start} to {end - 1} of {topic}[{partition}]",
            f"nothing past offset {start - 1} of it was acknowledged",
            self._first_held,
            *jump,
        )

    async def _ask(self, question: str, kept: str, call: Callable[..., _T], *args: object) -> _T:
        """`call(*args)` in a thread, attempted ATTEMPTS times; ContinuityUnknown if none
        answers. Each attempt bounds its own Kafka calls by the connect timeout; the thread is
        also given up on after twice that, whatever the client does (it ends on its own)."""
        loop = asyncio.get_running_loop()
        timeout = self._kafka.connect_timeout
        pause = BACKOFF
        failures: list[str] = []
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await asyncio.wait_for(loop.run_in_executor(None, call, *args), 2 * timeout)
            except Exception as exc:  # a timeout, a connection error, a broker error: no answer
                failures.append(_described(exc))
                log.warning(
                    "could not check %s (attempt %s of %s): %s",
                    question,
                    attempt,
                    ATTEMPTS,
                    failures[-1],
                )
            if attempt < ATTEMPTS:
                await asyncio.sleep(pause)
                pause *= 2
        raise ContinuityUnknown(
            f"could not check {question}: Kafka gave no answer in {ATTEMPTS} attempts of "
            f"{timeout:g} s each (PIPELINE_KAFKA_CONNECT_TIMEOUT; last: {failures[-1]}); "
            f"{kept}, so a restart checks again"
        )

    def _first_held(self, topic: str, partition: int, start: int, end: int) -> int | None:
        """One attempt: the first offset in [start, end) Kafka holds, None when Kafka says it
        holds none; TimeoutError when it says neither within the connect timeout."""
        deadline = time.monotonic() + self._kafka.connect_timeout
        tp = TopicPartition(topic, partition)
        consumer = self._consumer(auto_offset_reset="none")  # out of range raises, not moves
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            while (left := deadline - time.monotonic()) > 0:
                try:
                    fetched = consumer.poll(timeout_ms=_ms(min(left, _FETCH_WAIT)), max_records=50)
                except OffsetOutOfRangeError:
                    first = consumer.beginning_offsets([tp], timeout_ms=_ms(left)).get(tp)
                    if first is None:
                        raise TimeoutError(f"no first offset of {topic}[{partition}]") from None
                    if first <= start:  # the log would end before `start`: see below
                        raise _stale(topic, partition, start, end) from None
                    consumer.seek(tp, first)  # offsets before `first` were deleted
                    continue
                # A fetch can return a whole record batch from before `start`.
                held = [r.offset for r in fetched.get(tp, []) if r.offset >= start]
                if held:
                    return held[0] if held[0] < end else None
                highwater = consumer.highwater(tp)  # from an answer to this consumer's fetch
                if highwater is not None and highwater <= start:
                    raise _stale(topic, partition, start, end)
            raise TimeoutError(
                f"no record and no high watermark at offset {start} within "
                f"{self._kafka.connect_timeout:g} s"
            )
        finally:
            consumer.close(autocommit=False, timeout_ms=self._timeout_ms())

    def positions(
        self, partitions: list[tuple[str, int]], delivered: Mapping[tuple[str, int], int]
    ) -> dict[tuple[str, int], Position]:
        """Where the worker stands in each partition (`delivered`: one past the last offset
        the stream delivered, where it did). One attempt, bounded by the connect timeout
        (TimeoutError, or the client's error): a question for a thread, not the event loop."""
        deadline = time.monotonic() + self._kafka.connect_timeout
        starts = self._starts(partitions)
        nexts = {tp: max(starts[tp], delivered.get(tp, 0)) for tp in partitions}
        wanted = {tp: TopicPartition(*tp) for tp in partitions}
        # One record is enough to know that Kafka holds one (a fetch still returns the whole
        # first record batch: KIP-74), and an empty answer carries the high watermark.
        consumer = self._consumer(auto_offset_reset="earliest", max_partition_fetch_bytes=1024)
        held: dict[tuple[str, int], int] = {}
        ends: dict[tuple[str, int], int] = {}
        try:
            consumer.assign(list(wanted.values()))
            for tp, partition in wanted.items():
                consumer.seek(partition, nexts[tp])
            while len(ends) < len(wanted) and (left := deadline - time.monotonic()) > 0:
                fetched = consumer.poll(timeout_ms=_ms(min(left, _FETCH_WAIT)), max_records=500)
                for partition, records in fetched.items():
                    tp = (partition.topic, partition.partition)
                    first = next((r.offset for r in records if r.offset >= nexts[tp]), None)
                    if first is not None and tp not in held:
                        held[tp] = first
                        consumer.pause(partition)  # the rest of it is not the question
                for tp, partition in wanted.items():
                    highwater = consumer.highwater(partition)
                    answered = highwater is not None and (tp in held or highwater <= nexts[tp])
                    if answered and tp not in ends:
                        ends[tp] = max(highwater, held.get(tp, -1) + 1)
        finally:
            consumer.close(autocommit=False, timeout_ms=self._timeout_ms())
        if missing := [f"{t}[{p}]" for t, p in wanted if (t, p) not in ends]:
            raise TimeoutError(
                f"no high watermark of {', '.join(missing)} within "
                f"{self._kafka.connect_timeout:g} s"
            )
        return {tp: Position(starts[tp], nexts[tp], ends[tp], held.get(tp)) for tp in partitions}

    def _starts(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Where the worker resumes each partition: the group's committed offset, or, with none
        (the worker reads from the earliest), the partition's first offset."""
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        admin = KafkaAdminClient(bootstrap_servers=self._bootstrap, **self._options())
        try:
            committed = committed_offsets(admin, self._group, wanted)
        finally:
            admin.close()
        starts = {(tp.topic, tp.partition): offset for tp, offset in committed.items()}
        if fresh := [tp for tp in wanted if (tp.topic, tp.partition) not in starts]:
            consumer = self._consumer()
            try:
                first = consumer.beginning_offsets(fresh, timeout_ms=self._timeout_ms())
                for tp, offset in first.items():
                    starts[(tp.topic, tp.partition)] = offset
            finally:
                consumer.close(autocommit=False, timeout_ms=self._timeout_ms())
        return starts

    def _consumer(self, **options: object) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            # Below the request timeout, as the client requires.
            fetch_max_wait_ms=min(_ms(_FETCH_WAIT), self._timeout_ms() // 2),
            **options,
            **self._options(),
        )

    def _timeout_ms(self) -> int:
        return _ms(self._kafka.connect_timeout)

    def _options(self) -> dict[str, object]:
        """Client options (admin and consumer alike) bounding every request, and the first
        connection to the cluster, by the connect timeout."""
        timeout = self._timeout_ms()
        return {
            "client_id": "pipeline-continuity",
            "bootstrap_timeout_ms": timeout,
            "request_timeout_ms": timeout,
            "connections_max_idle_ms": max(9 * 60 * 1000, 2 * timeout),
            **self._kafka.client_options(),
        }


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


def _described(error: Exception) -> str:
    """The error's type and message (kafka-python's messages start with the type already)."""
    name, text = type(error).__name__, str(error)
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def _stale(topic: str, partition: int, start: int, end: int) -> TimeoutError:
    """A log said to end before `start`, when the stream delivered offset `end` after it: not
    an answer to trust (a new leader may report a lower high watermark for a moment), so it
    counts as no answer, and the check fails closed."""
    return TimeoutError(
        f"Kafka says {topic}[{partition}] ends before offset {start}, yet the stream "
        f"delivered offset {end}: a stale answer"
    )
