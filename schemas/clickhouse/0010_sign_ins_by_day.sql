-- Dashboard queries whose cost follows the time range shown, not the warehouse's history
-- (issue 16). Measured by `pipeline bench warehouse`; README.md, "Sizing".
--
-- sign_in_parts is rewritten keyed by the day of each part first: a query for a time range
-- reads the parts of those days only (the partition of their month, the granules of their
-- days), where the key (source, sign_in_id) made every query read every part. A sign-in is
-- still every part of (source, sign_in_id), whatever batch, worker or replay wrote it: the
-- views group the parts by `key`, a 128-bit hash of that pair, over the days asked for and
-- a day either side (0011_windowed_views.sql). Parts of one day merge in the background as
-- before; parts of one sign-in on two days stay two rows, folded at read time.
--
-- EXACTNESS ASSUMPTION: the views of a time range read the parts of its days and one day
-- either side, so a sign-in counts exactly there when its records lie on the UTC day of its
-- first record or the next day (its factor checks are seconds or minutes apart, a step-up
-- hours later at most; a sign-in whose steps are hours apart across midnight counts once,
-- on the day it began). The views of the whole history fold every day, whatever the spread.
--
-- Aggregating tuples and strings costs several times what numbers do: the columns the
-- counts need are also kept as numbers (flags, outcome, app_order, user_key), merged the
-- same way. Of two records of one sign-in at the same microsecond naming two apps, written
-- in two batches, the first app is the one whose name hashes lower (in one batch the fold
-- takes the lower name). user_key is the highest login hash of the sign-in's records (the
-- IdPs log every record of a sign-in under its one user).
--
-- The copy reads the old table whole: run `pipeline migrate` with the workers stopped (a part
-- written during the copy would be lost). Run again, it copies the new table onto itself.
-- A TTL that PIPELINE_RETENTION_DAYS set is set again by `pipeline migrate` right after.
CREATE OR REPLACE TABLE sign_in_parts
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
    first_app SimpleAggregateFunction(min, Tuple(time DateTime64(6, 'UTC'), app String)),
    -- Computed from the columns above as a part is written, so that folding reads numbers:
    day Date MATERIALIZED toDate(time)
        COMMENT 'the UTC day of this part: parts of one sign-in on two days are two rows',
    key SimpleAggregateFunction(max, UInt128)
        MATERIALIZED reinterpretAsUInt128(sipHash128(source, sign_in_id))
        COMMENT 'the sign-in: what the views group its parts by',
    flags SimpleAggregateFunction(groupBitOr, UInt8)
        MATERIALIZED has_password + 2 * has_passwordless_factor + 4 * notEmpty(step_ids)
        COMMENT '1: a password, 2: a passwordless factor, 4: a factor check (a sign-in has one)',
    outcome SimpleAggregateFunction(max, Int64)
        MATERIALIZED toUnixTimestamp64Micro(last_outcome.time) * 2 + last_outcome.failed
        COMMENT 'last_outcome as one number, in the same order: odd when the latest failed',
    app_order SimpleAggregateFunction(min, UInt128)
        MATERIALIZED bitShiftLeft(toUInt128(greatest(0, toUnixTimestamp64Micro(first_app.time))), 64)
            + cityHash64(first_app.app)
        COMMENT 'first_app as one number: its time, then a hash of the app (which app of two at one time)',
    user_key SimpleAggregateFunction(max, UInt128)
        MATERIALIZED if(user = '', 0, reinterpretAsUInt128(sipHash128(user)))
        COMMENT 'the user, as the roster join and the user counts group it'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, source, sign_in_id)
SETTINGS non_replicated_deduplication_window = 1000
AS SELECT
    source, sign_in_id, user, time, step_ids, factors, raw_factors, has_password,
    has_passwordless_factor, last_outcome, first_app
FROM sign_in_parts
-- a history of any number of months in one copy
SETTINGS max_partitions_per_insert_block = 0;

-- The Methods-no-mapping-knows panel looks for the rare event with an `unknown` factor: this
-- index lets it skip every granule without one instead of reading all of auth_events.
ALTER TABLE auth_events ADD INDEX IF NOT EXISTS has_unknown_factor has(factors, 'unknown')
    TYPE minmax GRANULARITY 1;
ALTER TABLE auth_events MATERIALIZE INDEX has_unknown_factor;

