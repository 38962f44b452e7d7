-- Fleet health (issue 11): each device's derived state, its transitions, and the alerts
-- operators acknowledge. The heartbeats themselves are a time series (0026).

-- device_status keeps the newest heartbeat of each device (0001); it now also carries the
-- state the center derived: online until silent beyond the grace period or until its last
-- will arrives, online again at the next heartbeat (ingest_api/fleet/, docs/fleet.md).
ALTER TABLE device_status
    ADD COLUMN state text NOT NULL DEFAULT 'online' CHECK (state IN ('online', 'offline')),
    ADD COLUMN state_since timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN heartbeat_interval_s real CHECK (heartbeat_interval_s > 0),
    ADD COLUMN last_presence text
        CHECK (last_presence IN ('connected', 'shutdown', 'connection_lost')),
    ADD COLUMN last_presence_at timestamptz;

-- Every change of state, with why: the dashboard's history and the proof of no flapping.
CREATE TABLE device_state_log (
    id           bigserial   PRIMARY KEY,
    facility_id  text        NOT NULL,
    device_id    text        NOT NULL,
    at           timestamptz NOT NULL,
    state        text        NOT NULL CHECK (state IN ('online', 'offline')),
    reason       text        NOT NULL
);
CREATE INDEX device_state_log_device ON device_state_log (facility_id, device_id, at);

-- Alerts: opened and resolved by the fleet monitor as conditions appear and clear,
-- acknowledged by an operator. At most one open alert per device and kind.
CREATE TABLE device_alerts (
    alert_id         bigserial   PRIMARY KEY,
    facility_id      text        NOT NULL,
    device_id        text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('offline', 'backlog', 'reader_missing',
                                                          'clock_skew', 'disk_low',
                                                          'roster_behind')),
    detail           text        NOT NULL,
    opened_at        timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    resolved_at      timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)),
    CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
);
CREATE UNIQUE INDEX device_alerts_one_open ON device_alerts (facility_id, device_id, kind)
    WHERE resolved_at IS NULL;
CREATE INDEX device_alerts_device ON device_alerts (facility_id, device_id, opened_at);
