-- One-off visitors count under their facility's visitor program (by that program's counting
-- rule). A kiosk registers visitors without knowing the registry, so the center tells it which
-- program that is (DeviceConfig.visitor_program_id, ingest_api/registry/visitors.py).
CREATE TABLE facility_visitor_programs (
    facility_id  text PRIMARY KEY REFERENCES facilities,
    program_id   text NOT NULL REFERENCES programs ON DELETE CASCADE
);

-- A visitor code that arrived twice with different data (two devices issuing the same code,
-- as kiosks did before codes named their device): the first registration stays, the second
-- is kept here for staff instead of being dropped without a trace. Its event is stored anyway.
CREATE TABLE visitor_code_conflicts (
    id            bigserial   PRIMARY KEY,
    visitor_code  text        NOT NULL,
    event_id      uuid        NOT NULL,
    facility_id   text        NOT NULL,
    device_id     text        NOT NULL,
    visitor       jsonb       NOT NULL,
    noted_at      timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION registry_visitor_from_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO visitors (visitor_code, facility_id, gender, age_band, neighbourhood, purpose,
                          registered_at)
    VALUES (NEW.visitor->>'visitor_code', NEW.facility_id, NEW.visitor->>'gender',
            NEW.visitor->>'age_band', NEW.visitor->>'neighbourhood',
            coalesce(NEW.visitor->>'purpose', ''), NEW.occurred_at)
    ON CONFLICT (visitor_code) DO NOTHING;
    -- The same registration again (a resent event) is no conflict; different data is.
    IF NOT FOUND AND EXISTS (
        SELECT 1 FROM visitors v
        WHERE v.visitor_code = NEW.visitor->>'visitor_code'
          AND (v.facility_id, v.gender, v.age_band, v.neighbourhood)
              IS DISTINCT FROM (NEW.facility_id, NEW.visitor->>'gender',
                                NEW.visitor->>'age_band', NEW.visitor->>'neighbourhood')
    ) THEN
        INSERT INTO visitor_code_conflicts (visitor_code, event_id, facility_id, device_id, visitor)
        VALUES (NEW.visitor->>'visitor_code', NEW.event_id, NEW.facility_id, NEW.device_id,
                NEW.visitor);
    END IF;
    RETURN NULL;
END $$;
