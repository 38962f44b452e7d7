-- A dead letter names the event it refused (issue 16): one event of a batch can be refused
-- while the rest of the batch is stored. The same refused event sent again (an older kiosk
-- that cannot park it) is kept once.
ALTER TABLE dead_letters ADD COLUMN event_id uuid;
CREATE UNIQUE INDEX dead_letters_event ON dead_letters (event_id) WHERE event_id IS NOT NULL;
