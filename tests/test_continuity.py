"""The worker's check that the stream handed it every message of a partition
(pipeline/continuity.py), against the real broker."""

from __future__ import annotations

import asyncio
import uuid

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.aggregate.batch import RawMessage
from pipeline.broker import BufferedProducer, create_topics
from pipeline.continuity import Continuity, Jump
from pipeline.settings import Kafka


def topic_with(bootstrap: str, count: int) -> str:
    """A new one-partition topic holding `count` messages (offsets 0…count-1)."""
    topic = f"continuity-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [topic], 1)
    producer = BufferedProducer(bootstrap)
    for number in range(count):
        producer.send(topic, None, str(number).encode())
    producer.close()
    return topic


def gaps(continuity: Continuity, batch: list[RawMessage], generation: int) -> list[Jump]:
    return asyncio.run(continuity.gaps(batch, generation))


def messages(topic: str, offsets: range | list[int]) -> list[RawMessage]:
    return [RawMessage(topic, 0, offset, None, b"") for offset in offsets]


def test_a_fresh_group_expects_offset_0_and_then_every_next_one(
    kafka_bootstrap: str,
) -> None:
    topic = topic_with(kafka_bootstrap, 30)
    continuity = Continuity(kafka_bootstrap, f"group-{topic}", Kafka())
    assert gaps(continuity, messages(topic, range(0, 10)), 1) == []
    assert gaps(continuity, messages(topic, range(10, 15)), 1) == []
    # Messages seen again (a replay) are no jump; five skipped ones are
    assert gaps(continuity, messages(topic, range(12, 15)), 1) == []
    assert gaps(continuity, messages(topic, range(20, 25)), 1) == [(topic, 0, 15, 20)]
    # ... and Kafka holds them: the first is where the stream dropped messages
    assert asyncio.run(continuity.dropped((topic, 0, 15, 20))) == 15
    # Within one batch too
    assert gaps(continuity, messages(topic, [25, 26, 28, 29]), 1) == [(topic, 0, 27, 28)]


def test_offsets_kafka_does_not_hold_are_no_dropped_message(kafka_bootstrap: str) -> None:
    topic = topic_with(kafka_bootstrap, 10)
    continuity = Continuity(kafka_bootstrap, f"group-{topic}", Kafka())
    # Past the end of the partition
    assert asyncio.run(continuity.dropped((topic, 0, 10, 15))) is None


def test_a_new_generation_starts_from_the_groups_committed_offset(kafka_bootstrap: str) -> None:
    topic = topic_with(kafka_bootstrap, 30)
    group = f"group-{topic}"
    committer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(12, "", -1)})
    finally:
        committer.close()
    continuity = Continuity(kafka_bootstrap, group, Kafka())
    # A worker resuming at the committed 12 whose stream starts at 14 skipped two
    assert gaps(continuity, messages(topic, range(14, 20)), 3) == [(topic, 0, 12, 14)]
    # After a rebalance the committed offset is asked again (still 12)
    assert gaps(continuity, messages(topic, range(12, 16)), 4) == []
