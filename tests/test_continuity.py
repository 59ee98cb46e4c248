"""The worker's check that the stream handed it every message of a partition
(pipeline/runtime/continuity.py), against the real broker."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import suppress
from typing import Self

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.aggregate.batch import RawMessage
from pipeline.runtime.broker import BufferedProducer, EmbeddedBroker, create_topics, free_port
from pipeline.runtime.continuity import (
    ATTEMPTS,
    BACKOFF,
    Continuity,
    ContinuityUnknown,
    DroppedMessages,
    Jump,
)
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


def test_a_log_said_to_end_before_the_gap_is_no_answer(kafka_bootstrap: str) -> None:
    topic = topic_with(kafka_bootstrap, 10)
    continuity = Continuity(kafka_bootstrap, f"group-{topic}", Kafka())
    # The stream delivered offset 15 (or 25), yet the fetch at 10 (or 20) answers with the high
    # watermark 10: a stale answer (a leader moving), so the check fails closed
    with pytest.raises(ContinuityUnknown, match="stale answer"):
        asyncio.run(continuity.dropped((topic, 0, 10, 15)))
    with pytest.raises(ContinuityUnknown, match="stale answer"):
        asyncio.run(continuity.dropped((topic, 0, 20, 25)))


def test_offsets_of_transaction_markers_are_no_dropped_message(kafka_bootstrap: str) -> None:
    topic = f"continuity-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [topic], 1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{topic}")
    try:
        producer.init_transactions()
        for count in (3, 2):
            producer.begin_transaction()
            for number in range(count):
                producer.send(topic, str(number).encode())
            producer.commit_transaction()
    finally:
        producer.close()
    # Messages at 0-2 and 4-5; each commit marker takes an offset (3, 6) but is no message
    assert read_offsets(kafka_bootstrap, topic, until=5) == [0, 1, 2, 4, 5]
    continuity = Continuity(kafka_bootstrap, f"group-{topic}", Kafka())
    # A stream going from 2 to 4 skipped no message: the fetch at 3 answers with 4
    assert asyncio.run(continuity.dropped((topic, 0, 3, 4))) is None
    # From 2 to 5, it skipped 4
    assert asyncio.run(continuity.dropped((topic, 0, 3, 5))) == 4


def read_offsets(bootstrap: str, topic: str, until: int) -> list[int]:
    """The offsets of `topic`[0]'s messages, read until the one at `until` (10 s at most)."""
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        offsets: list[int] = []
        deadline = time.monotonic() + 10
        while until not in offsets and time.monotonic() < deadline:
            offsets += [record.offset for record in consumer.poll(200).get(tp, [])]
        return offsets
    finally:
        consumer.close()


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


# --- Kafka does not answer: the check fails closed -----------------------------------------

# Short connect timeouts (each attempt's bound), the second long enough for a bootstrap
# through the proxy on a loaded machine
QUICKEST, QUICK = Kafka(connect_timeout=0.5), Kafka(connect_timeout=1.0)
FETCH = 1  # the API key of a Kafka Fetch request


def test_a_broker_that_never_answers_gets_no_ack_past_the_gap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Proxy() as silent:  # accepts connections, reads requests, answers none
        continuity = Continuity(f"127.0.0.1:{silent.port}", "group-silent", QUICKEST)
        error = unanswered(continuity.dropped(("events", 0, 15, 20)), QUICKEST)
        assert isinstance(error, DroppedMessages)  # stopped like a dropped message
        assert "whether Kafka holds offsets 15 to 19 of events[0]" in str(error)
        assert "nothing past offset 14 of it was acknowledged" in str(error)
        assert len(failures(caplog)) == ATTEMPTS  # asked again before giving up
        # Nor does a batch pass when where the worker resumes cannot be read
        error = unanswered(continuity.gaps(messages("events", range(3)), 1), QUICKEST)
        assert "where the worker resumes events[0]" in str(error)
        assert "nothing of this batch was acknowledged" in str(error)


def test_a_broker_that_goes_silent_during_the_check_gets_no_ack_past_the_gap(
    proxied_broker: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = f"127.0.0.1:{proxied_broker.port}"
    topic = topic_with(bootstrap, 10)
    continuity = Continuity(bootstrap, f"group-{topic}", QUICK)
    # Through the proxy while it answers: Kafka holds offset 3
    assert asyncio.run(continuity.dropped((topic, 0, 3, 5))) == 3
    # It answers the next client's bootstrap, then nothing from its fetch on
    proxied_broker.go_silent_at_next_fetch()
    error = unanswered(continuity.dropped((topic, 0, 3, 5)), QUICK)
    assert proxied_broker.silent.is_set()
    assert f"whether Kafka holds offsets 3 to 4 of {topic}[0]" in str(error)
    assert "nothing past offset 2 of it was acknowledged" in str(error)
    # The first attempt got as far as the fetch: no answer to it is no answer
    attempts = failures(caplog)
    assert len(attempts) == ATTEMPTS
    assert "no record and no high watermark at offset 3" in attempts[0]


def unanswered(check: Coroutine[object, object, object], kafka: Kafka) -> ContinuityUnknown:
    """The ContinuityUnknown the check raises, within the longest a check without an answer
    may take: each attempt within twice the connect timeout, the pauses between them, and a
    margin for a loaded machine."""
    pauses = sum(BACKOFF * 2**n for n in range(ATTEMPTS - 1))
    bound = ATTEMPTS * 2 * kafka.connect_timeout + pauses + 10

    async def run() -> ContinuityUnknown:
        try:
            await asyncio.wait_for(check, bound)
        except ContinuityUnknown as error:
            return error
        raise AssertionError("the check answered although Kafka did not")

    return asyncio.run(run())


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The attempts logged as failed, oldest first."""
    logged = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    return [message for message in logged if message.startswith("could not check")]


class Proxy:
    """A TCP proxy on a free loopback port to the broker listening on `upstream` (None: no
    broker, it answers nothing), on an event loop in a thread of its own. Once silent it reads
    every request, on open connections and new ones, and answers none: a broker that accepts
    connections but does not answer (overloaded, a handshake hanging, a leader moving)."""

    def __init__(self, upstream: int | None = None) -> None:
        self._upstream = upstream
        self._silent_at_fetch = threading.Event()
        self.silent = threading.Event()
        if upstream is None:
            self.silent.set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> Self:
        self._thread.start()
        serving = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(serving, self._loop).result(timeout=10)
        self.port: int = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def go_silent_at_next_fetch(self) -> None:
        """Pass requests on up to the next Fetch (a new client's bootstrap), then answer
        nothing from that Fetch on."""
        self._silent_at_fetch.set()

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        self._track(asyncio.current_task())
        to_broker = None
        try:
            if not self.silent.is_set() and self._upstream is not None:
                from_broker, to_broker = await asyncio.open_connection("127.0.0.1", self._upstream)
                self._track(asyncio.create_task(self._answer(from_broker, to_client)))
            while request := await _frame(client):
                if self._silent_at_fetch.is_set() and int.from_bytes(request[4:6]) == FETCH:
                    self.silent.set()
                if to_broker is not None and not self.silent.is_set():
                    to_broker.write(request)
                    await to_broker.drain()
        except ConnectionError:
            pass
        finally:
            for writer in (to_client, to_broker):
                if writer is not None:
                    writer.close()

    async def _answer(self, broker: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            while (answer := await _frame(broker)) and not self.silent.is_set():
                client.write(answer)
                await client.drain()

    def _track(self, task: asyncio.Task[None] | None) -> None:
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _close(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _frame(stream: asyncio.StreamReader) -> bytes:
    """One size-prefixed Kafka request or response; b"" at the end of the stream."""
    try:
        size = await stream.readexactly(4)
        return size + await stream.readexactly(int.from_bytes(size))
    except asyncio.IncompleteReadError:
        return b""


@pytest.fixture
def proxied_broker() -> Iterator[Proxy]:
    """A broker of the test's own, reached only through a proxy the test can silence."""
    port = free_port()
    with Proxy(upstream=port) as proxy, EmbeddedBroker(port, advertised_port=proxy.port):
        yield proxy
