-- Every heartbeat, kept as a time series for the dashboard's history and Grafana.
-- TimescaleDB: a hypertable with daily chunks on the center's receive time and a retention
-- policy that drops whole chunks past 30 days; the fleet monitor aligns the policy with
-- WELFARE_FLEET__HEARTBEAT_RETENTION_DAYS when it starts (ingest_api/fleet/series.py).
CREATE TABLE device_heartbeats (
    received_at       timestamptz      NOT NULL,
    facility_id       text             NOT NULL,
    device_id         text             NOT NULL,
    reported_at       timestamptz      NOT NULL,
    software_version  text             NOT NULL,
    uptime_s          double precision NOT NULL,
    outbox_pending    integer          NOT NULL,
    oldest_pending_at timestamptz,
    last_ack_at       timestamptz,
    roster_version    text,
    disk_free_mb      real,
    disk_total_mb     real,
    cpu_temp_c        real,
    clock_offset_s    real,
    -- reported_at - received_at: the device clock's offset plus the delivery delay
    arrival_skew_s    real             NOT NULL,
    readers_down      integer          NOT NULL DEFAULT 0
);
SELECT create_hypertable('device_heartbeats', 'received_at',
                         chunk_time_interval => INTERVAL '1 day');
CREATE INDEX device_heartbeats_device ON device_heartbeats (facility_id, device_id, received_at);
SELECT add_retention_policy('device_heartbeats', drop_after => INTERVAL '30 days',
                            if_not_exists => true);
