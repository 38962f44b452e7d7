-- Personal fields encrypted at rest (ingest_api/core/fieldcrypto.py, AES-256-GCM in the
-- application; the key is WELFARE_DATA_KEY, never in the database). Look-ups use keyed hashes:
-- phone_tail_hash (the last four digits, for staff's search) and persons.identity_hash (name
-- and birth date, for the city-wide identity match, since 0010).
--
-- birth_month keeps only the year and month of the birth date, in clear: the figures' age
-- bands are taken from it (age on the period's last day, counted from the month's first day;
-- exact on every month's last day, so on every monthly, quarterly and yearly figure).
ALTER TABLE members
    ADD COLUMN phone_enc        bytea,
    ADD COLUMN phone_tail_hash  text CHECK (phone_tail_hash ~ '^[0-9a-f]{64}$'),
    ADD COLUMN birth_date_enc   bytea,
    ADD COLUMN birth_month      date CHECK (birth_month = date_trunc('month', birth_month)::date),
    ADD COLUMN main_needs_enc   bytea;
UPDATE members SET birth_month = date_trunc('month', birth_date)::date
WHERE birth_date IS NOT NULL;
CREATE INDEX members_phone_tail ON members (facility_id, phone_tail_hash)
    WHERE phone_tail_hash IS NOT NULL;

ALTER TABLE community_contacts ADD COLUMN needs_enc bytea;
