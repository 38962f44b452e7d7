-- Plain PostgreSQL: the dirty markers of 0011 already exist; find a person's months quickly
-- when the registry changes them.
CREATE INDEX figures_member_month_person ON figures_member_month (person_ref);
