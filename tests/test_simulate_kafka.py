"""`pipeline simulate --kafka`: the same events as the files, produced to the raw topics
through a real Kafka-protocol broker, keyed by user, each user's events in time order."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from pipeline.model import Source
from pipeline.settings import Topics

# The longest a topic may take to be read to its end: generous, this is no speed test.
READ_DEADLINE_S = 120.0


def _consume_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every message of the topic, read from the start of each partition until the consumer's
    position reaches the partition's end (the simulator has finished producing by then).

    A partition's end is the larger of the broker's end offset (ListOffsets) and the high
    watermark of the consumer's last fetch from it: the embedded broker (Tansu) answers
    ListOffsets with the last record batch's base offset + 1, short of the end whenever a
    batch holds several records (pipeline/runtime/lag.py), while a fetch reports the true end on it
    and on Kafka alike. A partition counts as read once a fetch from it has answered."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert partitions, f"the broker knows no partitions of {topic}"
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        listed = consumer.end_offsets(partitions)

        def unread() -> dict[int, tuple[int, int | None]]:
            """Partition -> (position, high watermark) of each one not read to its end."""
            left = {}
            for tp in partitions:
                highwater, position = consumer.highwater(tp), consumer.position(tp)
                if highwater is None or position < max(listed[tp], highwater):
                    left[tp.partition] = (position, highwater)
            return left

        messages: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + READ_DEADLINE_S
        while left := unread():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: (position, high watermark) short of the end {left}")
            for records in consumer.poll(timeout_ms=500).values():
                messages.extend((record.key, record.value) for record in records)
        return messages
    finally:
        consumer.close()


def test_kafka_output_equals_the_files(kafka_bootstrap: str, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "pipeline.cli", "simulate", "--users", "60", "--weeks", "3"]
    subprocess.run([*args, "--out", str(tmp_path / "files")], check=True, timeout=300)
    result = subprocess.run(
        [*args, "--out", str(tmp_path / "kafka"), "--kafka", kafka_bootstrap],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert f"Kafka at {kafka_bootstrap}" in result.stdout
    files = tmp_path / "files"
    assert (tmp_path / "kafka" / "truth.json").read_bytes() == (files / "truth.json").read_bytes()

    topics = Topics()
    for source in Source:
        expected = (files / f"{source.value}.ndjson").read_bytes().splitlines()
        produced = _consume_all(kafka_bootstrap, topics.raw(source))
        assert sorted(value for _, value in produced) == sorted(expected), source
        # Keyed by user, so one partition holds a user's events in the files' (time) order.
        by_user: dict[bytes, list[bytes]] = defaultdict(list)
        for key, value in produced:
            by_user[key].append(value)
        for user, values in by_user.items():
            assert user.endswith(b"@example.com")
            mine = set(values)
            in_file = [line for line in expected if line in mine]
            assert values == in_file, (source, user)

    roster = _consume_all(kafka_bootstrap, topics.roster)
    assert sorted(v for _, v in roster) == sorted(
        (files / "roster.ndjson").read_bytes().splitlines()
    )
