-- TimescaleDB: the same dirty markers as plain PostgreSQL (0011_figures_rollup.postgres.sql),
-- so the refresh knows which (facility, month)s a refresh of the continuous aggregates changed
-- and renews exactly their generations. Statement-level triggers with transition tables on a
-- hypertable need TimescaleDB 2.18 or later (timescale/timescaledb#6901).
CREATE TABLE IF NOT EXISTS figures_dirty (
    id            bigserial PRIMARY KEY,
    facility_id   text NOT NULL,
    service_date  date NOT NULL
);

CREATE OR REPLACE FUNCTION figures_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- A person's months, when the registry changes them (indexes on a continuous aggregate are
-- created on its materialized hypertable).
CREATE INDEX IF NOT EXISTS figures_member_month_cagg_person
    ON figures_member_month_cagg (person_ref);
