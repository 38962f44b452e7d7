-- The staff web app at the desk and in the field (issue 13, docs/staff.md).

-- A resident met twice is two meetings: the code names the resident, each meeting is its own
-- row (before, contact_code was the key and a second meeting was silently dropped). Existing
-- rows keep their codes and get an id each. The same code at the same moment is the same
-- meeting sent again (a resend stays one record).
ALTER TABLE community_contacts ADD COLUMN contact_id bigserial;
ALTER TABLE community_contacts DROP CONSTRAINT community_contacts_pkey;
ALTER TABLE community_contacts ADD PRIMARY KEY (contact_id);
CREATE UNIQUE INDEX community_contacts_meeting ON community_contacts (contact_code, met_at);

-- Who a person_ref is, for grouping: a resident met several times is one person (their latest
-- meeting says their age band and neighbourhood), so a join on it never doubles a row.
CREATE OR REPLACE VIEW figures_persons AS
SELECT member_ref AS person_ref, person_id, gender, birth_month, NULL::text AS age_band,
       neighbourhood, 'member'::text AS kind
FROM members
UNION ALL
SELECT visitor_code, visitor_code, gender, NULL::date, age_band, neighbourhood, 'visitor'
FROM visitors
UNION ALL
SELECT * FROM (
    SELECT DISTINCT ON (contact_code) contact_code, contact_code, gender, NULL::date, age_band,
           neighbourhood, 'contact'
    FROM community_contacts
    ORDER BY contact_code, met_at DESC, contact_id DESC
) AS latest;

-- A form sent twice (a tablet on bad Wi-Fi) makes one record: each form carries a random key,
-- claimed in the transaction that records it; a second send finds the key and the record.
CREATE TABLE form_submissions (
    form_key      uuid PRIMARY KEY,
    actor         text NOT NULL,
    kind          text NOT NULL,
    result        text,
    submitted_at  timestamptz NOT NULL DEFAULT now()
);

-- Services that never pass a kiosk (counselling, home visits, phone checks, meal deliveries,
-- case and network meetings). Each is also one accepted attendance event (method 'staff',
-- event_id below), so it is counted by its program's rule exactly like a kiosk's, by the one
-- definition of the figures. The note is free text about a person: stored only encrypted.
CREATE TABLE service_records (
    service_id    bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    facility_id   text NOT NULL REFERENCES facilities,
    program_id    text NOT NULL REFERENCES programs,
    kind          text NOT NULL CHECK (kind IN ('counselling', 'home_visit', 'phone_check',
                                                'meal_delivery', 'case_meeting',
                                                'network_meeting')),
    member_ref    text REFERENCES members ON DELETE SET NULL,
    group_name    text,
    person_ref    text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    service_date  date NOT NULL,
    note_enc      bytea,
    recorded_by   text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_records_day ON service_records (facility_id, service_date);
CREATE INDEX service_records_member ON service_records (member_ref);
