-- A member served twice in one sitting: the hall's kiosks could not reach each other, so each
-- decided alone (docs/kiosk.md, "Peer sharing"). Both serves stay recorded; every serve after
-- the member's first of the program and day (by event id) is listed here, flagged for staff.
-- Staff overrides are deliberate and not listed. The figures count one person-visit per
-- person, program and day (counting rule visit_unit 'member_day'), so such a pair counts once.
-- The same view on PostgreSQL and TimescaleDB (attendance_events is a hypertable there).
CREATE VIEW double_serves AS
SELECT facility_id, program_id, member_ref, service_date, event_id, occurred_at, device_id,
       ticket_no, first_event_id, first_device_id
FROM (
    SELECT e.facility_id, e.program_id, e.member_ref, e.service_date, e.event_id,
           e.occurred_at, e.device_id, e.ticket_no,
           first_value(e.event_id) OVER w AS first_event_id,
           first_value(e.device_id) OVER w AS first_device_id,
           row_number() OVER w AS nth
    FROM attendance_events e
    WHERE e.outcome = 'accepted' AND e.method <> 'staff' AND e.visitor IS NULL
      AND e.member_ref IS NOT NULL AND e.program_id IS NOT NULL
    WINDOW w AS (PARTITION BY e.facility_id, e.program_id, e.member_ref, e.service_date
                 ORDER BY e.event_id)
) ranked
WHERE nth > 1;
