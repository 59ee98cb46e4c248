-- Rolling aggregates for dashboards: active use per hour, day and trailing 7 / 28 days; daily
-- enrollment and share on passwordless; helpdesk tickets per 1,000 users per week, trailing 28
-- days and quarter. Definitions: README.md, "Metrics: exact definitions"; days and hours are UTC.
-- - Sign-ins are successful ones; a rate whose denominator is zero is NULL.
-- - A dimension value 'all' is the total over that dimension, so each rate reads as is. Counts at
--   the finest grain (no 'all') add up to the 'all' rows (except a user of on_passwordless_daily
--   seen under two sources, who is one user of source 'all'): filter every dimension to one value
--   or to 'all', never sum 'all' rows with the others.
-- - Daily views cover rollout_days, a dense calendar: a day without events still counts in a
--   trailing window, whatever the dimension. Trailing windows end on `day`, inclusive.
-- - active_use_trailing has a row while its 28-day window holds a sign-in; the ticket views have
--   a row for every period, scenario ever seen and department (0 tickets included).
-- - A quarter (ticket_rate_quarterly) is the rollout weeks whose Monday falls in the calendar
--   quarter (13 or 14; `weeks` says how many so far), over the mean of their weekly workforce.
-- - enrolled_still_using_passwords: sign-ins that were not passwordless (a password, or a push /
--   OTP after a password checked elsewhere), in the 7 days up to the latest sign-in, made while
--   the user had a passwordless factor registered, by users who still have one.

-- Every UTC day from the plan's start (or the first event, if earlier) to the latest event's.
CREATE OR REPLACE VIEW rollout_days AS
SELECT toDate(span.first + n) AS day
FROM
(
    SELECT min(d) AS first, maxIf(d, is_event) AS last
    FROM
    (
        SELECT toDate(time) AS d, true AS is_event FROM sign_in_parts
        UNION ALL
        SELECT toDate(time) AS d, true AS is_event FROM enrollment_events
        UNION ALL
        SELECT toDate(time) AS d, true AS is_event FROM tickets
        UNION ALL
        SELECT start AS d, false AS is_event FROM plan_phases FINAL WHERE phase = 1
    )
    HAVING countIf(is_event) > 0
) AS span
ARRAY JOIN range(toUInt32(dateDiff('day', span.first, span.last) + 1)) AS n;

-- Sign-ins and passwordless sign-ins per UTC hour, source (owning IdP), department, risk tier.
CREATE OR REPLACE VIEW active_use_hourly AS
SELECT
    hour,
    tupleElement(key, 1) AS source,
    tupleElement(key, 2) AS department,
    tupleElement(key, 3) AS risk_tier,
    count() AS sign_ins,
    countIf(passwordless) AS passwordless_sign_ins,
    if(sign_ins = 0, NULL, passwordless_sign_ins / sign_ins) AS active_use_rate
FROM
(
    SELECT
        toStartOfHour(toDateTime(time, 'UTC')) AS hour,
        passwordless,
        [
            (toString(source), department, risk_tier),
            (toString(source), 'all', 'all'),
            ('all', department, 'all'),
            ('all', 'all', risk_tier),
            ('all', 'all', 'all')
        ] AS keys
    FROM sign_ins
    WHERE success
)
ARRAY JOIN keys AS key
GROUP BY hour, key;

-- The same per UTC day (the sum of the day's hours).
CREATE OR REPLACE VIEW active_use_daily AS
SELECT
    toDate(hour) AS day,
    source,
    department,
    risk_tier,
    sum(sign_ins) AS sign_ins,
    sum(passwordless_sign_ins) AS passwordless_sign_ins,
    if(sign_ins = 0, NULL, passwordless_sign_ins / sign_ins) AS active_use_rate
FROM active_use_hourly
GROUP BY day, source, department, risk_tier;

-- Sign-ins and passwordless sign-ins in the 7 and in the 28 days ending on `day`.
CREATE OR REPLACE VIEW active_use_trailing AS
SELECT
    day, source, department, risk_tier,
    sign_ins_7d, passwordless_7d,
    if(sign_ins_7d = 0, NULL, passwordless_7d / sign_ins_7d) AS active_use_rate_7d,
    sign_ins_28d, passwordless_28d,
    if(sign_ins_28d = 0, NULL, passwordless_28d / sign_ins_28d) AS active_use_rate_28d
FROM
(
    SELECT
        g.day AS day,
        g.source AS source,
        g.department AS department,
        g.risk_tier AS risk_tier,
        sum(d.sign_ins) OVER w7 AS sign_ins_7d,
        sum(d.passwordless_sign_ins) OVER w7 AS passwordless_7d,
        sum(d.sign_ins) OVER w28 AS sign_ins_28d,
        sum(d.passwordless_sign_ins) OVER w28 AS passwordless_28d
    FROM
    (
        SELECT c.day AS day, k.source AS source, k.department AS department,
            k.risk_tier AS risk_tier
        FROM rollout_days AS c
        CROSS JOIN (SELECT DISTINCT source, department, risk_tier FROM active_use_daily) AS k
    ) AS g
    LEFT JOIN active_use_daily AS d
        ON d.day = g.day AND d.source = g.source AND d.department = g.department
        AND d.risk_tier = g.risk_tier
    WINDOW
        w7 AS (PARTITION BY g.source, g.department, g.risk_tier ORDER BY g.day
            RANGE BETWEEN 6 PRECEDING AND CURRENT ROW),
        w28 AS (PARTITION BY g.source, g.department, g.risk_tier ORDER BY g.day
            RANGE BETWEEN 27 PRECEDING AND CURRENT ROW)
)
WHERE sign_ins_28d > 0;

-- Roster users active on each rollout day, with their department and home IdP.
CREATE OR REPLACE VIEW workforce_days AS
SELECT c.day AS day, r.user AS user, r.department AS department, r.idp AS idp
FROM rollout_days AS c
CROSS JOIN
(
    SELECT
        user,
        if(department = '', 'unknown', toString(department)) AS department,
        ifNull(toString(idp), 'unknown') AS idp,
        active_from,
        terminated_on
    FROM roster FINAL
) AS r
WHERE r.active_from <= c.day AND (r.terminated_on IS NULL OR c.day < r.terminated_on);

-- Active workforce and those of it enrolled at 24:00 UTC, per day, department, home IdP.
CREATE OR REPLACE VIEW enrollment_daily AS
SELECT
    day,
    tupleElement(key, 1) AS department,
    tupleElement(key, 2) AS idp,
    count() AS active_workforce,
    countIf(enrolled) AS enrolled_users,
    if(active_workforce = 0, NULL, enrolled_users / active_workforce) AS enrollment_rate
FROM
(
    SELECT
        w.day AS day,
        e.enrolled = 1 AS enrolled,
        [(w.department, w.idp), (w.department, 'all'), ('all', w.idp), ('all', 'all')] AS keys
    FROM workforce_days AS w
    LEFT JOIN
    (
        SELECT day, user, toUInt8(1) AS enrolled
        FROM
        (
            SELECT c.day AS day, e.user AS user, e.method AS method,
                argMax(e.registered, (e.time, e.event_id)) AS registered
            FROM enrollment_changes AS e
            CROSS JOIN rollout_days AS c
            WHERE e.time < toDateTime64(c.day + 1, 6, 'UTC')
            GROUP BY c.day, e.user, e.method
        )
        GROUP BY day, user
        HAVING max(registered)
    ) AS e ON e.day = w.day AND e.user = w.user
)
ARRAY JOIN keys AS key
GROUP BY day, key;

-- Users signed in in the 7 days ending on `day`, and those whose every sign-in was passwordless.
CREATE OR REPLACE VIEW on_passwordless_daily AS
SELECT
    day,
    source,
    department,
    count() AS users_signed_in_7d,
    countIf(all_passwordless) AS users_on_passwordless_7d,
    if(users_signed_in_7d = 0, NULL, users_on_passwordless_7d / users_signed_in_7d)
        AS on_passwordless_rate_7d
FROM
(
    SELECT
        window_day AS day,
        tupleElement(key, 1) AS source,
        tupleElement(key, 2) AS department,
        user,
        min(day_passwordless) AS all_passwordless
    FROM
    (
        SELECT toDate(time) AS signed_in_on, toString(source) AS user_source,
            department AS user_department, user, min(passwordless) AS day_passwordless
        FROM sign_ins
        WHERE success
        GROUP BY signed_in_on, user_source, user_department, user
    )
    ARRAY JOIN arrayMap(n -> signed_in_on + n, range(7)) AS window_day
    ARRAY JOIN [
        (user_source, user_department), (user_source, 'all'),
        ('all', user_department), ('all', 'all')
    ] AS key
    WHERE window_day IN (SELECT day FROM rollout_days)
    GROUP BY window_day, key, user
)
GROUP BY day, source, department;

-- Each ticket under its scenario and its user's department, and under the 'all' totals.
CREATE OR REPLACE VIEW ticket_dimensions AS
SELECT t.time AS time, tupleElement(key, 1) AS scenario, tupleElement(key, 2) AS department
FROM (SELECT time, scenario, user FROM tickets FINAL) AS t
LEFT JOIN
(
    SELECT user, if(department = '', 'unknown', toString(department)) AS department
    FROM roster FINAL
) AS r ON r.user = t.user
ARRAY JOIN
    [
        (toString(t.scenario), r.department), (toString(t.scenario), 'all'),
        ('all', r.department), ('all', 'all')
    ] AS key;

-- Tickets per 1,000 users active on the Sunday, per rollout week, scenario, user's department.
CREATE OR REPLACE VIEW ticket_rate_weekly AS
WITH
    headcount AS
    (
        SELECT week_start, department, count() AS active_workforce
        FROM (SELECT week_start, department AS user_department FROM weekly_roster)
        ARRAY JOIN [user_department, 'all'] AS department
        GROUP BY week_start, department
    ),
    counted AS
    (
        SELECT toMonday(time) AS week_start, scenario, department, count() AS tickets
        FROM ticket_dimensions
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
    FROM plan_weeks AS w
    CROSS JOIN
    (
        SELECT 'all' AS scenario
        UNION DISTINCT
        SELECT toString(scenario) AS scenario FROM tickets FINAL
    ) AS s
    CROSS JOIN
    (
        SELECT department FROM headcount
        UNION DISTINCT
        SELECT department FROM counted
    ) AS d
) AS g
LEFT JOIN counted AS t
    ON t.week_start = g.week_start AND t.scenario = g.scenario AND t.department = g.department
LEFT JOIN headcount AS h ON h.week_start = g.week_start AND h.department = g.department;

-- Tickets in the 28 days ending on `day` per 1,000 users active on `day`.
CREATE OR REPLACE VIEW ticket_rate_trailing_28d AS
WITH
    headcount AS
    (
        SELECT day, department, count() AS active_workforce
        FROM (SELECT day, department AS user_department FROM workforce_days)
        ARRAY JOIN [user_department, 'all'] AS department
        GROUP BY day, department
    ),
    counted AS
    (
        SELECT toDate(time) AS day, scenario, department, count() AS tickets
        FROM ticket_dimensions
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
        FROM rollout_days AS c
        CROSS JOIN
        (
            SELECT 'all' AS scenario
            UNION DISTINCT
            SELECT toString(scenario) AS scenario FROM tickets FINAL
        ) AS s
        CROSS JOIN
        (
            SELECT department FROM headcount
            UNION DISTINCT
            SELECT department FROM counted
        ) AS d
    ) AS g
    LEFT JOIN counted AS t
        ON t.day = g.day AND t.scenario = g.scenario AND t.department = g.department
    LEFT JOIN headcount AS h ON h.day = g.day AND h.department = g.department
);

-- Tickets per 1,000 users per quarter, over the mean active workforce of its weeks.
CREATE OR REPLACE VIEW ticket_rate_quarterly AS
SELECT
    toStartOfQuarter(week_start) AS quarter_start,
    scenario,
    department,
    count() AS weeks,
    sum(tickets) AS tickets,
    avg(active_workforce) AS active_workforce,
    if(active_workforce = 0, NULL, tickets * 1000 / active_workforce) AS tickets_per_1000
FROM ticket_rate_weekly
GROUP BY quarter_start, scenario, department;

-- Users still enrolled who signed in without passwordless, while enrolled, in the last 7 days.
CREATE OR REPLACE VIEW enrolled_still_using_passwords AS
WITH
    enrolled_now AS
    (
        SELECT user, arraySort(groupArrayIf(method, registered)) AS enrolled_factors
        FROM
        (
            SELECT user, method, argMax(registered, (time, event_id)) AS registered
            FROM enrollment_changes
            GROUP BY user, method
        )
        GROUP BY user
        HAVING length(enrolled_factors) > 0
    ),
    password_sign_ins AS
    (
        SELECT sign_in_id, source, user, department, time
        FROM sign_ins
        WHERE success AND NOT passwordless
            AND time > (SELECT max(time) FROM sign_ins) - INTERVAL 7 DAY
            AND user IN (SELECT user FROM enrolled_now)
    ),
    while_enrolled AS
    (
        SELECT source, sign_in_id, any(user) AS user, any(department) AS department,
            any(time) AS time
        FROM
        (
            SELECT p.sign_in_id AS sign_in_id, p.source AS source, p.user AS user,
                p.department AS department, p.time AS time, c.method AS method,
                argMax(c.registered, (c.time, c.event_id)) AS registered
            FROM password_sign_ins AS p
            INNER JOIN enrollment_changes AS c ON c.user = p.user
            WHERE c.time <= p.time
            GROUP BY source, sign_in_id, user, department, time, method
        )
        GROUP BY source, sign_in_id
        HAVING max(registered)
    )
SELECT
    w.user AS user,
    w.department AS department,
    w.source AS source,
    count() AS password_sign_ins_7d,
    max(w.time) AS last_password_sign_in,
    any(n.enrolled_factors) AS enrolled_factors
FROM while_enrolled AS w
INNER JOIN enrolled_now AS n ON n.user = w.user
GROUP BY user, department, source;
