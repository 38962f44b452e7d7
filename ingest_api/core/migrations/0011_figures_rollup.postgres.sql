-- Plain PostgreSQL: the per day × program × person rollup is a table, refreshed incrementally.
-- Every change to the raw rows marks its (facility, day) dirty; a refresh recounts exactly those
-- days from the raw rows, so the rollup is always an exact recount, never an estimate.
CREATE TABLE figures_member_day (
    facility_id   text    NOT NULL,
    service_date  date    NOT NULL,
    program_id    text    NOT NULL,
    person_ref    text    NOT NULL,
    attendances   integer NOT NULL CHECK (attendances > 0),
    PRIMARY KEY (facility_id, service_date, program_id, person_ref)
);
CREATE INDEX figures_member_day_date ON figures_member_day (service_date, program_id);

-- The watermark: markers up to the last refresh are gone; newer ones are pending.
CREATE TABLE figures_dirty (
    id            bigserial PRIMARY KEY,
    facility_id   text NOT NULL,
    service_date  date NOT NULL
);

CREATE TABLE figures_refresh_state (
    name          text PRIMARY KEY,
    refreshed_at  timestamptz NOT NULL,
    last_dirty_id bigint NOT NULL,
    days          integer NOT NULL
);

-- Statement-level triggers with transition tables: one marker per (facility, day) per statement.
CREATE FUNCTION figures_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO figures_dirty (facility_id, service_date)
        SELECT DISTINCT facility_id, service_date FROM new_rows;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO figures_dirty (facility_id, service_date)
        SELECT DISTINCT facility_id, service_date FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER attendance_events_dirty_ins AFTER INSERT ON attendance_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_dirty();
CREATE TRIGGER attendance_events_dirty_upd AFTER UPDATE ON attendance_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_dirty();
CREATE TRIGGER attendance_events_dirty_del AFTER DELETE ON attendance_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_dirty();

CREATE TRIGGER community_contacts_dirty_ins AFTER INSERT ON community_contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_dirty();
CREATE TRIGGER community_contacts_dirty_upd AFTER UPDATE ON community_contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_dirty();
CREATE TRIGGER community_contacts_dirty_del AFTER DELETE ON community_contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_dirty();

-- The query source: one row per month × program × person, with the days attended as a bit mask
-- (bit d-1 = day d), so unique persons, person-visits and session-day cases of any months and
-- any grouping are exact: persons are counted distinct, days are OR-ed per program and month.
CREATE TABLE figures_member_month (
    facility_id  text    NOT NULL,
    month        date    NOT NULL,
    program_id   text    NOT NULL,
    person_ref   text    NOT NULL,
    days         integer NOT NULL CHECK (days > 0),
    attendances  integer NOT NULL CHECK (attendances > 0),
    day_mask     integer NOT NULL,
    PRIMARY KEY (facility_id, month, program_id, person_ref)
);
CREATE INDEX figures_member_month_month ON figures_member_month (month, program_id);

-- Rows stored before this migration are counted at the first refresh.
INSERT INTO figures_dirty (facility_id, service_date)
SELECT DISTINCT facility_id, service_date FROM attendance_events;
