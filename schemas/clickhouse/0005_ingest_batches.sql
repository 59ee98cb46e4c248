-- One row per partition per batch the worker wrote: its offsets, and the partition's end as
-- the consumer last saw it. Pipeline health reads it (throughput, lag, freshness) and so does
-- the stale-data alert; it is small (a row per partition per batch) and kept 90 days.
CREATE TABLE IF NOT EXISTS ingest_batches
(
    topic LowCardinality(String),
    partition UInt32,
    source LowCardinality(String) COMMENT 'okta, entra, ping, duo, tickets or roster',
    first_offset UInt64,
    last_offset UInt64,
    messages UInt32,
    end_offset Nullable(UInt64) COMMENT 'the high watermark when the batch was built',
    written_at DateTime64(3, 'UTC'),
    lag Nullable(UInt64) ALIAS if(end_offset IS NULL, NULL,
        toUInt64(greatest(0, toInt64(end_offset) - toInt64(last_offset) - 1)))
        COMMENT 'messages of the partition still behind this batch when it was built'
)
ENGINE = MergeTree
ORDER BY (written_at, topic, partition)
TTL toDateTime(written_at) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Each partition's latest batch: messages still behind the end of the partition then (lag),
-- and when it was written.
CREATE OR REPLACE VIEW ingest_progress AS
SELECT
    topic,
    partition,
    any(source) AS source,
    max(written_at) AS last_written,
    argMax(last_offset, written_at) AS last_offset,
    argMax(end_offset, written_at) AS end_offset,
    argMax(lag, written_at) AS lag
FROM ingest_batches
GROUP BY topic, partition;
