"""`pipeline simulate --kafka`: the same events as the files, produced to the raw topics
through a real Kafka-protocol broker, keyed by user, each user's events in time order."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from pipeline.model import Source
from pipeline.settings import Topics


def _consume_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1500
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        return [(message.key, message.value) for message in consumer]
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
