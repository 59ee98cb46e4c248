-- Views the Grafana dashboards and alert rules share (grafana/, built by pipeline/grafana/).

-- The plan's phase in force on each rollout day, and the days left in it after that day
-- (NULL in the open-ended last phase).
CREATE OR REPLACE VIEW phase_days AS
SELECT
    c.day AS day,
    p.phase AS phase,
    p.name AS name,
    if(p.end IS NULL, NULL, dateDiff('day', c.day, assumeNotNull(p.end)) - 1) AS days_left
FROM rollout_days AS c
CROSS JOIN (SELECT phase, name, start, end FROM plan_phases FINAL) AS p
WHERE p.start <= c.day AND (p.end IS NULL OR c.day < p.end);

-- The plan's target for each metric on each rollout day (days whose phase sets one).
CREATE OR REPLACE VIEW daily_targets AS
SELECT d.day AS day, d.phase AS phase, t.metric AS metric, t.target AS target
FROM phase_days AS d
INNER JOIN (SELECT phase, metric, target FROM plan_targets FINAL) AS t ON t.phase = d.phase;

-- Every stored event with its source, event time and arrival time: the pipeline-health
-- panels and the stale-data alert read it.
CREATE OR REPLACE VIEW arrivals AS
SELECT toString(source) AS source, time, ingested_at FROM auth_events
UNION ALL
SELECT toString(source) AS source, time, ingested_at FROM enrollment_events
UNION ALL
SELECT 'tickets' AS source, time, ingested_at FROM tickets;
