-- On TimescaleDB the events table becomes a hypertable (weekly chunks).
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('attendance_events', 'occurred_at',
                         chunk_time_interval => INTERVAL '7 days', migrate_data => true);
