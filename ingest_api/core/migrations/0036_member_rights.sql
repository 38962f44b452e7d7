-- A member's rights (docs/security.md): an erased member keeps only a random pseudonym with the
-- generalised attributes the figures group by (gender, birth month, neighbourhood) and the
-- enrolments' fee types, so every figure stays; name, phone, birth date, needs, consents and
-- card credentials are gone, and the pseudonym links to nothing.
ALTER TABLE members DROP CONSTRAINT members_status_check;
ALTER TABLE members ADD CONSTRAINT members_status_check
    CHECK (status IN ('active', 'suspended', 'moved_out', 'deceased', 'erased'));
