-- The central registry: facilities, programs with their counting rules, members, visitors,
-- community contacts, imports and the audit log of personal-data access.

CREATE TABLE facilities (
    facility_id  text PRIMARY KEY CHECK (facility_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    name         text NOT NULL,
    district     text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- How a program's attendances become figures, agreed city-wide (table 3-2), held as data.
-- visit_unit: what one person-visit (연인원) is; case_unit: what one case (건) is;
-- counts_unique: whether the program counts unique persons (실인원);
-- in_figures: false for one-off public events and per-program publicity (excluded).
CREATE TABLE counting_rules (
    rule_id        text PRIMARY KEY CHECK (rule_id ~ '^[a-z0-9_]{1,40}$'),
    name           text NOT NULL,
    visit_unit     text NOT NULL CHECK (visit_unit IN ('member_day', 'attendance', 'none')),
    case_unit      text NOT NULL
                   CHECK (case_unit IN ('session_day', 'member_day', 'attendance', 'none')),
    counts_unique  boolean NOT NULL,
    in_figures     boolean NOT NULL DEFAULT true,
    description    text NOT NULL DEFAULT ''
);

INSERT INTO counting_rules VALUES
 ('attendance', '출석 프로그램', 'member_day', 'session_day', true, true,
  '1인 1일 1회 = 연인원 1, 운영일 1일 = 1건'),
 ('practicum', '사회복지현장실습 (표 3-2 통일기준)', 'member_day', 'session_day', true, true,
  '실습생 1인 1일 = 연인원 1, 실습일 1일 = 1건: 12명 × (동계 20일 + 하계 20일) = 480명, 40건'),
 ('rental', '대관', 'member_day', 'attendance', true, true,
  '대관 이용 1회 = 1건, 이용자 1인 1일 = 연인원 1'),
 ('consultation', '상담·사례관리', 'member_day', 'member_day', true, true,
  '대상자 1인 1일 상담 = 1건, 연인원 1'),
 ('network', '네트워크·조직화 활동', 'none', 'session_day', false, true,
  '활동일 1일 = 1건 (참여자 수는 실적 아님)'),
 ('publicity', '기관 홍보', 'none', 'attendance', false, true,
  '기관 전체 홍보 1회 = 1건; 사업별 홍보는 excluded 규칙'),
 ('excluded', '실적 제외 (일회성 행사·사업별 홍보)', 'none', 'none', false, false,
  '일회성 행사와 지역주민 행사, 사업별 홍보는 실적에서 제외');

CREATE TABLE programs (
    program_id     text PRIMARY KEY CHECK (program_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    facility_id    text NOT NULL REFERENCES facilities,
    name           text NOT NULL,
    function       text NOT NULL
                   CHECK (function IN ('case_management', 'service_provision', 'community_organizing')),
    business_area  text NOT NULL,
    unit_business  text NOT NULL,
    purpose        text NOT NULL DEFAULT '',
    target_group   text NOT NULL DEFAULT '',
    cycle          text NOT NULL DEFAULT '',
    place          text NOT NULL DEFAULT '',
    capacity       integer CHECK (capacity > 0),
    fee_type       text NOT NULL CHECK (fee_type IN ('paid', 'reduced', 'free')),
    rule_id        text NOT NULL REFERENCES counting_rules DEFAULT 'attendance',
    active         boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX programs_facility ON programs (facility_id);

-- Yearly targets per figure; a program's targets add up the hierarchy for person-visits and
-- cases. Unique persons cannot be added up, so above a program only an explicit node target
-- counts (node: 'facility', 'function:<f>', 'area:<f>/<area>', 'unit:<f>/<area>/<unit>').
CREATE TABLE program_targets (
    program_id      text NOT NULL REFERENCES programs ON DELETE CASCADE,
    year            integer NOT NULL,
    unique_persons  integer CHECK (unique_persons >= 0),
    person_visits   integer CHECK (person_visits >= 0),
    cases           integer CHECK (cases >= 0),
    PRIMARY KEY (program_id, year)
);
CREATE TABLE node_targets (
    year            integer NOT NULL,
    facility_id     text NOT NULL,  -- '*' for the whole city
    node            text NOT NULL,
    unique_persons  integer CHECK (unique_persons >= 0),
    person_visits   integer CHECK (person_visits >= 0),
    cases           integer CHECK (cases >= 0),
    PRIMARY KEY (year, facility_id, node)
);

-- One row per real person across all centers, so the city counts a person once even when two
-- centers registered them. identity_hash is a keyed hash of name + birth date (no clear text).
CREATE TABLE persons (
    person_id      text PRIMARY KEY,
    identity_hash  text UNIQUE CHECK (identity_hash ~ '^[0-9a-f]{64}$'),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Members: the brief's minimum fields. birth_date and phone are sensitive: the API masks them
-- and shows them in clear only with a typed reason, audited (see docs/registry.md).
CREATE TABLE members (
    member_ref     text PRIMARY KEY CHECK (member_ref ~ '^[A-Za-z0-9_-]{1,64}$'),
    facility_id    text NOT NULL REFERENCES facilities,
    person_id      text NOT NULL REFERENCES persons,
    display_name   text NOT NULL,
    gender         text CHECK (gender IN ('M', 'F')),
    birth_date     date,
    recipient      boolean NOT NULL DEFAULT false,
    disability     boolean NOT NULL DEFAULT false,
    phone          text,
    neighbourhood  text,
    main_needs     text[] NOT NULL DEFAULT '{}',
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'suspended', 'moved_out', 'deceased')),
    registered_on  date NOT NULL DEFAULT CURRENT_DATE,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX members_facility ON members (facility_id);
CREATE INDEX members_person ON members (person_id);

CREATE TABLE member_consents (
    member_ref    text NOT NULL REFERENCES members ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('privacy', 'sensitive', 'face', 'transfer', 'sms')),
    granted_on    date NOT NULL,
    withdrawn_on  date,
    PRIMARY KEY (member_ref, kind)
);

-- Card and NFC identifiers only as keyed hashes (welfare.hashing.credential_hash).
CREATE TABLE member_credentials (
    credential_hash  text PRIMARY KEY CHECK (credential_hash ~ '^[0-9a-f]{64}$'),
    member_ref       text NOT NULL REFERENCES members ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('card', 'nfc')),
    issued_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz
);
CREATE INDEX member_credentials_member ON member_credentials (member_ref);

-- fee_type overrides the program's own (e.g. a recipient in a paid class pays reduced fees).
CREATE TABLE enrolments (
    member_ref   text NOT NULL REFERENCES members ON DELETE CASCADE,
    program_id   text NOT NULL REFERENCES programs ON DELETE CASCADE,
    fee_type     text CHECK (fee_type IN ('paid', 'reduced', 'free')),
    enrolled_on  date NOT NULL DEFAULT CURRENT_DATE,
    ended_on     date,
    PRIMARY KEY (member_ref, program_id)
);
CREATE INDEX enrolments_program ON enrolments (program_id);

-- One-off visitors: an issued personal ID code and nothing else but gender, age band, place.
CREATE TABLE visitors (
    visitor_code   text PRIMARY KEY,
    facility_id    text NOT NULL,
    gender         text NOT NULL CHECK (gender IN ('M', 'F')),
    age_band       text NOT NULL,
    neighbourhood  text NOT NULL,
    purpose        text NOT NULL DEFAULT '',
    registered_at  timestamptz NOT NULL DEFAULT now()
);

-- Residents met during community organizing: ID code, gender, age band, place, time, needs.
CREATE TABLE community_contacts (
    contact_code   text PRIMARY KEY CHECK (contact_code ~ '^[A-Za-z0-9_-]{1,64}$'),
    facility_id    text NOT NULL REFERENCES facilities,
    program_id     text REFERENCES programs,
    gender         text NOT NULL CHECK (gender IN ('M', 'F')),
    age_band       text NOT NULL,
    neighbourhood  text NOT NULL,
    place          text NOT NULL,
    met_at         timestamptz NOT NULL,
    service_date   date NOT NULL,
    needs          text NOT NULL DEFAULT ''
);
CREATE INDEX community_contacts_day ON community_contacts (facility_id, service_date);

-- A kiosk's visitor registration carries the visitor's data; keep it in the registry.
CREATE FUNCTION registry_visitor_from_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO visitors (visitor_code, facility_id, gender, age_band, neighbourhood, purpose,
                          registered_at)
    VALUES (NEW.visitor->>'visitor_code', NEW.facility_id, NEW.visitor->>'gender',
            NEW.visitor->>'age_band', NEW.visitor->>'neighbourhood',
            coalesce(NEW.visitor->>'purpose', ''), NEW.occurred_at)
    ON CONFLICT (visitor_code) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER attendance_events_visitor AFTER INSERT ON attendance_events
    FOR EACH ROW WHEN (NEW.visitor IS NOT NULL) EXECUTE FUNCTION registry_visitor_from_event();

-- Imports already applied (by file content), so a re-import is recognised.
CREATE TABLE import_batches (
    batch_id     bigserial PRIMARY KEY,
    kind         text NOT NULL,
    facility_id  text NOT NULL,
    file_sha256  text NOT NULL,
    filename     text NOT NULL,
    row_count    integer NOT NULL,
    inserted     integer NOT NULL,
    updated      integer NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_batches_file ON import_batches (kind, facility_id, file_sha256);

-- Every view, download and change of personal data: who, what, when and (downloads) why.
-- Kept 3 years (the source report's rule); rows are never updated.
CREATE TABLE audit_log (
    audit_id  bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL CHECK (action IN ('view', 'download', 'change', 'import')),
    subject   text NOT NULL,
    reason    text,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
