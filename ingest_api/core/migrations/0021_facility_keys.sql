-- One card-hash key per facility (broker/keys.py derives it from the center's master secret
-- with HKDF; version 0 is the master itself, the city-wide key used before this migration).
-- A rotation adds a version and re-hashes every card under it from the card UIDs, which are
-- kept sealed (AES-GCM, key derived from the master, never in the database); rosters carry the
-- hashes of both versions until the old one is retired, so no card stops working meanwhile.
CREATE TABLE facility_keys (
    facility_id  text    NOT NULL REFERENCES facilities,
    version      integer NOT NULL CHECK (version >= 0),
    state        text    NOT NULL CHECK (state IN ('current', 'previous', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    PRIMARY KEY (facility_id, version)
);
CREATE UNIQUE INDEX facility_keys_one_current ON facility_keys (facility_id)
    WHERE state = 'current';
CREATE UNIQUE INDEX facility_keys_one_previous ON facility_keys (facility_id)
    WHERE state = 'previous';

-- A card has one row per key version in use: the same card, hashed under each.
ALTER TABLE member_credentials ADD COLUMN key_version integer NOT NULL DEFAULT 0;
ALTER TABLE member_credentials ALTER COLUMN key_version DROP DEFAULT;
ALTER TABLE member_credentials ADD COLUMN uid_sealed bytea;

-- Facilities with cards hashed under the city-wide key keep it (version 0) until rotated;
-- every other facility starts at version 1 when its first card is registered.
INSERT INTO facility_keys (facility_id, version, state)
SELECT DISTINCT m.facility_id, 0, 'current'
FROM member_credentials c JOIN members m USING (member_ref);
