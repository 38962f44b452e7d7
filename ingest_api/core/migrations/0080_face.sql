-- Face match (docs/face.md): the member's separate consent to face match, and the member's
-- face template, sealed. The template is AES-256-GCM under a key derived from the facility's
-- credential key (broker/face.py); the center stores and forwards it to the kiosks of the
-- member's facility with the roster and never opens it. No photo is stored anywhere.
CREATE TABLE face_consents (
    member_ref    text PRIMARY KEY REFERENCES members ON DELETE CASCADE,
    form_id       text NOT NULL CHECK (length(form_id) BETWEEN 1 AND 64),
    granted_at    timestamptz NOT NULL,
    recorded_by   text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    withdrawn_at  timestamptz,
    withdrawn_by  text
);

CREATE TABLE face_templates (
    member_ref   text PRIMARY KEY REFERENCES face_consents ON DELETE CASCADE,
    facility_id  text NOT NULL REFERENCES facilities,
    key_version  integer NOT NULL,
    key_id       text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    sealed       bytea NOT NULL,
    photos       integer NOT NULL CHECK (photos > 0),
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    enrolled_by  text NOT NULL
);
CREATE INDEX face_templates_facility ON face_templates (facility_id);

-- A template changes the rosters of its facility's kiosks: added, replaced or removed.
CREATE TRIGGER face_templates_fleet_ins AFTER INSERT ON face_templates
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER face_templates_fleet_upd AFTER UPDATE ON face_templates
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();
CREATE TRIGGER face_templates_fleet_del AFTER DELETE ON face_templates
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_dirty_by_facility();

-- A member taken off the rosters (suspended, moved out, deceased, erased) loses the template
-- at once, in the status change's own transaction: it is deleted, not merely withheld.
CREATE FUNCTION face_template_off_roster() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'active' THEN
        DELETE FROM face_templates WHERE member_ref = NEW.member_ref;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER members_face_off_roster AFTER UPDATE OF status ON members
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION face_template_off_roster();
