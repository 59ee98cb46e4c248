-- Schema drift: factor and method strings no mapping knows (classified `unknown`, never
-- dropped), per source and string, so someone adds the mapping (docs/sources/, the parser).
CREATE OR REPLACE VIEW unknown_methods AS
SELECT source, raw_method, count() AS events, min(time) AS first_seen, max(time) AS last_seen
FROM
(
    SELECT toString(source) AS source, raw_factors[i] AS raw_method, time
    FROM auth_events FINAL
    ARRAY JOIN arrayEnumerate(factors) AS i
    WHERE factors[i] = 'unknown'
    UNION ALL
    SELECT toString(source) AS source, ifNull(raw_method, '') AS raw_method, time
    FROM enrollment_events FINAL
    WHERE method = 'unknown'
)
GROUP BY source, raw_method;
