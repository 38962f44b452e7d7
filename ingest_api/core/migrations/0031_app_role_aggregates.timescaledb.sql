-- TimescaleDB: a GRANT on a continuous aggregate is propagated to its materialized hypertable
-- and internal views (real-time aggregates read them), so grant the aggregates by name too.
-- Refreshing them stays with their owner: the refresh policies of 0011 do it.
GRANT SELECT ON figures_member_day_cagg, figures_member_month_cagg TO welfare_app;
GRANT SELECT, INSERT, UPDATE ON attendance_events TO welfare_app;
