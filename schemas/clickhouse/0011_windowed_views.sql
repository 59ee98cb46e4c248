-- The views of 0002-0006 for a time range: parameterized views (ClickHouse 23.1+) that read
-- the days asked for, not the whole history, and the plain views redefined as the same over
-- every day (their answers do not change). Definitions: README.md, "Metrics: exact
-- definitions"; conventions: 0003_rollups.sql. Ranges include both ends, as Grafana's macros:
-- - ...(from, to) with DateTime64: the sign-ins that began in that time (as $__timeFilter);
-- - ...(from, to) with Date32: those UTC days (as $__dateFilter), each whole;
-- - weekly ...(from, to): the rollout weeks whose Monday is one of those days, each whole.
-- A value handed to a view parameter is read back as text in the parameter's own time zone:
-- pass times in UTC (toDateTime64(x, 6, 'UTC')), never a DateTime of the server's zone.
-- Measured by `pipeline bench warehouse`; README.md, "Sizing". Every table read costs a few
-- milliseconds before it reads a row, so each view reads each table once where it can.
--
-- EXACTNESS ASSUMPTION (the ±1 day window). A sign-in is folded from its parts of the days
-- asked for and a day either side (the parts are keyed by day, 0010): a range's sign-ins are
-- exact when each sign-in's records lie on the UTC day of its first record or the day after
-- (within 24 hours of its first record always is), as every IdP's records of one sign-in do:
-- its factor checks are seconds or minutes apart, a step-up hours later at most; a sign-in
-- whose steps are hours apart across midnight counts once, on the day it began. A record
-- later than the next day would count as a sign-in of its own in a range that does not hold
-- the first. The plain views (sign_ins, weekly_metrics, ...) fold every day, whatever the
-- spread (enrolled_still_using_passwords finds the latest sign-in under the assumption).
-- Sign-ins and their users are told apart by 128-bit hashes of (source, sign-in id) and of
-- the login (0010); a sign-in whose records name two users counts under the one whose login
-- hashes highest (the IdPs log every record of a sign-in under its one user).

-- -- sign-ins -------------------------------------------------------------------------------

-- Sign-ins that began in [from, to], one row each, without the roster: as `sign_ins` has
-- them less the department, with `key` and `user_key` (0010). A query folds only the columns
-- it reads, and the counts fold numbers (0010).
CREATE OR REPLACE VIEW sign_in_facts_between AS
SELECT
    key, source, sign_in_id, user, user_key, time, factors, raw_factors, passwordless, success,
    app,
    multiIf(
        app_hash IN (SELECT cityHash64(app) FROM app_risk WHERE tier = 'high_risk'), 'high_risk',
        app_hash IN (SELECT cityHash64(app) FROM app_risk WHERE tier = 'legacy'), 'legacy',
        'standard'
    ) AS risk_tier,
    steps
FROM
(
    SELECT
        key,
        any(source) AS source,
        any(sign_in_id) AS sign_in_id,
        max(user) AS user,
        max(user_key) AS user_key,
        min(time) AS time,
        arraySort(groupUniqArrayArray(factors)) AS factors,
        arraySort(groupUniqArrayArray(raw_factors)) AS raw_factors,
        groupBitOr(flags) AS found,
        bitAnd(found, 3) = 2 AS passwordless,
        max(outcome) % 2 = 0 AS success,
        nullIf(argMin(tupleElement(first_app, 'app'), app_order), '') AS app,
        toUInt64(bitAnd(min(app_order), 18446744073709551615)) AS app_hash,
        length(groupUniqArrayArray(step_ids)) AS steps
    FROM sign_in_parts
    -- the days of the range and one either side: the exactness assumption above
    WHERE day BETWEEN toDate32({from:DateTime64(6, 'UTC')}) - 1
        AND toDate32({to:DateTime64(6, 'UTC')}) + 1
    GROUP BY key
    HAVING bitTest(found, 2)
        AND time BETWEEN {from:DateTime64(6, 'UTC')} AND {to:DateTime64(6, 'UTC')}
);

-- Sign-ins that began in [from, to], one row each, as `sign_ins` has them, with `key` and
-- `user_key`.
CREATE OR REPLACE VIEW sign_ins_between AS
SELECT
    s.source AS source,
    s.sign_in_id AS sign_in_id,
    s.user AS user,
    s.time AS time,
    s.factors AS factors,
    s.raw_factors AS raw_factors,
    s.passwordless AS passwordless,
    s.success AS success,
    s.app AS app,
    s.steps AS steps,
    if(r.department = '', 'unknown', r.department) AS department,
    s.risk_tier AS risk_tier,
    s.key AS key,
    s.user_key AS user_key
FROM sign_in_facts_between(from = {from:DateTime64(6, 'UTC')}, to = {to:DateTime64(6, 'UTC')}) AS s
LEFT JOIN
(
    SELECT reinterpretAsUInt128(sipHash128(user)) AS user_key, department FROM roster FINAL
) AS r ON s.user_key = r.user_key;

-- One row per sign-in, merged from its parts (pipeline/aggregate/signins.py), with the
-- user's department from the roster and the app's risk tier from the plan.
CREATE OR REPLACE VIEW sign_ins AS
SELECT
    source, sign_in_id, user, time, factors, raw_factors, passwordless, success, app, steps,
    department, risk_tier
FROM sign_ins_between(from = '1970-01-01 00:00:00', to = '2149-06-05 23:59:59.999999');

-- The sign-ins of sign_ins_between whose first app the plan calls high-risk: only the
-- sign-ins with a record naming such an app are folded (a few in a hundred).
CREATE OR REPLACE VIEW high_risk_sign_ins_between AS
SELECT *
FROM sign_ins_between(from = {from:DateTime64(6, 'UTC')}, to = {to:DateTime64(6, 'UTC')})
WHERE key IN (
        SELECT key
        FROM sign_in_parts
        WHERE day BETWEEN toDate32({from:DateTime64(6, 'UTC')}) - 1
            AND toDate32({to:DateTime64(6, 'UTC')}) + 1
            AND tupleElement(first_app, 'app') IN (SELECT app FROM app_risk WHERE tier = 'high_risk'))
    AND risk_tier = 'high_risk';

-- -- the calendar ---------------------------------------------------------------------------

-- One row: the plan's first Monday (plan_start, when has_plan), the first and last rollout
-- day (rollout_days: from the plan's start, or the first event if earlier, to the latest
-- event's; when has_events) and the rollout weeks (plan_weeks: to the week of the latest
-- event). The sign-in parts' first and last day come from their parts' min / max index.
CREATE OR REPLACE VIEW rollout_calendar AS
SELECT
    e.events > 0 AS has_events,
    p.plans > 0 AS has_plan,
    p.start AS plan_start,
    if(has_plan, least(e.first, p.start), e.first) AS first_day,
    e.last AS last_day,
    toUInt32(if(has_plan, greatest(0, intDiv(dateDiff('day', p.start, e.latest), 7) + 1), 0))
        AS weeks
FROM
(
    SELECT
        sum(n) AS events,
        minIf(table_first, n > 0) AS first,
        maxIf(table_last, n > 0) AS last,
        max(table_last) AS latest -- as 0002's plan_weeks: an empty table's is 1970-01-01
    FROM
    (
        SELECT count() AS n, toDate32(min(day)) AS table_first, toDate32(max(day)) AS table_last
        FROM sign_in_parts
        UNION ALL
        SELECT count(), toDate32(min(time)), toDate32(max(time)) FROM enrollment_events
        UNION ALL
        SELECT count(), toDate32(min(time)), toDate32(max(time)) FROM tickets
    )
) AS e
CROSS JOIN
(
    SELECT count() AS plans, toDate32(any(start)) AS start FROM plan_phases FINAL WHERE phase = 1
) AS p;

-- Every UTC day from the plan's start (or the first event, if earlier) to the latest event's.
CREATE OR REPLACE VIEW rollout_days AS
SELECT toDate(first_day + n) AS day
FROM rollout_calendar
ARRAY JOIN range(toUInt32(if(has_events, dateDiff('day', first_day, last_day) + 1, 0))) AS n;

-- The rollout's weeks, from the plan's first Monday to the week of the latest event.
CREATE OR REPLACE VIEW plan_weeks AS
SELECT toDate(plan_start + 7 * n) AS week_start, toUInt16(n + 1) AS rollout_week
FROM rollout_calendar
ARRAY JOIN range(weeks) AS n;

-- -- the workforce and who of it is enrolled ------------------------------------------------

-- Each roster user (the latest row) with their department, home IdP and the days they were
-- active [joined, last_active] (2299-12-31 while not terminated).
CREATE OR REPLACE VIEW roster_spans AS
SELECT
    user,
    if(department = '', 'unknown', toString(department)) AS department,
    ifNull(toString(idp), 'unknown') AS idp,
    toDate32(active_from) AS joined,
    if(terminated_on IS NULL, toDate32('2299-12-31'), toDate32(assumeNotNull(terminated_on)) - 1)
        AS last_active
FROM roster FINAL;

-- Each user's passwordless-capable factor changes, one read of enrollment_events and no
-- window: `changes` in event order (time, event id) as (time, the factor or '' for a removal
-- of every factor, registered), `factors` (the factors named), `enrolled` (after each
-- change: some factor's latest change, of it or of every factor, registers it),
-- `registered_factors` (after the last), and `enrolled_days`: the days at whose end (24:00
-- UTC) the user had one registered, as disjoint segments [first, last] (a state holds from
-- its change's day to the day before the next change's day; 2299-12-31 while it lasts).
CREATE OR REPLACE VIEW enrollment_history AS
SELECT
    user,
    changes,
    factors,
    -- one state of every change even for a user with no factor named (only removals of
    -- every factor): maxForEach of no arrays is an empty one
    arrayMap(x -> x = 1, arrayReduce('maxForEach', arrayPushBack(states, arrayMap(c -> toInt8(-1), changes))))
        AS enrolled,
    arraySort(arrayFilter((f, state) -> state[-1] = 1, factors, states)) AS registered_factors,
    arrayMap(c -> toDate32(c.1), changes) AS days,
    arrayFilter(
        (segment, on) -> on AND segment.1 <= segment.2,
        arrayZip(days, arrayPopFront(arrayPushBack(arrayMap(d -> d - 1, days), toDate32('2299-12-31')))),
        enrolled) AS enrolled_days
FROM
(
    SELECT
        user,
        arrayMap(c -> (c.1, c.3, c.4), arraySort(groupArray(
            (time, event_id, ifNull(toString(method), ''), method IS NOT NULL AND action = 'registered')
        ))) AS changes,
        arrayDistinct(arrayFilter(m -> m != '', tupleElement(changes, 2))) AS factors,
        -- each factor's state after each change: 1 registered, 0 removed, -1 not changed yet
        arrayMap(f -> arrayFill(x -> x >= 0, arrayMap(
            c -> multiIf(c.2 = f, toInt8(c.3), c.2 = '', toInt8(0), toInt8(-1)), changes)), factors)
            AS states
    FROM enrollment_events FINAL
    WHERE passwordless_factor OR method IS NULL
    GROUP BY user
);

-- Each (user, factor) registration state change; a removal without a method (Okta
-- "reset all factors") removes every factor the user had.
CREATE OR REPLACE VIEW enrollment_changes AS
SELECT user, method, change.4 AS registered, change.1 AS time, change.2 AS event_id
FROM
(
    SELECT user, change, factors
    FROM
    (
        SELECT
            user,
            groupArray(
                (time, event_id, ifNull(toString(method), ''), method IS NOT NULL AND action = 'registered')
            ) AS changes,
            arrayDistinct(arrayFilter(m -> m != '', tupleElement(changes, 3))) AS factors
        FROM enrollment_events FINAL
        WHERE passwordless_factor OR method IS NULL
        GROUP BY user
    )
    ARRAY JOIN changes AS change
)
ARRAY JOIN if(change.3 = '', factors, [change.3]) AS method;

-- Per day, department and home IdP, for the days asked for: the roster users active that day
-- and those of them with a passwordless-capable factor registered at its end. The days:
-- with sundays = 0 the rollout days in [from, to]; with sundays = 1 the Sundays of the
-- rollout weeks whose Monday is in [from, to]; numbered n = 0, 1, ... Each user adds 1 from
-- the first day they are active (and enrolled) and takes it away after the last, and the
-- changes up to a day count it: the cost follows users + days shown, not users x days.
-- With enrollment = 0 the enrolled users are not counted (0), nor their factors read.
CREATE OR REPLACE VIEW workforce_on_days AS
SELECT
    toDate(first + n * step) AS day,
    department,
    idp,
    toUInt64(sum(active_change)) AS active,
    toUInt64(sum(enrolled_change)) AS enrolled
FROM
(
    SELECT
        department, idp, first, step, last_n, change.1 AS at,
        sumIf(change.2, span = 1) AS active_change, sumIf(change.2, span > 1) AS enrolled_change
    FROM
    (
        SELECT
            r.department AS department,
            r.idp AS idp,
            d.first AS first,
            d.step AS step,
            toInt64(intDiv(dateDiff('day', d.first, d.last), d.step)) AS last_n,
            -- span 1: the days the user is active; then each enrolled segment while active
            span,
            if(span = 1, r.joined, greatest(r.joined, segment.1)) AS span_first,
            least(r.last_active, d.last, if(span = 1, r.last_active, segment.2)) AS span_last,
            -- the first day numbered on or after span_first (0 before the first), the last on
            -- or before span_last
            toInt64(greatest(0, intDiv(dateDiff('day', d.first, span_first) + d.step - 1, d.step)))
                AS first_n,
            toInt64(intDiv(dateDiff('day', d.first, span_last), d.step)) AS last_span_n
        FROM roster_spans AS r
        CROSS JOIN
        (
            SELECT
                if({sundays:UInt8} = 1,
                    plan_start + 6 + 7 * toInt64(greatest(0, ceil(dateDiff('day', plan_start, {from:Date32}) / 7))),
                    greatest({from:Date32}, first_day)) AS first,
                if({sundays:UInt8} = 1,
                    plan_start + 6 + 7 * least(toInt64(weeks) - 1,
                        toInt64(floor(dateDiff('day', plan_start, {to:Date32}) / 7))),
                    least({to:Date32}, last_day)) AS last,
                if({sundays:UInt8} = 1, 7, 1) AS step
            FROM rollout_calendar
            WHERE if({sundays:UInt8} = 1, has_plan AND weeks > 0, has_events)
        ) AS d
        LEFT JOIN
        (
            SELECT user, enrolled_days FROM enrollment_history WHERE {enrollment:UInt8} = 1
        ) AS e ON e.user = r.user
        ARRAY JOIN
            arrayPushFront(e.enrolled_days, (toDate32('1900-01-01'), toDate32('1900-01-01'))) AS segment,
            arrayEnumerate(arrayPushFront(e.enrolled_days, (toDate32('1900-01-01'), toDate32('1900-01-01'))))
                AS span
        WHERE d.first <= d.last AND r.joined <= d.last AND r.last_active >= d.first
            AND span_last >= d.first
    )
    -- (n, change): 1 from the span's first day numbered, -1 after its last
    ARRAY JOIN [(first_n, 1), (last_span_n + 1, -1)] AS change
    WHERE first_n <= last_span_n
    GROUP BY department, idp, first, step, last_n, at
)
ARRAY JOIN range(at, last_n + 1) AS n
GROUP BY day, department, idp
HAVING active > 0;

-- Active workforce of each week whose Monday is in [from, to]: roster users active on its Sunday.
CREATE OR REPLACE VIEW weekly_roster_between AS
SELECT w.week_start AS week_start, r.user AS user, r.department AS department
FROM (SELECT week_start FROM plan_weeks WHERE week_start BETWEEN {from:Date32} AND {to:Date32}) AS w
CROSS JOIN roster_spans AS r
WHERE r.joined <= w.week_start + 6 AND w.week_start + 6 <= r.last_active;

-- Active workforce of each week: roster users active on its Sunday.
CREATE OR REPLACE VIEW weekly_roster AS
SELECT * FROM weekly_roster_between(from = '1900-01-01', to = '2299-12-31');

-- Active workforce of each week (0 for a week nobody was active).
CREATE OR REPLACE VIEW weekly_workforce AS
SELECT w.week_start AS week_start, a.active_workforce AS active_workforce
FROM plan_weeks AS w
LEFT JOIN
(
    SELECT toDate(day - 6) AS week_start, sum(active) AS active_workforce
    FROM workforce_on_days(from = '1900-01-01', to = '2299-12-31', sundays = 1, enrollment = 0)
    GROUP BY week_start
) AS a ON a.week_start = w.week_start;

-- Users of the week's active workforce with at least one passwordless-capable factor
-- registered at the end of the week (Sunday 24:00 UTC), weeks whose Monday is in [from, to].
CREATE OR REPLACE VIEW weekly_enrollment_between AS
SELECT toDate(day - 6) AS week_start, sum(enrolled) AS enrolled_users
FROM workforce_on_days(from = {from:Date32}, to = {to:Date32}, sundays = 1, enrollment = 1)
GROUP BY week_start;

-- The same for every week.
CREATE OR REPLACE VIEW weekly_enrollment AS
SELECT * FROM weekly_enrollment_between(from = '1900-01-01', to = '2299-12-31');

-- Roster users active on each rollout day of [from, to], with their department and home IdP.
CREATE OR REPLACE VIEW workforce_days_between AS
SELECT toDate(day) AS day, user, department, idp
FROM
(
    SELECT r.user AS user, r.department AS department, r.idp AS idp,
        greatest(r.joined, d.first) AS first, least(r.last_active, d.last) AS last
    FROM roster_spans AS r
    CROSS JOIN
    (
        SELECT greatest({from:Date32}, first_day) AS first, least({to:Date32}, last_day) AS last
        FROM rollout_calendar
        WHERE has_events
    ) AS d
    WHERE first <= last
)
ARRAY JOIN arrayMap(n -> first + n, range(toUInt32(dateDiff('day', first, last) + 1))) AS day;

-- Roster users active on each rollout day, with their department and home IdP.
CREATE OR REPLACE VIEW workforce_days AS
SELECT * FROM workforce_days_between(from = '1900-01-01', to = '2299-12-31');

-- Active workforce and those of it enrolled at 24:00 UTC, per day of [from, to], department,
-- home IdP.
CREATE OR REPLACE VIEW enrollment_daily_between AS
SELECT
    day,
    tupleElement(key, 1) AS department,
    tupleElement(key, 2) AS idp,
    sum(active) AS active_workforce,
    sum(enrolled) AS enrolled_users,
    if(active_workforce = 0, NULL, enrolled_users / active_workforce) AS enrollment_rate
FROM
(
    SELECT day, department AS user_department, idp AS user_idp, active, enrolled
    FROM workforce_on_days(from = {from:Date32}, to = {to:Date32}, sundays = 0, enrollment = 1)
)
ARRAY JOIN
    [(user_department, user_idp), (user_department, 'all'), ('all', user_idp), ('all', 'all')]
    AS key
GROUP BY day, key;

-- Active workforce and those of it enrolled at 24:00 UTC, per day, department, home IdP.
CREATE OR REPLACE VIEW enrollment_daily AS
SELECT * FROM enrollment_daily_between(from = '1900-01-01', to = '2299-12-31');

-- -- weekly ---------------------------------------------------------------------------------

-- Successful sign-ins per week and owning IdP, weeks whose Monday is in [from, to].
CREATE OR REPLACE VIEW weekly_sign_ins_between AS
SELECT
    toMonday(time) AS week_start,
    source,
    count() AS sign_ins,
    countIf(passwordless) AS passwordless_sign_ins,
    countIf(risk_tier = 'high_risk') AS high_risk_sign_ins,
    countIf(risk_tier = 'high_risk' AND passwordless) AS high_risk_passwordless_sign_ins
FROM sign_in_facts_between(
    from = toDateTime64(toMonday({from:Date32} + 6), 6, 'UTC'),
    to = toDateTime64(toDate32(toMonday({to:Date32})) + 7, 6, 'UTC') - toIntervalMicrosecond(1))
WHERE success
GROUP BY week_start, source;

-- Successful sign-ins per week and owning IdP.
CREATE OR REPLACE VIEW weekly_sign_ins AS
SELECT * FROM weekly_sign_ins_between(from = '1970-01-05', to = '2149-06-05');

-- Users with a successful sign-in in the week, and those whose every one was passwordless
-- (all of them less those with one that was not), weeks whose Monday is in [from, to].
CREATE OR REPLACE VIEW weekly_users_between AS
SELECT
    toMonday(time) AS week_start,
    uniqExact(user_key) AS users_signed_in,
    users_signed_in - uniqExactIf(user_key, NOT passwordless) AS users_on_passwordless
FROM sign_in_facts_between(
    from = toDateTime64(toMonday({from:Date32} + 6), 6, 'UTC'),
    to = toDateTime64(toDate32(toMonday({to:Date32})) + 7, 6, 'UTC') - toIntervalMicrosecond(1))
WHERE success
GROUP BY week_start;

-- Users with a successful sign-in in the week, and those whose every one was passwordless.
CREATE OR REPLACE VIEW weekly_users AS
SELECT * FROM weekly_users_between(from = '1970-01-05', to = '2149-06-05');

-- The three metrics and their parts, one row per rollout week whose Monday is in [from, to]
-- (one fold of the sign-ins for both the sign-in and the user counts, one count of the
-- workforce for both the active and the enrolled users).
CREATE OR REPLACE VIEW weekly_metrics_between AS
SELECT
    w.week_start AS week_start,
    w.rollout_week AS rollout_week,
    ifNull(arrayFirst(p -> p.2 <= w.rollout_week AND (p.3 IS NULL OR w.rollout_week <= p.3),
        ph.phases).1, 0) AS phase,
    f.active_workforce AS active_workforce,
    f.enrolled_users AS enrolled_users,
    s.sign_ins AS sign_ins,
    s.passwordless_sign_ins AS passwordless_sign_ins,
    s.high_risk_sign_ins AS high_risk_sign_ins,
    s.high_risk_passwordless_sign_ins AS high_risk_passwordless_sign_ins,
    s.users_signed_in AS users_signed_in,
    s.users_on_passwordless AS users_on_passwordless,
    t.tickets AS tickets,
    if(active_workforce = 0, NULL, enrolled_users / active_workforce) AS enrollment_rate,
    if(sign_ins = 0, NULL, passwordless_sign_ins / sign_ins) AS active_use_rate,
    if(users_signed_in = 0, NULL, users_on_passwordless / users_signed_in) AS on_passwordless_rate,
    if(high_risk_sign_ins = 0, NULL, high_risk_passwordless_sign_ins / high_risk_sign_ins)
        AS high_risk_active_use_rate,
    if(active_workforce = 0, NULL, tickets * 1000 / active_workforce) AS ticket_rate_per_1000
FROM (SELECT * FROM plan_weeks WHERE week_start BETWEEN {from:Date32} AND {to:Date32}) AS w
CROSS JOIN
(
    SELECT groupArray((phase, first_week, last_week)) AS phases FROM plan_phases FINAL
) AS ph
LEFT JOIN
(
    SELECT toDate(day - 6) AS week_start, sum(active) AS active_workforce,
        sum(enrolled) AS enrolled_users
    FROM workforce_on_days(from = {from:Date32}, to = {to:Date32}, sundays = 1, enrollment = 1)
    GROUP BY week_start
) AS f ON f.week_start = w.week_start
LEFT JOIN
(
    SELECT
        toMonday(time) AS week_start,
        count() AS sign_ins,
        countIf(passwordless) AS passwordless_sign_ins,
        countIf(risk_tier = 'high_risk') AS high_risk_sign_ins,
        countIf(risk_tier = 'high_risk' AND passwordless) AS high_risk_passwordless_sign_ins,
        uniqExact(user_key) AS users_signed_in,
        users_signed_in - uniqExactIf(user_key, NOT passwordless) AS users_on_passwordless
    FROM sign_in_facts_between(
        from = toDateTime64(toMonday({from:Date32} + 6), 6, 'UTC'),
        to = toDateTime64(toDate32(toMonday({to:Date32})) + 7, 6, 'UTC') - toIntervalMicrosecond(1))
    WHERE success
    GROUP BY week_start
) AS s ON s.week_start = w.week_start
LEFT JOIN
(
    SELECT toMonday(time) AS week_start, count() AS tickets
    FROM tickets FINAL
    WHERE toMonday(time) BETWEEN {from:Date32} AND {to:Date32}
    GROUP BY week_start
) AS t ON t.week_start = w.week_start;

-- The three metrics and their parts, one row per rollout week.
CREATE OR REPLACE VIEW weekly_metrics AS
SELECT * FROM weekly_metrics_between(from = '1900-01-01', to = '2299-12-31');

-- Each week's metrics against its phase's targets (plan_targets, from the plan file), weeks
-- whose Monday is in [from, to].
CREATE OR REPLACE VIEW phase_gates_between AS
SELECT
    m.week_start AS week_start,
    m.rollout_week AS rollout_week,
    m.phase AS phase,
    t.metric AS metric,
    t.target AS target,
    multiIf(
        t.metric = 'enrollment_rate', m.enrollment_rate,
        t.metric = 'active_use_rate', m.active_use_rate,
        t.metric = 'on_passwordless_rate', m.on_passwordless_rate,
        m.high_risk_active_use_rate
    ) AS actual,
    actual >= t.target AS passed
FROM weekly_metrics_between(from = {from:Date32}, to = {to:Date32}) AS m
INNER JOIN (SELECT phase, metric, target FROM plan_targets FINAL) AS t ON t.phase = m.phase;

-- Each week's metrics against its phase's targets (plan_targets, from the plan file).
CREATE OR REPLACE VIEW phase_gates AS
SELECT * FROM phase_gates_between(from = '1900-01-01', to = '2299-12-31');

-- -- daily (0003's rollups) -----------------------------------------------------------------

-- Sign-ins and passwordless sign-ins per UTC hour of the days [from, to], by source (owning
-- IdP), department, risk tier.
CREATE OR REPLACE VIEW active_use_hourly_between AS
SELECT
    hour,
    tupleElement(key, 1) AS source,
    tupleElement(key, 2) AS department,
    tupleElement(key, 3) AS risk_tier,
    sum(n) AS sign_ins,
    sum(p) AS passwordless_sign_ins,
    if(sign_ins = 0, NULL, passwordless_sign_ins / sign_ins) AS active_use_rate
FROM
(
    -- counted at the finest grain first, then added up under the 'all' totals
    SELECT
        toStartOfHour(toDateTime(time, 'UTC')) AS hour,
        toString(source) AS sign_in_source,
        department AS sign_in_department,
        risk_tier AS sign_in_tier,
        count() AS n,
        countIf(passwordless) AS p
    FROM sign_ins_between(
        from = toDateTime64({from:Date32}, 6, 'UTC'),
        to = toDateTime64({to:Date32} + 1, 6, 'UTC') - toIntervalMicrosecond(1))
    WHERE success
    GROUP BY hour, sign_in_source, sign_in_department, sign_in_tier
)
ARRAY JOIN
    [
        (sign_in_source, sign_in_department, sign_in_tier),
        (sign_in_source, 'all', 'all'),
        ('all', sign_in_department, 'all'),
        ('all', 'all', sign_in_tier),
        ('all', 'all', 'all')
    ] AS key
GROUP BY hour, key;

-- Sign-ins and passwordless sign-ins per UTC hour, source (owning IdP), department, risk tier.
CREATE OR REPLACE VIEW active_use_hourly AS
SELECT * FROM active_use_hourly_between(from = '1970-01-01', to = '2149-06-05');

-- The same per UTC day, days [from, to]: the sum of the day's hours.
CREATE OR REPLACE VIEW active_use_daily_between AS
SELECT
    toDate(hour) AS day,
    source,
    department,
    risk_tier,
    sum(h.sign_ins) AS sign_ins,
    sum(h.passwordless_sign_ins) AS passwordless_sign_ins,
    if(sign_ins = 0, NULL, passwordless_sign_ins / sign_ins) AS active_use_rate
FROM active_use_hourly_between(from = {from:Date32}, to = {to:Date32}) AS h
GROUP BY day, source, department, risk_tier;

-- The same per UTC day (the sum of the day's hours).
CREATE OR REPLACE VIEW active_use_daily AS
SELECT * FROM active_use_daily_between(from = '1970-01-01', to = '2149-06-05');

-- Sign-ins and passwordless sign-ins in the 7 and in the 28 days ending on `day`, days
-- [from, to]: each day's counts added to the 28 days it ends a window of.
CREATE OR REPLACE VIEW active_use_trailing_between AS
SELECT
    day, source, department, risk_tier,
    sign_ins_7d, passwordless_7d,
    if(sign_ins_7d = 0, NULL, passwordless_7d / sign_ins_7d) AS active_use_rate_7d,
    sign_ins_28d, passwordless_28d,
    if(sign_ins_28d = 0, NULL, passwordless_28d / sign_ins_28d) AS active_use_rate_28d
FROM
(
    SELECT
        toDate(d.day + n) AS day,
        d.source AS source,
        d.department AS department,
        d.risk_tier AS risk_tier,
        sumIf(d.sign_ins, n < 7) AS sign_ins_7d,
        sumIf(d.passwordless_sign_ins, n < 7) AS passwordless_7d,
        sum(d.sign_ins) AS sign_ins_28d,
        sum(d.passwordless_sign_ins) AS passwordless_28d
    FROM active_use_daily_between(from = {from:Date32} - 27, to = {to:Date32}) AS d
    CROSS JOIN (SELECT last_day FROM rollout_calendar) AS c
    ARRAY JOIN range(28) AS n
    WHERE toDate(d.day + n) BETWEEN {from:Date32} AND least({to:Date32}, c.last_day)
    GROUP BY day, source, department, risk_tier
)
WHERE sign_ins_28d > 0;

-- Sign-ins and passwordless sign-ins in the 7 and in the 28 days ending on `day`.
CREATE OR REPLACE VIEW active_use_trailing AS
SELECT * FROM active_use_trailing_between(from = '1970-01-01', to = '2149-06-05');

-- Users signed in in the 7 days ending on `day`, and those whose every sign-in was
-- passwordless, days [from, to]. Each user's sign-in days cover themselves and the 6 after:
-- per user and source (or 'all') the covered days as intervals, of all their successful
-- sign-ins and of those that were not passwordless; each interval adds 1 on its first day
-- in range and takes it away after its last, and the sum of the changes up to a day counts
-- its users (the cost follows the users and days shown, not users x days).
CREATE OR REPLACE VIEW on_passwordless_daily_between AS
SELECT
    day,
    source,
    department,
    users_signed_in_7d,
    users_signed_in_7d - not_passwordless_7d AS users_on_passwordless_7d,
    if(users_signed_in_7d = 0, NULL, users_on_passwordless_7d / users_signed_in_7d)
        AS on_passwordless_rate_7d
FROM
(
    -- each day's changes added to the days from it to the last rollout day in range
    SELECT
        toDate(c.day + n) AS day,
        c.source AS source,
        department,
        toUInt64(sum(c.signed)) AS users_signed_in_7d,
        toUInt64(sum(c.not_passwordless)) AS not_passwordless_7d
    FROM
    (
        SELECT
            source,
            user_department,
            toDate(change.1) AS day,
            sumIf(change.2, measure = 1) AS signed,
            sumIf(change.2, measure = 2) AS not_passwordless
        FROM
        (
            SELECT
                u.source AS source,
                if(r.department = '', 'unknown', r.department) AS user_department,
                -- [first, last] of each run of days no more than 7 apart, the last + 6: the
                -- days covered, by every sign-in day and by the not passwordless ones (the
                -- day before and after each as arrays: a lambda capturing an array copies it)
                arrayMap(days -> arrayZip(
                        arrayFilter((d, before) -> d > before + 7, days,
                            arrayPopBack(arrayPushFront(days, toDate32('1900-01-01')))),
                        arrayMap(d -> d + 6, arrayFilter((d, after) -> after > d + 7, days,
                            arrayPopFront(arrayPushBack(days, toDate32('2299-12-31')))))),
                    [u.signed, u.not_passwordless]) AS covers
            FROM
            (
                SELECT
                    user_key,
                    user_source AS source,
                    arraySort(groupUniqArray(signed_in_on)) AS signed,
                    arraySort(groupUniqArrayIf(signed_in_on, NOT day_passwordless)) AS not_passwordless
                FROM
                (
                    SELECT toDate32(time) AS signed_in_on, toString(source) AS sign_in_source,
                        user_key, min(passwordless) AS day_passwordless
                    FROM sign_in_facts_between(
                        from = toDateTime64({from:Date32} - 6, 6, 'UTC'),
                        to = toDateTime64({to:Date32} + 1, 6, 'UTC') - toIntervalMicrosecond(1))
                    WHERE success
                    GROUP BY signed_in_on, sign_in_source, user_key
                )
                ARRAY JOIN [sign_in_source, 'all'] AS user_source
                GROUP BY user_key, user_source
            ) AS u
            LEFT JOIN
            (
                SELECT reinterpretAsUInt128(sipHash128(user)) AS user_key, department FROM roster FINAL
            ) AS r ON r.user_key = u.user_key
        )
        ARRAY JOIN covers AS cover, [1, 2] AS measure
        ARRAY JOIN cover AS span
        ARRAY JOIN
            [(greatest(span.1, {from:Date32}), 1), (least(span.2, {to:Date32}) + 1, -1)] AS change
        WHERE greatest(span.1, {from:Date32}) <= least(span.2, {to:Date32})
        GROUP BY source, user_department, day
    ) AS c
    CROSS JOIN (SELECT least({to:Date32}, last_day) AS last FROM rollout_calendar) AS e
    ARRAY JOIN [c.user_department, 'all'] AS department
    ARRAY JOIN range(toUInt32(greatest(0, dateDiff('day', c.day, e.last) + 1))) AS n
    GROUP BY day, source, department
)
WHERE users_signed_in_7d > 0;

-- Users signed in in the 7 days ending on `day`, and those whose every sign-in was passwordless.
CREATE OR REPLACE VIEW on_passwordless_daily AS
SELECT * FROM on_passwordless_daily_between(from = '1970-01-01', to = '2149-06-05');

-- -- tickets --------------------------------------------------------------------------------

-- Departments of the ticket views: of everyone active on a rollout Sunday (a `weeks` row)
-- or on a rollout day (a `days` row), and 'all', with those of every ticket: a range's rows
-- are the same as the whole history's rows of its days.
CREATE OR REPLACE VIEW ticket_departments AS
SELECT DISTINCT found.1 AS grain, found.2 AS department
FROM
(
    SELECT
        arrayJoin(
            arrayConcat(
                if(on_a_sunday, [('weeks', department), ('weeks', 'all')], []),
                if(on_a_day, [('days', department), ('days', 'all')], [])
            )
        ) AS found
    FROM
    (
        SELECT
            r.department AS department,
            -- the first Sunday of a rollout week on or after the user joined
            c.plan_start + 6 + 7 * toInt64(greatest(0,
                ceil(dateDiff('day', c.plan_start + 6, r.joined) / 7))) AS sunday,
            c.has_plan AND sunday <= r.last_active
                AND dateDiff('day', c.plan_start, sunday) < 7 * c.weeks AS on_a_sunday,
            c.has_events AND greatest(r.joined, c.first_day) <= least(r.last_active, c.last_day)
                AS on_a_day
        FROM roster_spans AS r
        CROSS JOIN rollout_calendar AS c
    )
    UNION ALL
    SELECT arrayJoin([('weeks', department), ('days', department)]) AS found FROM ticket_dimensions
);

-- The scenarios of the ticket views: 'all' and every scenario a ticket was filed under.
CREATE OR REPLACE VIEW ticket_scenarios AS
SELECT 'all' AS scenario
UNION DISTINCT
SELECT toString(scenario) AS scenario FROM tickets FINAL;

-- Tickets per 1,000 users active on the Sunday, per rollout week whose Monday is in
-- [from, to], scenario, user's department.
CREATE OR REPLACE VIEW ticket_rate_weekly_between AS
WITH
    headcount AS
    (
        SELECT toDate(day - 6) AS week_start, department, sum(active) AS active_workforce
        FROM
        (
            SELECT day, department AS user_department, active
            FROM workforce_on_days(from = {from:Date32}, to = {to:Date32}, sundays = 1, enrollment = 0)
        )
        ARRAY JOIN [user_department, 'all'] AS department
        GROUP BY week_start, department
    ),
    counted AS
    (
        SELECT toMonday(time) AS week_start, scenario, department, count() AS tickets
        FROM ticket_dimensions
        WHERE toMonday(time) BETWEEN {from:Date32} AND {to:Date32}
        GROUP BY week_start, scenario, department
    )
SELECT
    g.week_start AS week_start,
    g.scenario AS scenario,
    g.department AS department,
    t.tickets AS tickets,
    h.active_workforce AS active_workforce,
    if(active_workforce = 0, NULL, tickets * 1000 / active_workforce) AS tickets_per_1000
FROM
(
    SELECT w.week_start AS week_start, s.scenario AS scenario, d.department AS department
    FROM (SELECT week_start FROM plan_weeks WHERE week_start BETWEEN {from:Date32} AND {to:Date32}) AS w
    CROSS JOIN ticket_scenarios AS s
    CROSS JOIN (SELECT department FROM ticket_departments WHERE grain = 'weeks') AS d
) AS g
LEFT JOIN counted AS t
    ON t.week_start = g.week_start AND t.scenario = g.scenario AND t.department = g.department
LEFT JOIN headcount AS h ON h.week_start = g.week_start AND h.department = g.department;

-- Tickets per 1,000 users active on the Sunday, per rollout week, scenario, user's department.
CREATE OR REPLACE VIEW ticket_rate_weekly AS
SELECT * FROM ticket_rate_weekly_between(from = '1900-01-01', to = '2299-12-31');

-- Tickets in the 28 days ending on `day` per 1,000 users active on `day`, days [from, to].
CREATE OR REPLACE VIEW ticket_rate_trailing_28d_between AS
WITH
    headcount AS
    (
        SELECT day, department, sum(active) AS active_workforce
        FROM
        (
            SELECT day, department AS user_department, active
            FROM workforce_on_days(from = {from:Date32}, to = {to:Date32}, sundays = 0, enrollment = 0)
        )
        ARRAY JOIN [user_department, 'all'] AS department
        GROUP BY day, department
    ),
    counted AS
    (
        SELECT toDate(time) AS day, scenario, department, count() AS tickets
        FROM ticket_dimensions
        WHERE toDate(time) BETWEEN {from:Date32} - 27 AND {to:Date32}
        GROUP BY day, scenario, department
    )
SELECT
    day,
    scenario,
    department,
    tickets_28d,
    active_workforce,
    if(active_workforce = 0, NULL, tickets_28d * 1000 / active_workforce) AS tickets_per_1000_28d
FROM
(
    SELECT
        g.day AS day,
        g.scenario AS scenario,
        g.department AS department,
        sum(t.tickets) OVER (PARTITION BY g.scenario, g.department ORDER BY g.day
            RANGE BETWEEN 27 PRECEDING AND CURRENT ROW) AS tickets_28d,
        h.active_workforce AS active_workforce
    FROM
    (
        SELECT c.day AS day, s.scenario AS scenario, d.department AS department
        FROM
        (
            SELECT day FROM rollout_days WHERE day BETWEEN {from:Date32} - 27 AND {to:Date32}
        ) AS c
        CROSS JOIN ticket_scenarios AS s
        CROSS JOIN (SELECT department FROM ticket_departments WHERE grain = 'days') AS d
    ) AS g
    LEFT JOIN counted AS t
        ON t.day = g.day AND t.scenario = g.scenario AND t.department = g.department
    LEFT JOIN headcount AS h ON h.day = g.day AND h.department = g.department
)
WHERE day BETWEEN {from:Date32} AND {to:Date32};

-- Tickets in the 28 days ending on `day` per 1,000 users active on `day`.
CREATE OR REPLACE VIEW ticket_rate_trailing_28d AS
SELECT * FROM ticket_rate_trailing_28d_between(from = '1900-01-01', to = '2299-12-31');

-- Tickets per 1,000 users per quarter, over the mean active workforce of its weeks, the
-- quarters that [from, to] overlaps (each whole).
CREATE OR REPLACE VIEW ticket_rate_quarterly_between AS
SELECT
    toStartOfQuarter(week_start) AS quarter_start,
    scenario,
    department,
    count() AS weeks,
    sum(tickets) AS tickets,
    avg(active_workforce) AS active_workforce,
    if(active_workforce = 0, NULL, tickets * 1000 / active_workforce) AS tickets_per_1000
FROM ticket_rate_weekly_between(
    from = toStartOfQuarter({from:Date32}),
    to = addMonths(toDate32(toStartOfQuarter({to:Date32})), 3) - 1)
GROUP BY quarter_start, scenario, department;

-- Tickets per 1,000 users per quarter, over the mean active workforce of its weeks.
CREATE OR REPLACE VIEW ticket_rate_quarterly AS
SELECT * FROM ticket_rate_quarterly_between(from = '1900-01-01', to = '2299-12-31');

-- -- enrolled users still typing passwords --------------------------------------------------

-- Users still enrolled who signed in without passwordless, while enrolled, in the 7 days up
-- to `at` (enrolled at the sign-in: after the user's last factor change up to its time).
CREATE OR REPLACE VIEW enrolled_still_using_passwords_at AS
SELECT
    s.user AS user,
    s.department AS department,
    s.source AS source,
    count() AS password_sign_ins_7d,
    max(s.time) AS last_password_sign_in,
    any(h.registered_factors) AS enrolled_factors
FROM sign_ins_between(
    from = {at:DateTime64(6, 'UTC')} - INTERVAL 7 DAY, to = {at:DateTime64(6, 'UTC')}) AS s
INNER JOIN
(
    SELECT user, changes, enrolled, registered_factors
    FROM enrollment_history
    WHERE notEmpty(registered_factors)
) AS h ON h.user = s.user
WHERE s.success AND NOT s.passwordless AND s.time > {at:DateTime64(6, 'UTC')} - INTERVAL 7 DAY
    AND h.enrolled[arrayLastIndex(c -> c.1 <= s.time, h.changes)]
GROUP BY user, department, source;

-- Users still enrolled who signed in without passwordless, while enrolled, in the 7 days up
-- to the latest sign-in. That one began on the last day with a factor check or the day
-- before (the exactness assumption above), so only those days are folded to find it.
CREATE OR REPLACE VIEW enrolled_still_using_passwords AS
SELECT *
FROM enrolled_still_using_passwords_at(at = (
    SELECT max(time)
    FROM sign_in_facts_between(
        from = toDateTime64((SELECT toDate32(max(day)) FROM sign_in_parts WHERE bitTest(flags, 2)) - 1,
            6, 'UTC'),
        to = toDateTime64('2149-06-05 23:59:59.999999', 6, 'UTC'))))
ORDER BY user, department, source;

-- -- pipeline health ------------------------------------------------------------------------

-- Schema drift: factor and method strings no mapping knows (classified `unknown`, never
-- dropped), per source and string. The events with one are found by the index of 0010, and
-- only those are read again as stored now (FINAL: the latest copy of each event).
CREATE OR REPLACE VIEW unknown_methods AS
SELECT source, raw_method, count() AS events, min(time) AS first_seen, max(time) AS last_seen
FROM
(
    SELECT toString(source) AS source, raw_factors[i] AS raw_method, time
    FROM auth_events FINAL
    ARRAY JOIN arrayEnumerate(factors) AS i
    WHERE (source, event_id) IN (
            SELECT source, event_id FROM auth_events WHERE has(factors, 'unknown'))
        AND factors[i] = 'unknown'
    UNION ALL
    SELECT toString(source) AS source, ifNull(raw_method, '') AS raw_method, time
    FROM enrollment_events FINAL
    WHERE method = 'unknown'
)
GROUP BY source, raw_method;
