-- Plain PostgreSQL: an ingest batch's accepted attendances are kept as an aggregated delta
-- (facility, day, program, person, attendances) by the same statement trigger that marked days
-- dirty, so the refresh adds a few thousand rows to the rollups instead of recounting a whole
-- busy day from the raw rows every few seconds. Large statements (bulk loads, more than 50,000
-- rows), updates, deletes and community contacts still mark their days dirty: those days are
-- recounted from the raw rows, exactly as before. Both end in the same exact rollup.
CREATE TABLE figures_delta (
    id            bigserial PRIMARY KEY,
    facility_id   text    NOT NULL,
    service_date  date    NOT NULL,
    program_id    text    NOT NULL,
    person_ref    text    NOT NULL,
    attendances   integer NOT NULL CHECK (attendances > 0)
);

CREATE OR REPLACE FUNCTION figures_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Nested: new_rows exists only for INSERT and UPDATE statements.
    IF TG_OP = 'INSERT' AND TG_TABLE_NAME = 'attendance_events' THEN
        IF (SELECT count(*) FROM new_rows) <= 50000 THEN
            INSERT INTO figures_delta
                (facility_id, service_date, program_id, person_ref, attendances)
            SELECT facility_id, service_date, program_id, member_ref, count(*)
            FROM new_rows
            WHERE outcome = 'accepted' AND program_id IS NOT NULL AND member_ref IS NOT NULL
            GROUP BY facility_id, service_date, program_id, member_ref;
            RETURN NULL;
        END IF;
    END IF;
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
