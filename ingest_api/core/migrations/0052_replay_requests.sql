-- After a restore of the central database: the operators' request that devices send again
-- every event they had confirmed since `since` (docs/reliability.md). The fleet sync carries
-- the newest request of a facility in its kiosks' signed configuration until it expires (the
-- devices' keep window); the database's unique event id turns the replay into exactly the
-- missing rows.
CREATE TABLE replay_requests (
    replay_id     text        PRIMARY KEY CHECK (replay_id ~ '^[0-9A-Za-z_-]{1,64}$'),
    facility_id   text        REFERENCES facilities (facility_id),  -- NULL: every facility
    since         timestamptz NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    requested_by  text        NOT NULL,
    reason        text        NOT NULL CHECK (length(trim(reason)) > 0),
    expires_at    timestamptz NOT NULL,
    CHECK (expires_at > requested_at)
);
CREATE INDEX replay_requests_expiry ON replay_requests (expires_at);
