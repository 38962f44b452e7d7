-- Views the aggregator reads on both server kinds.

-- The same relation as figures_member_day, counted directly from the raw rows: the refresh
-- recounts dirty days from it, and tests compare both.
CREATE VIEW figures_raw_member_day AS
SELECT facility_id, service_date, program_id, person_ref, sum(attendances)::integer AS attendances
FROM (
    SELECT facility_id, service_date, program_id, member_ref AS person_ref, count(*) AS attendances
    FROM attendance_events
    WHERE outcome = 'accepted' AND program_id IS NOT NULL AND member_ref IS NOT NULL
    GROUP BY facility_id, service_date, program_id, member_ref
    UNION ALL
    SELECT facility_id, service_date, program_id, contact_code, 1
    FROM community_contacts
    WHERE program_id IS NOT NULL
) AS s
GROUP BY facility_id, service_date, program_id, person_ref;

-- The month rollup counted directly from the raw rows (same columns as figures_member_month).
CREATE VIEW figures_raw_member_month AS
SELECT facility_id, date_trunc('month', service_date::timestamp)::date AS month, program_id,
       person_ref, count(*)::integer AS days, sum(attendances)::integer AS attendances,
       bit_or(1 << (extract(day FROM service_date)::integer - 1))::integer AS day_mask
FROM figures_raw_member_day
GROUP BY facility_id, date_trunc('month', service_date::timestamp)::date, program_id, person_ref;

-- Who a person_ref is, for grouping: members (city-wide person_id), visitors and contacts.
CREATE VIEW figures_persons AS
SELECT member_ref AS person_ref, person_id, gender, birth_date, NULL::text AS age_band,
       neighbourhood, 'member'::text AS kind
FROM members
UNION ALL
SELECT visitor_code, visitor_code, gender, NULL::date, age_band, neighbourhood, 'visitor'
FROM visitors
UNION ALL
SELECT contact_code, contact_code, gender, NULL::date, age_band, neighbourhood, 'contact'
FROM community_contacts;

-- The agreed age bands (broker.models.AGE_BANDS) of a birth date on a given day (만 나이).
CREATE FUNCTION figures_age_band(birth date, as_of date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN birth IS NULL THEN NULL
        WHEN a < 10 THEN '0-9'
        WHEN a < 20 THEN '10-19'
        WHEN a < 30 THEN '20-29'
        WHEN a < 40 THEN '30-39'
        WHEN a < 50 THEN '40-49'
        WHEN a < 60 THEN '50-59'
        WHEN a < 65 THEN '60-64'
        WHEN a < 70 THEN '65-69'
        WHEN a < 75 THEN '70-74'
        WHEN a < 80 THEN '75-79'
        WHEN a < 85 THEN '80-84'
        ELSE '85+'
    END
    FROM (SELECT extract(year FROM age(as_of, birth))::integer AS a) AS x
$$;
