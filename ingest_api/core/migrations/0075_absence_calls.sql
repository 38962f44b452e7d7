-- Wellbeing calls to members who stopped coming (the source report, around its line 453:
-- seniors no longer seen at the meal hall are phoned). A member is on a program's absence
-- list after `absence_days` of the program's service days without an attendance (NULL: the
-- service's default, WELFARE_FOLLOWUP__ABSENCE_DAYS); staff record each call's outcome.
ALTER TABLE programs ADD COLUMN absence_days integer CHECK (absence_days BETWEEN 1 AND 365);

-- One row per call. call_id is the form's idempotency key: a double submit from a tablet on
-- bad Wi-Fi is one call. The note may say why someone is in hospital: encrypted at rest
-- (ingest_api/core/fieldcrypto.py, context absence_calls.note:<call_id>).
CREATE TABLE absence_calls (
    call_id      uuid PRIMARY KEY,
    member_ref   text NOT NULL REFERENCES members ON DELETE CASCADE,
    program_id   text NOT NULL REFERENCES programs ON DELETE CASCADE,
    facility_id  text NOT NULL REFERENCES facilities,
    called_at    timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL
                 CHECK (outcome IN ('reached', 'not_reached', 'needs_visit', 'in_hospital',
                                    'other')),
    note_enc     bytea,
    actor        text NOT NULL
);
CREATE INDEX absence_calls_member ON absence_calls (member_ref, program_id, called_at);
CREATE INDEX absence_calls_facility ON absence_calls (facility_id, called_at);
