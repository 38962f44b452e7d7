-- The figures cube (ingest_api/figures/cube.py): every process keeps the month rollup in memory
-- as exact person sets (roaring bitmaps) per (facility, month) and reloads a month only when
-- its generation here changes. Only the rollup refresh writes generations, in the transaction
-- that recounts the month, so a generation always names a committed state of the rollup.

-- Tells one database from another (and from an earlier one of the same name) in a process's
-- cache.
CREATE TABLE figures_epoch (
    epoch  uuid PRIMARY KEY DEFAULT gen_random_uuid()
);
INSERT INTO figures_epoch DEFAULT VALUES;

CREATE SEQUENCE figures_generation_seq;
CREATE TABLE figures_month_generation (
    facility_id  text    NOT NULL,
    month        date    NOT NULL,
    generation   bigint  NOT NULL,
    PRIMARY KEY (facility_id, month)
);
CREATE INDEX figures_month_generation_month ON figures_month_generation (month);

-- Whatever a person's figures are grouped by (gender, birth date, neighbourhood, the city-wide
-- person id, an enrolment's fee type) lives in the registry: a change there marks the person
-- dirty, and the next refresh renews the generation of every month the person appears in.
CREATE TABLE figures_dirty_refs (
    id          bigserial PRIMARY KEY,
    person_ref  text NOT NULL
);

CREATE FUNCTION figures_mark_ref() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('INSERT INTO figures_dirty_refs (person_ref) SELECT DISTINCT %I FROM new_rows',
                       TG_ARGV[0]);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        EXECUTE format('INSERT INTO figures_dirty_refs (person_ref) SELECT DISTINCT %I FROM old_rows',
                       TG_ARGV[0]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER members_figures_ins AFTER INSERT ON members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('member_ref');
CREATE TRIGGER members_figures_upd AFTER UPDATE ON members
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('member_ref');
CREATE TRIGGER members_figures_del AFTER DELETE ON members
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('member_ref');
CREATE TRIGGER visitors_figures_ins AFTER INSERT ON visitors
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('visitor_code');
CREATE TRIGGER visitors_figures_upd AFTER UPDATE ON visitors
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('visitor_code');
CREATE TRIGGER visitors_figures_del AFTER DELETE ON visitors
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('visitor_code');
CREATE TRIGGER contacts_figures_ins AFTER INSERT ON community_contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('contact_code');
CREATE TRIGGER contacts_figures_upd AFTER UPDATE ON community_contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('contact_code');
CREATE TRIGGER contacts_figures_del AFTER DELETE ON community_contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('contact_code');
CREATE TRIGGER enrolments_figures_ins AFTER INSERT ON enrolments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('member_ref');
CREATE TRIGGER enrolments_figures_upd AFTER UPDATE ON enrolments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('member_ref');
CREATE TRIGGER enrolments_figures_del AFTER DELETE ON enrolments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION figures_mark_ref('member_ref');

-- The month rollup counted from the raw rows in one pass (same columns and rows as before: a
-- person's days are the bits of the OR of their days, attendances every accepted row), so the
-- raw comparison of the benchmark reads 10 million events in one aggregation.
CREATE OR REPLACE VIEW figures_raw_member_month AS
SELECT facility_id, month, program_id, person_ref,
       bit_count(bit_or(bit)::bit(32))::integer AS days, count(*)::integer AS attendances,
       bit_or(bit)::integer AS day_mask
FROM (
    SELECT facility_id, date_trunc('month', service_date::timestamp)::date AS month, program_id,
           member_ref AS person_ref, 1 << (extract(day FROM service_date)::integer - 1) AS bit
    FROM attendance_events
    WHERE outcome = 'accepted' AND program_id IS NOT NULL AND member_ref IS NOT NULL
    UNION ALL
    SELECT facility_id, date_trunc('month', service_date::timestamp)::date, program_id,
           contact_code, 1 << (extract(day FROM service_date)::integer - 1)
    FROM community_contacts
    WHERE program_id IS NOT NULL
) AS s
GROUP BY facility_id, month, program_id, person_ref;

-- Months already in the rollup get their first generation now.
INSERT INTO figures_month_generation (facility_id, month, generation)
SELECT facility_id, month, nextval('figures_generation_seq')
FROM (SELECT DISTINCT facility_id, month FROM figures_member_month) AS m;
