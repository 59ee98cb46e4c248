-- enrollment_state (each user's factors now, kept by a Faust table in arrival order) had no
-- reader and could disagree with the event-time order the views use: the views derive who is
-- enrolled from enrollment_events, in event time.
DROP TABLE IF EXISTS enrollment_state;
