"""Writing a batch of raw messages when the warehouse may refuse some of them.

A write error is one of three kinds (`error_kind`):
- `transient`: the warehouse is away or busy (connection, timeout, overload, too many parts):
  the caller retries the same write, with back-off, and acknowledges nothing meanwhile;
- `refused`: the engine refuses this data (a constraint, a value its column cannot hold):
  the records are split in halves, each written on its own, until the records the engine
  refuses are found alone; each of those becomes a dead letter with the engine's reason, and
  every other record (of the same vendor batch too) is stored;
- `fatal`: anything else (a missing table, no right to insert, an unknown error): no split
  could help, and retrying hides it; the caller stops without acknowledging.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from pipeline.aggregate.batch import (
    Batch,
    BatchRules,
    RawMessage,
    Record,
    build_records_batch,
    records_of,
)
from pipeline.sinks.warehouse import Warehouse

ErrorKind = Literal["transient", "refused", "fatal"]

# ClickHouse error codes (src/Common/ErrorCodes.cpp) of a warehouse that is away or busy.
TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        225,  # NO_ZOOKEEPER
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY (a replica that lost its keeper session)
        252,  # TOO_MANY_PARTS (merges behind inserts; partitions per insert are set per write)
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
    }
)
# ... and of an engine that refuses the data itself.
REFUSED_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        469,  # VIOLATED_CONSTRAINT
    }
)
_CODE = re.compile(r"Code: (\d+)")


def error_kind(exc: BaseException) -> ErrorKind:
    """Which of the three kinds a failed write is (see the module's docstring)."""
    if isinstance(exc, DataError):  # the client could not encode a value for its column
        return "refused"
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return "transient"
    if isinstance(exc, DatabaseError):
        code = _CODE.search(str(exc))
        if code is None:
            return "transient"  # no answer from the engine: a broken connection
        number = int(code.group(1))
        if number == 252 and "partitions for single INSERT block" in str(exc):
            return "refused"  # too many months in one insert: smaller inserts take them
        if number in TRANSIENT_CODES:
            return "transient"
        if number in REFUSED_CODES:
            return "refused"
    return "fatal"


def engine_reason(exc: BaseException) -> str:
    """The engine's words, first line only (a server's answer can carry a stack trace)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]


def write_messages(
    warehouse: Warehouse,
    messages: Sequence[RawMessage],
    rules: BatchRules,
    end_offsets: Mapping[tuple[str, int], int | None] | None = None,
) -> list[Batch]:
    """Build and write the messages' records, at most `rules.batch_events` a write (vendor
    batches make a batch of messages many times as many events); where the engine refuses a
    write, split it until the refused records are alone and store them as dead letters.
    Returns the batches written (their dead letters are for the dead-letter topic). A
    transient or fatal error is raised: what was written before it is written again by the
    retry, and dropped as a duplicate (the same records make the same chunks)."""
    records = records_of(list(messages), rules.limits)
    size = rules.batch_events
    written: list[Batch] = []
    for start in range(0, max(len(records), 1), size):
        chunk = records[start : start + size]
        _write_part(warehouse, chunk, rules, end_offsets, {}, written)
    return written


def _write_part(
    warehouse: Warehouse,
    records: list[Record],
    rules: BatchRules,
    end_offsets: Mapping[tuple[str, int], int | None] | None,
    refused: dict[tuple[str, int, int, int], str],
    written: list[Batch],
) -> None:
    batch = build_records_batch(records, rules, end_offsets, refused)
    try:
        warehouse.write(batch)
    except Exception as exc:
        if error_kind(exc) != "refused":
            raise
        if len(records) == 1:
            (record,) = records
            message = record.message
            key = (message.topic, message.partition, message.offset, record.item)
            if key in refused:  # the dead letter itself refused: nothing more to split
                raise
            refused[key] = f"the warehouse refused it: {engine_reason(exc)}"
            _write_part(warehouse, records, rules, end_offsets, refused, written)
            return
        half = len(records) // 2
        _write_part(warehouse, records[:half], rules, end_offsets, refused, written)
        _write_part(warehouse, records[half:], rules, end_offsets, refused, written)
        return
    written.append(batch)
