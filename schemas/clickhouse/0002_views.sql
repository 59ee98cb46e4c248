-- Views with plain names for dashboards and ad-hoc SQL. Metric definitions: README.md,
-- "Metrics: exact definitions". Weeks are ISO weeks (Monday 00:00 UTC); days are UTC.

-- The app risk tier of the rollout plan: high_risk, legacy, or standard.
CREATE OR REPLACE VIEW app_risk AS
SELECT app, tier FROM app_tiers FINAL;

-- One row per sign-in, merged from its parts (pipeline/aggregate/signins.py), with the
-- user's department from the roster and the app's risk tier from the plan.
CREATE OR REPLACE VIEW sign_ins AS
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
    multiIf(
        s.app IN (SELECT app FROM app_risk WHERE tier = 'high_risk'), 'high_risk',
        s.app IN (SELECT app FROM app_risk WHERE tier = 'legacy'), 'legacy',
        'standard'
    ) AS risk_tier
FROM
(
    SELECT
        source,
        sign_in_id,
        max(user) AS user,
        min(time) AS time,
        arraySort(groupUniqArrayArray(factors)) AS factors,
        arraySort(groupUniqArrayArray(raw_factors)) AS raw_factors,
        max(has_password) = 0 AND max(has_passwordless_factor) = 1 AS passwordless,
        tupleElement(max(last_outcome), 'failed') = 0 AS success,
        nullIf(tupleElement(min(first_app), 'app'), '') AS app,
        length(groupUniqArrayArray(step_ids)) AS steps
    FROM sign_in_parts
    GROUP BY source, sign_in_id
    HAVING steps > 0
) AS s
LEFT JOIN (SELECT user, department FROM roster FINAL) AS r ON s.user = r.user;

-- The rollout's weeks, from the plan's first Monday to the week of the latest event.
CREATE OR REPLACE VIEW plan_weeks AS
SELECT
    toDate(p.start + 7 * n) AS week_start,
    toUInt16(n + 1) AS rollout_week
FROM (SELECT start FROM plan_phases FINAL WHERE phase = 1) AS p
ARRAY JOIN range(toUInt32(greatest(0, intDiv(dateDiff('day', p.start, toDate((
    SELECT greatest(
        (SELECT max(time) FROM sign_in_parts),
        (SELECT max(time) FROM enrollment_events),
        (SELECT max(time) FROM tickets))
))), 7) + 1))) AS n;

-- Active workforce of each week: roster users active on its Sunday.
CREATE OR REPLACE VIEW weekly_roster AS
SELECT
    w.week_start AS week_start,
    r.user AS user,
    if(r.department = '', 'unknown', toString(r.department)) AS department
FROM plan_weeks AS w
CROSS JOIN (SELECT user, department, active_from, terminated_on FROM roster FINAL) AS r
WHERE r.active_from <= w.week_start + 6
    AND (r.terminated_on IS NULL OR w.week_start + 6 < r.terminated_on);

-- Active workforce of each week (0 for a week nobody was active).
CREATE OR REPLACE VIEW weekly_workforce AS
SELECT w.week_start AS week_start, a.active_workforce AS active_workforce
FROM plan_weeks AS w
LEFT JOIN (SELECT week_start, count() AS active_workforce FROM weekly_roster GROUP BY week_start)
    AS a ON a.week_start = w.week_start;

-- Each (user, factor) registration state change; a removal without a method (Okta
-- "reset all factors") removes every factor the user had.
CREATE OR REPLACE VIEW enrollment_changes AS
WITH changes AS
(
    SELECT user, method, action = 'registered' AS registered, time, event_id
    FROM enrollment_events FINAL
    WHERE passwordless_factor OR method IS NULL
)
SELECT user, assumeNotNull(method) AS method, registered, time, event_id
FROM changes WHERE method IS NOT NULL
UNION ALL
SELECT c.user AS user, m.method AS method, false AS registered, c.time AS time, c.event_id AS event_id
FROM (SELECT * FROM changes WHERE method IS NULL) AS c
INNER JOIN (SELECT DISTINCT user, assumeNotNull(method) AS method FROM changes WHERE method IS NOT NULL) AS m
    ON c.user = m.user;

-- Users of the week's active workforce with at least one passwordless-capable factor
-- registered at the end of the week (Sunday 24:00 UTC).
CREATE OR REPLACE VIEW weekly_enrollment AS
SELECT week_start, uniqExactIf(user, registered) AS enrolled_users
FROM
(
    SELECT w.week_start AS week_start, c.user AS user, c.method AS method,
        argMax(c.registered, (c.time, c.event_id)) AS registered
    FROM enrollment_changes AS c
    CROSS JOIN plan_weeks AS w
    WHERE c.time < toDateTime64(w.week_start + 7, 6, 'UTC')
    GROUP BY w.week_start, c.user, c.method
) AS states
INNER JOIN (SELECT week_start, user FROM weekly_roster) AS active USING (week_start, user)
GROUP BY week_start;

-- Successful sign-ins per week and owning IdP.
CREATE OR REPLACE VIEW weekly_sign_ins AS
SELECT
    toMonday(time) AS week_start,
    source,
    count() AS sign_ins,
    countIf(passwordless) AS passwordless_sign_ins,
    countIf(risk_tier = 'high_risk') AS high_risk_sign_ins,
    countIf(risk_tier = 'high_risk' AND passwordless) AS high_risk_passwordless_sign_ins
FROM sign_ins
WHERE success
GROUP BY week_start, source;

-- Users with a successful sign-in in the week, and those whose every one was passwordless.
CREATE OR REPLACE VIEW weekly_users AS
SELECT week_start, count() AS users_signed_in, countIf(all_passwordless) AS users_on_passwordless
FROM
(
    SELECT toMonday(time) AS week_start, user, min(passwordless) AS all_passwordless
    FROM sign_ins
    WHERE success
    GROUP BY week_start, user
)
GROUP BY week_start;

-- Tickets opened per week and runbook scenario.
CREATE OR REPLACE VIEW weekly_tickets AS
SELECT toMonday(time) AS week_start, scenario, count() AS tickets
FROM tickets FINAL
GROUP BY week_start, scenario;

-- The three metrics and their parts, one row per rollout week.
CREATE OR REPLACE VIEW weekly_metrics AS
SELECT
    w.week_start AS week_start,
    w.rollout_week AS rollout_week,
    ifNull((SELECT any(phase) FROM plan_phases FINAL
        WHERE first_week <= w.rollout_week AND (last_week IS NULL OR w.rollout_week <= last_week)), 0) AS phase,
    f.active_workforce AS active_workforce,
    e.enrolled_users AS enrolled_users,
    s.sign_ins AS sign_ins,
    s.passwordless_sign_ins AS passwordless_sign_ins,
    s.high_risk_sign_ins AS high_risk_sign_ins,
    s.high_risk_passwordless_sign_ins AS high_risk_passwordless_sign_ins,
    u.users_signed_in AS users_signed_in,
    u.users_on_passwordless AS users_on_passwordless,
    t.tickets AS tickets,
    if(active_workforce = 0, NULL, enrolled_users / active_workforce) AS enrollment_rate,
    if(sign_ins = 0, NULL, passwordless_sign_ins / sign_ins) AS active_use_rate,
    if(users_signed_in = 0, NULL, users_on_passwordless / users_signed_in) AS on_passwordless_rate,
    if(high_risk_sign_ins = 0, NULL, high_risk_passwordless_sign_ins / high_risk_sign_ins)
        AS high_risk_active_use_rate,
    if(active_workforce = 0, NULL, tickets * 1000 / active_workforce) AS ticket_rate_per_1000
FROM plan_weeks AS w
LEFT JOIN weekly_workforce AS f ON f.week_start = w.week_start
LEFT JOIN weekly_enrollment AS e ON e.week_start = w.week_start
LEFT JOIN
(
    SELECT week_start, sum(sign_ins) AS sign_ins, sum(passwordless_sign_ins) AS passwordless_sign_ins,
        sum(high_risk_sign_ins) AS high_risk_sign_ins,
        sum(high_risk_passwordless_sign_ins) AS high_risk_passwordless_sign_ins
    FROM weekly_sign_ins GROUP BY week_start
) AS s ON s.week_start = w.week_start
LEFT JOIN weekly_users AS u ON u.week_start = w.week_start
LEFT JOIN (SELECT week_start, sum(tickets) AS tickets FROM weekly_tickets GROUP BY week_start) AS t
    ON t.week_start = w.week_start;

-- Each week's metrics against its phase's targets (plan_targets, from the plan file).
CREATE OR REPLACE VIEW phase_gates AS
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
FROM weekly_metrics AS m
INNER JOIN (SELECT phase, metric, target FROM plan_targets FINAL) AS t ON t.phase = m.phase;
