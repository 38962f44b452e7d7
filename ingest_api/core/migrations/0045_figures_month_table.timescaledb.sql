-- migrate: no-transaction
-- TimescaleDB: the month rollup becomes a table, as on plain PostgreSQL, recounted by the
-- refresh from the day aggregate for the persons of the marked days only. The hierarchical
-- month aggregate recounted a whole month bucket at every refresh (1.4 s for a month of 80,000
-- events on 2 shared cores, ten times more at 10 million events a year) and, on 2.28, kept a
-- bucket's old sum after its days were re-materialized unless forced (migration 0044).
DROP VIEW IF EXISTS figures_member_month
;
DROP MATERIALIZED VIEW IF EXISTS figures_member_month_cagg
;
CREATE TABLE IF NOT EXISTS figures_member_month (
    facility_id  text    NOT NULL,
    month        date    NOT NULL,
    program_id   text    NOT NULL,
    person_ref   text    NOT NULL,
    days         integer NOT NULL CHECK (days > 0),
    attendances  integer NOT NULL CHECK (attendances > 0),
    day_mask     integer NOT NULL,
    PRIMARY KEY (facility_id, month, program_id, person_ref)
)
;
CREATE INDEX IF NOT EXISTS figures_member_month_month ON figures_member_month (month, program_id)
;
CREATE INDEX IF NOT EXISTS figures_member_month_person ON figures_member_month (person_ref)
;
-- Every month with rows is recounted at the first refresh: mark each (facility, day) (the
-- spans make the refresh re-materialize the day aggregate first, as for rows of 0044).
INSERT INTO figures_dirty (facility_id, service_date, occurred_lo, occurred_hi)
SELECT facility_id, service_date, min(occurred_at), max(occurred_at)
FROM attendance_events
GROUP BY facility_id, service_date
;
INSERT INTO figures_dirty (facility_id, service_date)
SELECT DISTINCT facility_id, service_date FROM community_contacts
