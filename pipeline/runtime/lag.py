"""How far a consumer group is behind its topics: committed offsets against end offsets.

The end of a partition is read from a fetch response's high watermark, not from a
ListOffsets request: the embedded broker (Tansu 0.6) answers ListOffsets with the base
offset of the last record batch + 1, short of the true end whenever a batch holds several
records. A fetch reports the true high watermark on Kafka and on Tansu alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaAdminClient

from pipeline.settings import Kafka


class GroupLag:
    """Reads a consumer group's progress; keep one open while polling."""

    def __init__(self, bootstrap: str, group: str, kafka: Kafka) -> None:
        self._group = group
        self._admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="pipeline-lag", **kafka.client_options()
        )
        self._loop = asyncio.new_event_loop()
        self._consumer = self._loop.run_until_complete(
            _started_consumer(bootstrap, kafka.aiokafka_options())
        )

    def committed(self, topics: list[str]) -> dict[TopicPartition, int]:
        """The group's committed offset of each partition of `topics` that has one."""
        partitions = self._loop.run_until_complete(self._partitions(topics))
        return self._committed(partitions)

    def positions(self, topics: list[str]) -> tuple[dict[str, int], dict[str, int]]:
        """(committed, end) offsets per topic, summed over its partitions."""
        partitions = self._loop.run_until_complete(self._partitions(topics))
        committed = self._committed(partitions)
        ends = self._loop.run_until_complete(self._ends(partitions, committed))
        by_topic_committed = dict.fromkeys(topics, 0)
        by_topic_end = dict.fromkeys(topics, 0)
        for tp in partitions:
            by_topic_committed[tp.topic] += committed.get(tp, 0)
            by_topic_end[tp.topic] += ends.get(tp, 0)
        return by_topic_committed, by_topic_end

    def lag(self, topics: list[str]) -> int:
        committed, end = self.positions(topics)
        return sum(end.values()) - sum(committed.values())

    def _committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return committed_offsets(self._admin, self._group, partitions)

    async def _partitions(self, topics: list[str]) -> list[TopicPartition]:
        await self._consumer.topics()  # refreshes the metadata: topics may be new
        found = []
        for topic in topics:
            ids = self._consumer.partitions_for_topic(topic) or set()
            found += [TopicPartition(topic, partition) for partition in sorted(ids)]
        return found

    async def _ends(
        self, partitions: list[TopicPartition], committed: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        consumer = self._consumer
        consumer.assign(partitions)
        for tp in partitions:
            # One record before the committed position, so the fetch returns data and with
            # it the partition's high watermark.
            consumer.seek(tp, max(committed.get(tp, 0) - 1, 0))
        ends: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + 10
        while len(ends) < len(partitions) and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200, max_records=len(partitions))
            for tp in partitions:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = highwater
        return ends

    def close(self) -> None:
        self._loop.run_until_complete(self._consumer.stop())
        self._loop.close()
        self._admin.close()


def committed_offsets(
    admin: KafkaAdminClient, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offset of each of `partitions` that has one."""
    offsets = admin.list_group_offsets({group: partitions})[group]
    return {
        tp: meta.offset
        for tp, meta in offsets.items()
        if meta is not None and meta.offset is not None and meta.offset >= 0
    }


async def _started_consumer(bootstrap: str, options: dict[str, object]) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="pipeline-lag",
        enable_auto_commit=False,
        max_partition_fetch_bytes=1,
        **options,
    )
    await consumer.start()
    return consumer


class WorkerExited(RuntimeError):
    pass


def wait_until_caught_up(
    bootstrap: str,
    group: str,
    kafka: Kafka,
    topics: list[str],
    *,
    at_least: int = 0,
    timeout: float = 600.0,
    alive: Callable[[], bool] = lambda: True,
    progress: Callable[[int, int], None] | None = None,
    poll: float = 1.0,
) -> int:
    """Wait until the group has committed every message of `topics` (and at least
    `at_least` of them), seen twice in a row; return the committed total. `alive` says
    whether the consumer is still running; `progress(committed, end)` is called each poll."""
    lag = GroupLag(bootstrap, group, kafka)
    try:
        deadline = time.monotonic() + timeout
        previous = None
        while time.monotonic() < deadline:
            if not alive():
                raise WorkerExited("the worker stopped before it caught up")
            committed, end = lag.positions(topics)
            done, total = sum(committed.values()), sum(end.values())
            if progress is not None:
                progress(done, total)
            state = (done, total)
            if done >= total and done >= at_least and state == previous:
                return done
            previous = state if done >= total and done >= at_least else None
            time.sleep(poll)
        raise TimeoutError(f"the consumer group did not catch up within {timeout:.0f} s")
    finally:
        lag.close()
