-- Alerts of issue 16: events a device parked because the center refused them, a device whose
-- storage is running out of room for its outbox, and the center's own backup failing (kept
-- under the pseudo-device center/backup: the operators watch one list of alerts).
ALTER TABLE device_alerts DROP CONSTRAINT device_alerts_kind_check;
ALTER TABLE device_alerts ADD CONSTRAINT device_alerts_kind_check
    CHECK (kind IN ('offline', 'backlog', 'reader_missing', 'clock_skew', 'disk_low',
                    'roster_behind', 'events_parked', 'backup_failed'));
