-- Plain PostgreSQL keeps attendance_events a regular table with a BRIN index on time,
-- which suits append-mostly, time-ordered rows as well as partitions would at city scale.
CREATE INDEX attendance_events_occurred_brin ON attendance_events USING brin (occurred_at);
