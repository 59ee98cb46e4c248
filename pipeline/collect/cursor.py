"""Cursors in Kafka: where each collector stream stands, kept in a compacted topic so that a
collector restarted on any machine resumes where the last one stopped.

A cursor is one message: key `<collector>/<tenant>/<stream>` (a backfill adds its window),
value the stream's JSON cursor (the vendor's own resumable token where it gives one, else a
time watermark) with the time it was committed. Compaction keeps the latest value of each key.

The order that makes it safe: a stream's events are produced and acknowledged by Kafka
(acks=all, `BufferedProducer.flush`) before the cursor that covers them is produced, and the
cursor is acknowledged before the next page is fetched. A crash in between re-reads at most
one page, whose events the warehouse stores once by their vendor ids.

At start the topic is read from its beginning to its end (the end offsets asked first), and
the latest value of each key of this collector is its cursor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipeline.collect.http import CollectError
from pipeline.runtime.broker import BufferedProducer, create_topics
from pipeline.settings import Kafka

_POLL_MS = 500


class CursorStore:
    """The cursors of one collector: read once at start, committed page by page."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        kafka: Kafka,
        producer: BufferedProducer,
        prefix: str,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._kafka = kafka
        self._producer = producer
        self._prefix = prefix
        self._cursors: dict[str, dict[str, Any]] = {}

    def load(self) -> dict[str, dict[str, Any]]:
        """Read the topic to its end: every cursor under this collector's prefix."""
        create_topics(self._bootstrap, [self._topic], 1, self._kafka, {"cleanup.policy": "compact"})
        deadline = time.monotonic() + self._kafka.connect_timeout
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            request_timeout_ms=int(self._kafka.connect_timeout * 1000) + _POLL_MS * 2,
            fetch_max_wait_ms=_POLL_MS,
            **self._kafka.client_options(),
        )
        try:
            partitions = consumer.partitions_for_topic(self._topic) or set()
            assigned = [TopicPartition(self._topic, partition) for partition in partitions]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            ends = consumer.end_offsets(assigned)
            while any(consumer.position(tp) < ends[tp] for tp in assigned):
                if time.monotonic() > deadline:
                    raise CollectError(
                        f"could not read the cursor topic {self._topic} to its end within "
                        f"{self._kafka.connect_timeout:g} s (PIPELINE_KAFKA_CONNECT_TIMEOUT)"
                    )
                for records in consumer.poll(timeout_ms=_POLL_MS).values():
                    for record in records:
                        self._take(record.key, record.value)
        except KafkaError as exc:
            raise CollectError(
                f"cannot read the cursor topic {self._topic}: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            consumer.close(autocommit=False)
        return dict(self._cursors)

    def _take(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        name = key.decode("utf-8", "replace")
        if not name.startswith(self._prefix):
            return
        if value is None:  # a tombstone: the cursor was deleted
            self._cursors.pop(name, None)
            return
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            return  # not ours to read: the stream starts afresh, as without a cursor
        if isinstance(document, dict) and isinstance(document.get("cursor"), dict):
            self._cursors[name] = document["cursor"]

    def get(self, key: str) -> dict[str, Any] | None:
        return self._cursors.get(key)

    def commit(self, key: str, cursor: Mapping[str, Any]) -> None:
        """Produce the cursor and wait for Kafka's acknowledgement. The events it covers must
        have been flushed before (the runner does so)."""
        document = {"cursor": dict(cursor), "committed_at": datetime.now(UTC).isoformat()}
        self._producer.send(self._topic, key.encode(), orjson.dumps(document))
        self._producer.flush()
        self._cursors[key] = dict(cursor)
