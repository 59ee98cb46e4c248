-- The pipeline's tables. Every table is keyed by the vendor's own id (or the roster user),
-- and every merge is idempotent: Kafka delivers at least once, and a message written twice,
-- by a restarted worker or a replay, is stored once. Queries read them with FINAL (or
-- through the views of 0002), which applies the merge at read time.

-- Every classified IdP event: sign-ins, factor checks (steps), token refreshes, the rest.
CREATE TABLE IF NOT EXISTS auth_events
(
    source LowCardinality(String),
    event_id String,
    time DateTime64(6, 'UTC'),
    user String,
    kind LowCardinality(String),
    outcome LowCardinality(String),
    method LowCardinality(Nullable(String)),
    raw_method Nullable(String),
    passwordless Nullable(Bool),
    session Nullable(String),
    event_type LowCardinality(String),
    factors Array(LowCardinality(String)),
    raw_factors Array(String),
    interactive Bool,
    app Nullable(String),
    src_ip Nullable(String),
    country LowCardinality(Nullable(String)),
    reason Nullable(String),
    fronted_idp LowCardinality(Nullable(String)) COMMENT 'set on a Duo check made for this IdP''s sign-in',
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (source, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Sign-ins folded from their records (pipeline/aggregate/signins.py): one row per sign-in
-- once merged. Every column merges by min / max / set union, so parts written by different
-- batches, workers or replays merge into the same sign-in, each record counted once.
CREATE TABLE IF NOT EXISTS sign_in_parts
(
    source LowCardinality(String),
    sign_in_id String,
    user SimpleAggregateFunction(max, String),
    time SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    step_ids SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    factors SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    raw_factors SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    has_password SimpleAggregateFunction(max, UInt8),
    has_passwordless_factor SimpleAggregateFunction(max, UInt8),
    last_outcome SimpleAggregateFunction(max, Tuple(time DateTime64(6, 'UTC'), failed UInt8)),
    first_app SimpleAggregateFunction(min, Tuple(time DateTime64(6, 'UTC'), app String))
)
ENGINE = AggregatingMergeTree
ORDER BY (source, sign_in_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS enrollment_events
(
    source LowCardinality(String),
    event_id String,
    time DateTime64(6, 'UTC'),
    user String,
    method LowCardinality(Nullable(String)) COMMENT 'null on a removal of every factor',
    raw_method Nullable(String),
    action LowCardinality(String),
    passwordless_factor Bool,
    event_type LowCardinality(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (source, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS tickets
(
    event_id String,
    time DateTime64(6, 'UTC'),
    user String,
    system LowCardinality(String),
    number String,
    scenario LowCardinality(String),
    summary String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (system, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- The workforce roster: the denominators. The latest row of a user wins.
CREATE TABLE IF NOT EXISTS roster
(
    user String,
    display_name Nullable(String),
    department LowCardinality(String),
    country LowCardinality(String),
    privileged Bool,
    idp LowCardinality(Nullable(String)),
    active_from Date,
    terminated_on Nullable(Date),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY user;

-- Each user's enrolled passwordless-capable factors now, from the worker's changelog-backed
-- Faust table; the latest state wins.
CREATE TABLE IF NOT EXISTS enrollment_state
(
    user String,
    factors Array(LowCardinality(String)),
    enrolled Bool,
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY user;

-- Events no parser could read. The dead-letter topic keeps their whole bytes.
CREATE TABLE IF NOT EXISTS dead_letters
(
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    source LowCardinality(String),
    reason String,
    raw String COMMENT 'the first 16 KiB',
    received_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;

-- The rollout plan (PIPELINE_PLAN_FILE), loaded by `pipeline migrate` and the worker.
CREATE TABLE IF NOT EXISTS plan_phases
(
    phase UInt8,
    name String,
    first_week UInt16,
    last_week Nullable(UInt16),
    start Date,
    end Nullable(Date) COMMENT 'exclusive'
)
ENGINE = ReplacingMergeTree
ORDER BY phase;

CREATE TABLE IF NOT EXISTS plan_targets
(
    phase UInt8,
    metric LowCardinality(String),
    target Float64
)
ENGINE = ReplacingMergeTree
ORDER BY (phase, metric);

CREATE TABLE IF NOT EXISTS app_tiers
(
    app String,
    tier LowCardinality(String) COMMENT 'high_risk or legacy; any other app is standard'
)
ENGINE = ReplacingMergeTree
ORDER BY app;
