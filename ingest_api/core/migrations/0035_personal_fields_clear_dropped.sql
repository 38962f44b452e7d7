-- The clear columns go. `welfare ingest migrate` encrypts any value still in them first (with
-- WELFARE_DATA_KEY; ingest_api/core/migrate.py runs that step before this file), so nothing
-- recorded is lost; without the key this migration stops here and says so.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM members
               WHERE phone IS NOT NULL OR birth_date IS NOT NULL OR main_needs <> '{}')
       OR EXISTS (SELECT 1 FROM community_contacts WHERE needs <> '') THEN
        RAISE EXCEPTION 'personal fields are still in clear: run `welfare ingest migrate` with '
                        'WELFARE_DATA_KEY set, so they are encrypted before the clear columns go';
    END IF;
END $$;

DROP VIEW figures_persons;
ALTER TABLE members DROP COLUMN phone, DROP COLUMN birth_date, DROP COLUMN main_needs;
ALTER TABLE community_contacts DROP COLUMN needs;

-- Who a person_ref is, for grouping: members (city-wide person_id), visitors and contacts.
CREATE VIEW figures_persons AS
SELECT member_ref AS person_ref, person_id, gender, birth_month, NULL::text AS age_band,
       neighbourhood, 'member'::text AS kind
FROM members
UNION ALL
SELECT visitor_code, visitor_code, gender, NULL::date, age_band, neighbourhood, 'visitor'
FROM visitors
UNION ALL
SELECT contact_code, contact_code, gender, NULL::date, age_band, neighbourhood, 'contact'
FROM community_contacts;
GRANT SELECT ON figures_persons TO welfare_app;
