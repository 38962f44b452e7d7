-- Every roster version the center issued to a device; an event decided with a roster the
-- center never issued to that device is kept but flagged `roster_unknown` for review.
CREATE TABLE device_rosters (
    facility_id  text        NOT NULL,
    device_id    text        NOT NULL,
    version      text        NOT NULL,
    issued_at    timestamptz NOT NULL,
    members      integer     NOT NULL,
    PRIMARY KEY (facility_id, device_id, version)
);
