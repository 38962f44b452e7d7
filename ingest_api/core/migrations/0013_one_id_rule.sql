-- One id rule for facilities and programs: the one every kiosk message enforces
-- (broker.const.ID_PATTERN: topic-safe, 1-32 characters). A 40-character program id used to
-- be accepted here and then refused by every kiosk message naming it.
-- NOT VALID: rows already stored are kept as they are; every new or changed row is checked.
ALTER TABLE facilities DROP CONSTRAINT facilities_facility_id_check;
ALTER TABLE facilities ADD CONSTRAINT facilities_facility_id_check
    CHECK (facility_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$') NOT VALID;
ALTER TABLE programs DROP CONSTRAINT programs_program_id_check;
ALTER TABLE programs ADD CONSTRAINT programs_program_id_check
    CHECK (program_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$') NOT VALID;
