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
Offsets Kafka does not hold are let through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from pipeline.aggregate.batch import RawMessage
from pipeline.lag import committed_offsets
from pipeline.settings import Kafka

# (topic, partition, the offset expected, the offset seen instead)
Jump = tuple[str, int, int, int]


class DroppedMessages(RuntimeError):
    """Kafka holds messages of a partition that the stream skipped."""


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
            starts = await asyncio.get_running_loop().run_in_executor(None, self._starts, unknown)
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
        """The first offset of the jump's range that Kafka holds a message at; None if none."""
        return await asyncio.get_running_loop().run_in_executor(None, self._first_held, *jump)

    def _first_held(self, topic: str, partition: int, start: int, end: int) -> int | None:
        tp = TopicPartition(topic, partition)
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, **self._options())
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            for _ in range(20):
                records = consumer.poll(timeout_ms=500, max_records=50).get(tp, [])
                # A fetch can return a whole record batch from before `start`.
                held = [record.offset for record in records if record.offset >= start]
                if held:
                    return held[0] if held[0] < end else None
            return None
        finally:
            consumer.close()

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
            consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, **self._options())
            try:
                for tp, offset in consumer.beginning_offsets(fresh).items():
                    starts[(tp.topic, tp.partition)] = offset
            finally:
                consumer.close()
        return starts

    def _options(self) -> dict[str, object]:
        return {"client_id": "pipeline-continuity", **self._kafka.client_options()}
