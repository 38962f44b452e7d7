-- Why staff let a member in despite the rule ("already served"): the kiosk asks for a reason
-- and sends it with the event (contract 1.5, AttendanceEvent.override_reason).
-- The same statement on PostgreSQL and TimescaleDB (attendance_events is a hypertable there).
ALTER TABLE attendance_events ADD COLUMN IF NOT EXISTS override_reason text;
