"""Where a simulated rollout goes: NDJSON files in a directory, or the Kafka raw topics.

The simulation runs in shards (one process each); every shard writes its records, in time
order, to a file of its own with a sort key in front. Merging the shard files by that key
gives one stream in time order, written to the files or produced to the topics.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

import orjson

from pipeline.model import Source
from pipeline.runtime.broker import BufferedProducer, create_topics
from pipeline.settings import Kafka, Topics
from pipeline.simulate.workforce import SimUser

ROSTER_FILE = "roster.ndjson"
TRUTH_FILE = "truth.json"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class ShardWriter:
    """A shard's records, one line each: `<sort key>\\t<source>\\t<user>\\t<record JSON>`;
    the sort key (microseconds since the epoch, shard, sequence) orders all shards' lines."""

    def __init__(self, path: Path, shard: int) -> None:
        self.path = path
        self._file = path.open("wb", buffering=1 << 20)
        self._shard = shard
        self._seq = 0

    def records(self, source: Source, key: str, records: list[dict], when: datetime) -> None:
        """The records one intent made, in order, all sorted under the intent's time."""
        write = self._file.write
        micros = (when - _EPOCH) // _MICROSECOND
        tail = f"\t{source.value}\t{key}\t".encode()
        for record in records:
            self._seq += 1
            write(b"%017d%02d%010d" % (micros, self._shard, self._seq))
            write(tail)
            write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        self._file.close()


def merge_shards(paths: list[Path]) -> Iterator[tuple[Source, bytes, bytes]]:
    """(source, user, record JSON line) of every shard's records, in time order."""
    sources = {source.value.encode(): source for source in Source}
    with ExitStack() as stack:
        files = [stack.enter_context(path.open("rb", buffering=1 << 20)) for path in paths]
        for line in heapq.merge(*files):
            _, source, key, record = line.split(b"\t", 3)
            yield sources[source], key, record


class Output(Protocol):
    counts: dict[Source, int]

    def event(self, source: Source, key: bytes | None, line: bytes) -> None: ...

    def close(self) -> None: ...


def _roster_lines(users: list[SimUser]) -> list[bytes]:
    return [user.roster_row().model_dump_json().encode() for user in users]


class _Closing:
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DirectoryOutput(_Closing):
    """`DIR/<source>.ndjson` per source."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._open = ExitStack()
        self._files: dict[Source, IO[bytes]] = {}
        for source in Source:
            path = directory / f"{source.value}.ndjson"
            self._files[source] = self._open.enter_context(path.open("wb", buffering=1 << 20))
        self.counts: dict[Source, int] = dict.fromkeys(Source, 0)

    def event(self, source: Source, key: bytes | None, line: bytes) -> None:
        self._files[source].write(line)
        self.counts[source] += 1

    def close(self) -> None:
        self._open.close()


class KafkaOutput(_Closing):
    """Each record to its source's raw topic, keyed by user (so a user's events stay in one
    partition, in order); the roster to the roster topic."""

    def __init__(self, bootstrap: str, topics: Topics, kafka: Kafka) -> None:
        create_topics(bootstrap, topics.inputs(), topics.partitions, kafka)
        self._producer = BufferedProducer(bootstrap, **kafka.aiokafka_options())
        self._topics = topics
        self.counts: dict[Source, int] = dict.fromkeys(Source, 0)

    def roster(self, users: list[SimUser]) -> None:
        for user, line in zip(users, _roster_lines(users), strict=True):
            self._producer.send(self._topics.roster, key=user.person.login.encode(), value=line)

    def event(self, source: Source, key: bytes | None, line: bytes) -> None:
        self._producer.send(self._topics.raw(source), key=key, value=line.rstrip(b"\n"))
        self.counts[source] += 1

    def close(self) -> None:
        self._producer.close()


class NativeDelivery(_Closing):
    """Records framed as the vendors' own shippers deliver them, to another output: Entra as
    Event Hubs bodies `{"records": [...]}` (diagnostic settings stream many records per
    event; an event may be up to 1 MB on the Standard tier and up), Okta as Event Hook
    bodies `{"eventType": "com.okta.event_hook", ..., "data": {"events": [...]}}` (Okta's docs
    give no batch size: the simulator puts up to `OKTA_HOOK_EVENTS` in one). Every other
    source goes on one record per message. `counts` are records; `messages` what was sent.

    Sources: learn.microsoft.com/azure/azure-monitor/platform/resource-logs-stream-event-hubs
    (the `records` array), learn.microsoft.com/azure/event-hubs/event-hubs-quotas (publication
    size), developer.okta.com/docs/concepts/event-hooks/ (the hook body)."""

    EVENT_HUBS_BODY_BYTES = 1_000_000
    EVENT_HUBS_RECORDS = 500
    OKTA_HOOK_EVENTS = 50

    def __init__(self, inner: Output) -> None:
        self._inner = inner
        self.counts: dict[Source, int] = dict.fromkeys(Source, 0)
        self.messages = inner.counts
        self._pending: dict[Source, list[bytes]] = {Source.ENTRA: [], Source.OKTA: []}
        self._bytes = dict.fromkeys(self._pending, 0)
        self._hooks = 0

    def event(self, source: Source, key: bytes, line: bytes) -> None:
        self.counts[source] += 1
        pending = self._pending.get(source)
        if pending is None:
            self._inner.event(source, key, line)
            return
        record = line.rstrip(b"\n")
        if source is Source.ENTRA and (
            self._bytes[source] + len(record) + 64 > self.EVENT_HUBS_BODY_BYTES
            or len(pending) >= self.EVENT_HUBS_RECORDS
        ):
            self._flush(source)
        pending.append(record)
        self._bytes[source] += len(record) + 1
        if source is Source.OKTA and len(pending) >= self.OKTA_HOOK_EVENTS:
            self._flush(source)

    def _flush(self, source: Source) -> None:
        records = self._pending[source]
        if not records:
            return
        events = b"[" + b",".join(records) + b"]"
        if source is Source.ENTRA:
            body = b'{"records":' + events + b"}"
        else:
            self._hooks += 1
            last = orjson.loads(records[-1]).get("published")
            envelope = {
                "eventType": "com.okta.event_hook",
                "eventTypeVersion": "1.0",
                "cloudEventsVersion": "0.1",
                "source": "https://simulated.okta.com/api/v1/eventHooks/whosimulated",
                "eventId": f"simulated-hook-{self._hooks}",
                "eventTime": last,
                "contentType": "application/json",
            }
            body = orjson.dumps(envelope)[:-1] + b',"data":{"events":' + events + b"}}"
        # no key: Event Hubs and Okta spread a stream's batches over partitions as they come
        self._inner.event(source, None, body + b"\n")
        records.clear()
        self._bytes[source] = 0

    def close(self) -> None:
        for source in self._pending:
            self._flush(source)
        self._inner.close()


def write_roster(directory: Path, users: list[SimUser]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = _roster_lines(users)
    (directory / ROSTER_FILE).write_bytes(b"".join(line + b"\n" for line in lines))


def write_truth(directory: Path, truth: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / TRUTH_FILE).write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
