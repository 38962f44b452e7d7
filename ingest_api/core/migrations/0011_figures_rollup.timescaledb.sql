-- migrate: no-transaction
-- TimescaleDB: the per day × program × person rollup is a continuous aggregate over the
-- attendance hypertable (real-time: un-materialized recent rows are read from the raw table).
-- The bucket is the UTC day of occurred_at (a continuous aggregate must bucket the time
-- column); service_date is a grouping column, and figures_member_day below re-adds buckets
-- per service_date, so both paths expose the same relation with the same rows.
CREATE MATERIALIZED VIEW IF NOT EXISTS figures_member_day_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', occurred_at) AS bucket,
       facility_id,
       service_date,
       program_id,
       member_ref AS person_ref,
       count(*) AS attendances
FROM attendance_events
WHERE outcome = 'accepted' AND program_id IS NOT NULL AND member_ref IS NOT NULL
GROUP BY time_bucket(INTERVAL '1 day', occurred_at), facility_id, service_date, program_id,
         member_ref
WITH NO DATA
;
SELECT add_continuous_aggregate_policy('figures_member_day_cagg',
    start_offset => NULL,
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '5 minutes',
    if_not_exists => true)
;
CREATE OR REPLACE VIEW figures_member_day AS
SELECT facility_id, service_date, program_id, person_ref, sum(attendances)::integer AS attendances
FROM (
    SELECT facility_id, service_date, program_id, person_ref, attendances
    FROM figures_member_day_cagg
    UNION ALL
    SELECT facility_id, service_date, program_id, contact_code, 1
    FROM community_contacts
    WHERE program_id IS NOT NULL
) AS s
GROUP BY facility_id, service_date, program_id, person_ref
;
-- Hierarchical aggregate: month × program × person with the days as a bit mask. A service day
-- split over two UTC-day buckets sets the same bit twice, and OR is idempotent, so the mask and
-- its bit count (days) are exact; attendances add up exactly.
CREATE MATERIALIZED VIEW IF NOT EXISTS figures_member_month_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 month', bucket) AS mbucket,
       facility_id,
       date_trunc('month', service_date::timestamp)::date AS month,
       program_id,
       person_ref,
       sum(attendances) AS attendances,
       bit_or(1 << (extract(day FROM service_date)::integer - 1)) AS day_mask
FROM figures_member_day_cagg
GROUP BY time_bucket(INTERVAL '1 month', bucket), facility_id,
         date_trunc('month', service_date::timestamp)::date, program_id, person_ref
WITH NO DATA
;
SELECT add_continuous_aggregate_policy('figures_member_month_cagg',
    start_offset => NULL,
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '5 minutes',
    if_not_exists => true)
;
-- Same columns as the plain-PostgreSQL table. Rows of one service month may sit in two UTC
-- month buckets (the first Korean morning of a month is still the previous month in UTC), so
-- they are merged here with the same exact operations.
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
           contact_code, 1, 1 << (extract(day FROM service_date)::integer - 1)
    FROM community_contacts
    WHERE program_id IS NOT NULL
) AS s
GROUP BY facility_id, month, program_id, person_ref
;
