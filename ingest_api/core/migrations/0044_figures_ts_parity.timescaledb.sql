-- migrate: no-transaction
-- TimescaleDB: the figures move at a refresh and only then, exactly as on plain PostgreSQL.
--
-- 1. COPY into a hypertable that has a statement trigger with a transition table (our dirty
--    markers) takes TimescaleDB's row-by-row copy path, which records no continuous-aggregate
--    invalidation (seen on 2.28.3; since 2.23 invalidations are recorded by the executor, and
--    that path lacks the call): a bulk load or a kiosk upload written with COPY would never
--    reach the aggregates. The markers therefore carry the span of occurred_at of their rows,
--    and the refresh re-materializes exactly those spans (refresh_continuous_aggregate with
--    force), whatever the aggregate's own invalidation log holds.
ALTER TABLE figures_dirty
    ADD COLUMN IF NOT EXISTS occurred_lo timestamptz,
    ADD COLUMN IF NOT EXISTS occurred_hi timestamptz
;
CREATE OR REPLACE FUNCTION figures_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Nested: new_rows exists only for INSERT and UPDATE statements, old_rows for DELETE and
    -- UPDATE; contacts are not in the aggregates, so their markers need no span.
    IF TG_TABLE_NAME = 'attendance_events' THEN
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO figures_dirty (facility_id, service_date, occurred_lo, occurred_hi)
            SELECT facility_id, service_date, min(occurred_at), max(occurred_at)
            FROM new_rows GROUP BY facility_id, service_date;
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            INSERT INTO figures_dirty (facility_id, service_date, occurred_lo, occurred_hi)
            SELECT facility_id, service_date, min(occurred_at), max(occurred_at)
            FROM old_rows GROUP BY facility_id, service_date;
        END IF;
        RETURN NULL;
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
END $$
;
-- Rows already stored may have come by COPY and never reached the aggregates: the first refresh
-- re-materializes them all (as plain PostgreSQL's first refresh counted its existing rows).
INSERT INTO figures_dirty (facility_id, service_date, occurred_lo, occurred_hi)
SELECT facility_id, service_date, min(occurred_at), max(occurred_at)
FROM attendance_events
GROUP BY facility_id, service_date
;
-- 2. Real-time aggregates showed un-refreshed rows to some questions (a span of days read the
--    day aggregate live) and not to others (the cached months wait for a new generation), and
--    a question asked before a refresh differed from plain PostgreSQL's. Materialized only:
--    every figure is the refreshed state.
ALTER MATERIALIZED VIEW figures_member_day_cagg SET (timescaledb.materialized_only = true)
;
ALTER MATERIALIZED VIEW figures_member_month_cagg SET (timescaledb.materialized_only = true)
;
-- 3. Community contacts were read live by the views; they now enter the rollup at a refresh as
--    on plain PostgreSQL: the refresh recounts the contacts of its marked (facility, day)s here.
CREATE TABLE IF NOT EXISTS figures_contact_day (
    facility_id   text    NOT NULL,
    service_date  date    NOT NULL,
    program_id    text    NOT NULL,
    person_ref    text    NOT NULL,
    attendances   integer NOT NULL CHECK (attendances > 0),
    PRIMARY KEY (facility_id, service_date, program_id, person_ref)
)
;
INSERT INTO figures_contact_day (facility_id, service_date, program_id, person_ref, attendances)
SELECT facility_id, service_date, program_id, contact_code, count(*)::integer
FROM community_contacts
WHERE program_id IS NOT NULL
GROUP BY facility_id, service_date, program_id, contact_code
ON CONFLICT DO NOTHING
;
CREATE OR REPLACE VIEW figures_member_day AS
SELECT facility_id, service_date, program_id, person_ref, sum(attendances)::integer AS attendances
FROM (
    SELECT facility_id, service_date, program_id, person_ref, attendances
    FROM figures_member_day_cagg
    UNION ALL
    SELECT facility_id, service_date, program_id, person_ref, attendances
    FROM figures_contact_day
) AS s
GROUP BY facility_id, service_date, program_id, person_ref
;
CREATE OR REPLACE VIEW figures_member_month AS
SELECT facility_id, month, program_id, person_ref,
       bit_count(bit_or(day_mask)::bit(32))::integer AS days,
       sum(attendances)::integer AS attendances,
       bit_or(day_mask)::integer AS day_mask
FROM (
    SELECT facility_id, month, program_id, person_ref, attendances, day_mask
    FROM figures_member_month_cagg
    UNION ALL
    SELECT facility_id, date_trunc('month', service_date::timestamp)::date, program_id,
           person_ref, attendances, 1 << (extract(day FROM service_date)::integer - 1)
    FROM figures_contact_day
) AS s
GROUP BY facility_id, month, program_id, person_ref
