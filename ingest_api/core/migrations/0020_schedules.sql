-- Schedules as data: when a program runs (weekly sessions) and the days it does not
-- (closures: a holiday of the whole facility, or a cancelled day of one program).
-- `programs.cycle` stays free display text; kiosks decide by these rows.

-- What a kiosk does at a check-in: a meal (one per member per day, numbered tickets) or a class.
ALTER TABLE programs ADD COLUMN kind text NOT NULL DEFAULT 'class'
    CHECK (kind IN ('meal', 'class'));

-- One row per weekday and time window (ISO weekday, 1 = Monday), in the facility's local time.
-- Overlaps (within a program, or two programs in one place) are refused by the registry with
-- both sessions named (ingest_api/registry/schedules.py); the database keeps the hard rules.
CREATE TABLE program_sessions (
    session_id  bigserial PRIMARY KEY,
    program_id  text     NOT NULL REFERENCES programs ON DELETE CASCADE,
    weekday     smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts      time     NOT NULL,
    ends        time     NOT NULL,
    place       text     NOT NULL DEFAULT '',
    capacity    integer  CHECK (capacity > 0),
    CHECK (ends > starts),
    UNIQUE (program_id, weekday, starts)
);

CREATE TABLE schedule_exceptions (
    facility_id  text NOT NULL REFERENCES facilities,
    program_id   text REFERENCES programs ON DELETE CASCADE,  -- NULL: the whole facility
    on_date      date NOT NULL,
    reason       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX schedule_exceptions_day
    ON schedule_exceptions (facility_id, coalesce(program_id, ''), on_date);
CREATE INDEX schedule_exceptions_date ON schedule_exceptions (on_date);
