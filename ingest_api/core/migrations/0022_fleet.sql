-- The fleet: which devices exist and which programs each serves, how each facility shows
-- names, and the state of roster and configuration sync (ingest_api/registry/sync.py).

-- How kiosks show a member's name: the center sends names already masked when 'masked'.
ALTER TABLE facilities ADD COLUMN name_display text NOT NULL DEFAULT 'masked'
    CHECK (name_display IN ('full', 'masked'));

-- Devices provisioned by `welfare device add` (broker credentials live in the broker's files).
CREATE TABLE devices (
    facility_id        text NOT NULL REFERENCES facilities,
    device_id          text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'),
    label              text NOT NULL DEFAULT '',
    health_interval_s  real NOT NULL DEFAULT 60 CHECK (health_interval_s BETWEEN 5 AND 3600),
    resend_after_s     real NOT NULL DEFAULT 30 CHECK (resend_after_s BETWEEN 1 AND 3600),
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility_id, device_id)
);

CREATE TABLE device_programs (
    facility_id  text NOT NULL,
    device_id    text NOT NULL,
    program_id   text NOT NULL REFERENCES programs ON DELETE CASCADE,
    PRIMARY KEY (facility_id, device_id, program_id),
    FOREIGN KEY (facility_id, device_id) REFERENCES devices ON DELETE CASCADE
);
CREATE INDEX device_programs_program ON device_programs (program_id);

-- What each device last reported on .../sync (written by the ingest consumer, any device
-- with broker credentials; `answered` once the fleet sync has dealt with it).
CREATE TABLE device_sync_reports (
    facility_id     text        NOT NULL,
    device_id       text        NOT NULL,
    roster_version  text,
    roster_hash     text,
    config_version  text,
    key_ids         text[]      NOT NULL DEFAULT '{}',
    reason          text        NOT NULL,
    detail          text,
    sent_at         timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    answered        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (facility_id, device_id)
);
CREATE INDEX device_sync_reports_pending ON device_sync_reports (received_at)
    WHERE NOT answered;

-- What the center built for and sent to each registered device.
CREATE TABLE device_roster_state (
    facility_id     text NOT NULL,
    device_id       text NOT NULL,
    latest_version  text,
    latest_hash     text,
    built_at        timestamptz,
    sent_version    text,
    sent_at         timestamptz,
    config_version  text,
    config_sent_at  timestamptz,
    PRIMARY KEY (facility_id, device_id),
    FOREIGN KEY (facility_id, device_id) REFERENCES devices ON DELETE CASCADE
);

-- Per-member digests of the versions a device may still hold (its latest, the last sent and
-- the last it reported), so a delta can be made from any of them; older ones are pruned.
CREATE TABLE roster_contents (
    facility_id   text        NOT NULL,
    device_id     text        NOT NULL,
    version       text        NOT NULL,
    content_hash  text        NOT NULL,
    digests       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility_id, device_id, version),
    FOREIGN KEY (facility_id, device_id) REFERENCES devices ON DELETE CASCADE
);

-- Registry changes that may change a kiosk's roster or configuration mark their facility
-- here, in the same transaction (statement-level triggers, one marker per facility and
-- statement); the fleet sync rebuilds that facility's rosters and deletes the markers it saw.
CREATE TABLE fleet_dirty (
    id           bigserial PRIMARY KEY,
    facility_id  text NOT NULL
);

CREATE FUNCTION fleet_dirty_by_facility() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO fleet_dirty (facility_id) SELECT DISTINCT facility_id FROM new_rows;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO fleet_dirty (facility_id) SELECT DISTINCT facility_id FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION fleet_dirty_by_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO fleet_dirty (facility_id)
        SELECT DISTINCT m.facility_id FROM new_rows n JOIN members m USING (member_ref);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO fleet_dirty (facility_id)
        SELECT DISTINCT m.facility_id FROM old_rows o JOIN members m USING (member_ref);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION fleet_dirty_by_program() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO fleet_dirty (facility_id)
        SELECT DISTINCT p.facility_id FROM new_rows n JOIN programs p USING (program_id);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO fleet_dirty (facility_id)
        SELECT DISTINCT p.facility_id FROM old_rows o JOIN programs p USING (program_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER facilities_fleet_ins AFTER INSERT ON facilities
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER facilities_fleet_upd AFTER UPDATE ON facilities
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER facilities_fleet_del AFTER DELETE ON facilities
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER programs_fleet_ins AFTER INSERT ON programs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER programs_fleet_upd AFTER UPDATE ON programs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER programs_fleet_del AFTER DELETE ON programs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER members_fleet_ins AFTER INSERT ON members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER members_fleet_upd AFTER UPDATE ON members
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER members_fleet_del AFTER DELETE ON members
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER devices_fleet_ins AFTER INSERT ON devices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER devices_fleet_upd AFTER UPDATE ON devices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER devices_fleet_del AFTER DELETE ON devices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER device_programs_fleet_ins AFTER INSERT ON device_programs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER device_programs_fleet_upd AFTER UPDATE ON device_programs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER device_programs_fleet_del AFTER DELETE ON device_programs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER schedule_exceptions_fleet_ins AFTER INSERT ON schedule_exceptions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER schedule_exceptions_fleet_upd AFTER UPDATE ON schedule_exceptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER schedule_exceptions_fleet_del AFTER DELETE ON schedule_exceptions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER facility_keys_fleet_ins AFTER INSERT ON facility_keys
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER facility_keys_fleet_upd AFTER UPDATE ON facility_keys
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER facility_keys_fleet_del AFTER DELETE ON facility_keys
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER member_credentials_fleet_ins AFTER INSERT ON member_credentials
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_member();
CREATE TRIGGER member_credentials_fleet_upd AFTER UPDATE ON member_credentials
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_member();
CREATE TRIGGER member_credentials_fleet_del AFTER DELETE ON member_credentials
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_member();
CREATE TRIGGER enrolments_fleet_ins AFTER INSERT ON enrolments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_member();
CREATE TRIGGER enrolments_fleet_upd AFTER UPDATE ON enrolments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_member();
CREATE TRIGGER enrolments_fleet_del AFTER DELETE ON enrolments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_member();
CREATE TRIGGER program_sessions_fleet_ins AFTER INSERT ON program_sessions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_program();
CREATE TRIGGER program_sessions_fleet_upd AFTER UPDATE ON program_sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_program();
CREATE TRIGGER program_sessions_fleet_del AFTER DELETE ON program_sessions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_program();
