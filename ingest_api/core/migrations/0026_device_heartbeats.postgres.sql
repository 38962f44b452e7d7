-- Every heartbeat, kept as a time series for the dashboard's history and Grafana.
-- Plain PostgreSQL: range-partitioned by day on the center's receive time; the fleet monitor
-- creates the coming days' partitions and drops the days past the retention
-- (WELFARE_FLEET__HEARTBEAT_RETENTION_DAYS, ingest_api/fleet/series.py). The DEFAULT partition
-- catches a heartbeat whose day has no partition yet (the monitor was not running), so
-- nothing is ever refused; the monitor moves such rows into their day when it creates it.
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
) PARTITION BY RANGE (received_at);
CREATE TABLE device_heartbeats_default PARTITION OF device_heartbeats DEFAULT;
CREATE INDEX device_heartbeats_device ON device_heartbeats (facility_id, device_id, received_at);
