-- Attendance events as the kiosks decided them, stored exactly once per event_id.
-- occurred_at is the timestamp inside the UUIDv7 event_id, so (event_id, occurred_at) is as
-- unique as event_id alone; the time column has to be in the key for a hypertable.
CREATE TABLE attendance_events (
    event_id        uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    facility_id     text        NOT NULL,
    device_id       text        NOT NULL,
    service_date    date        NOT NULL,
    program_id      text,
    member_ref      text,
    method          text        NOT NULL,
    outcome         text        NOT NULL,
    ticket_no       integer,
    roster_version  text,
    visitor         jsonb,
    flags           text[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (event_id, occurred_at)
);

CREATE INDEX attendance_events_facility_day ON attendance_events (facility_id, service_date);
CREATE INDEX attendance_events_member ON attendance_events (member_ref, service_date)
    WHERE outcome = 'accepted';

-- Whatever failed validation, with the reason and the raw bytes, so nothing is silently lost.
CREATE TABLE dead_letters (
    id           bigserial   PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text        NOT NULL,
    reason       text        NOT NULL,
    detail       text,
    payload      bytea       NOT NULL,
    consumer     text
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);

-- The latest health report of every device (operators' fleet view).
CREATE TABLE device_status (
    facility_id   text        NOT NULL,
    device_id     text        NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    reported_at   timestamptz NOT NULL,
    outbox_pending integer    NOT NULL,
    health        jsonb       NOT NULL,
    PRIMARY KEY (facility_id, device_id)
);

-- Counters the consumer keeps (messages, events, duplicates, dead letters by reason).
CREATE TABLE ingest_metrics (
    name   text   PRIMARY KEY,
    value  bigint NOT NULL DEFAULT 0
);
