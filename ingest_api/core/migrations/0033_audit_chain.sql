-- The audit log, append-only and tamper-evident, partitioned by month and kept 3 years.
--
-- * welfare_app may only SELECT it and append through audit_append(); it holds no INSERT,
--   UPDATE, DELETE or TRUNCATE on the table or any partition.
-- * A trigger refuses UPDATE, DELETE and TRUNCATE for everyone, the owner included.
-- * Each row carries the SHA-256 of the previous row's hash and its own fields (a hash chain):
--   `welfare audit verify` recomputes it and names the first row that was edited, removed or
--   inserted out of turn (ingest_api/core/audit.py: verify_chain).
-- * Monthly partitions (UTC months); audit_drop_expired() drops only whole months older than
--   3 years and records where the chain continues (audit_retention).

ALTER TABLE audit_log RENAME TO audit_log_v1;
ALTER INDEX audit_log_at RENAME TO audit_log_v1_at;

CREATE SEQUENCE audit_log_id_seq;
CREATE TABLE audit_log (
    audit_id   bigint      NOT NULL,
    at         timestamptz NOT NULL,
    actor      text        NOT NULL,
    action     text        NOT NULL CHECK (action IN
                   ('view', 'search', 'download', 'change', 'import', 'erase', 'denied',
                    'sign_in', 'sign_in_failed', 'sign_out', 'account', 'role_change', 'token')),
    subject    text        NOT NULL,
    reason     text,
    detail     jsonb       NOT NULL DEFAULT '{}',
    prev_hash  text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    row_hash   text        NOT NULL CHECK (row_hash ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (audit_id, at)
) PARTITION BY RANGE (at);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

-- The end of the chain: one row, locked by every append, so the chain is one line.
CREATE TABLE audit_chain (
    id         integer PRIMARY KEY CHECK (id = 1),
    last_id    bigint  NOT NULL,
    last_hash  text    NOT NULL
);
INSERT INTO audit_chain VALUES (1, 0, repeat('0', 64));

-- Months dropped by the retention, with the hash the chain continues from.
CREATE TABLE audit_retention (
    partition   text        PRIMARY KEY,
    month       date        NOT NULL,
    rows        bigint      NOT NULL,
    last_id     bigint,
    last_hash   text,
    dropped_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN '-' ELSE length(v)::text || ':' || v END
$$;

-- The hash of one row: SHA-256 over the previous hash and every field, each length-prefixed.
CREATE FUNCTION audit_row_hash(prev text, id bigint, at timestamptz, actor text, action text,
                               subject text, reason text, detail jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(
        audit_field(prev) || audit_field(id::text)
        || audit_field(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || audit_field(actor) || audit_field(action) || audit_field(subject)
        || audit_field(reason) || audit_field(detail::text), 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_log_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

-- The partition of a (UTC) month, created when missing; only SELECT for welfare_app.
CREATE FUNCTION audit_ensure_partition(p_month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first date := date_trunc('month', p_month)::date;
    name  text := 'audit_log_y' || to_char(first, 'YYYY"m"MM');
BEGIN
    PERFORM pg_advisory_xact_lock(7305227330);
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
                       name, first::text || ' 00:00:00+00',
                       (first + INTERVAL '1 month')::date::text || ' 00:00:00+00');
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, welfare_app', name);
        EXECUTE format('GRANT SELECT ON %I TO welfare_app', name);
        EXECUTE format('CREATE TRIGGER audit_partition_no_truncate BEFORE TRUNCATE ON %I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse()', name);
    END IF;
    RETURN name;
END $$;

-- Append one row at a given time: the owner's (migrating old rows, tests of the retention).
CREATE FUNCTION audit_append_at(p_at timestamptz, p_actor text, p_action text, p_subject text,
                                p_reason text, p_detail jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    prev    text;
    new_id  bigint;
    h       text;
    d       jsonb := coalesce(p_detail, '{}'::jsonb);
BEGIN
    SELECT last_hash INTO prev FROM audit_chain WHERE id = 1 FOR UPDATE;
    new_id := nextval('audit_log_id_seq');
    PERFORM audit_ensure_partition((p_at AT TIME ZONE 'UTC')::date);
    h := audit_row_hash(prev, new_id, p_at, p_actor, p_action, p_subject, p_reason, d);
    INSERT INTO audit_log (audit_id, at, actor, action, subject, reason, detail, prev_hash,
                           row_hash)
    VALUES (new_id, p_at, p_actor, p_action, p_subject, p_reason, d, prev, h);
    UPDATE audit_chain SET last_id = new_id, last_hash = h WHERE id = 1;
    RETURN new_id;
END $$;

-- What the service calls: now, by the clock (the id and the time grow together).
CREATE FUNCTION audit_append(p_actor text, p_action text, p_subject text, p_reason text,
                             p_detail jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    new_id bigint;
BEGIN
    -- Lock the chain's end before reading the clock, so times follow the chain's order.
    PERFORM 1 FROM audit_chain WHERE id = 1 FOR UPDATE;
    new_id := audit_append_at(clock_timestamp(), p_actor, p_action, p_subject, p_reason,
                              p_detail);
    RETURN new_id;
END $$;

-- The retention: drop every month whose end is more than 3 years ago (never a younger one).
CREATE FUNCTION audit_drop_expired() RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part      record;
    v_month   date;
    horizon   date := date_trunc('month', (now() AT TIME ZONE 'UTC') - INTERVAL '3 years')::date;
    n         bigint;
    last_row  record;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_log'::regclass AND c.relname ~ '^audit_log_y[0-9]{4}m[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        v_month := to_date(substr(part.relname, 12), 'YYYY"m"MM');
        IF (v_month + INTERVAL '1 month')::date > horizon THEN
            CONTINUE;
        END IF;
        EXECUTE format('SELECT count(*) FROM %I', part.relname) INTO n;
        EXECUTE format('SELECT audit_id, row_hash FROM %I ORDER BY audit_id DESC LIMIT 1',
                       part.relname) INTO last_row;
        INSERT INTO audit_retention (partition, month, rows, last_id, last_hash)
        VALUES (part.relname, v_month, n, last_row.audit_id, last_row.row_hash);
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END $$;

-- Rows written before this migration join the chain in their order, with their own times.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM audit_log_v1 ORDER BY audit_id LOOP
        PERFORM audit_append_at(r.at, r.actor, r.action, r.subject, r.reason, r.detail);
    END LOOP;
END $$;
DROP TABLE audit_log_v1;

SELECT audit_ensure_partition((now() AT TIME ZONE 'UTC')::date);
SELECT audit_ensure_partition(((now() AT TIME ZONE 'UTC') + INTERVAL '1 month')::date);

REVOKE ALL ON audit_log, audit_chain, audit_retention FROM PUBLIC, welfare_app;
GRANT SELECT ON audit_log, audit_retention, audit_chain TO welfare_app;
REVOKE ALL ON SEQUENCE audit_log_id_seq FROM PUBLIC, welfare_app;
REVOKE ALL ON FUNCTION audit_append_at(timestamptz, text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_append(text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_ensure_partition(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_drop_expired() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append(text, text, text, text, jsonb) TO welfare_app;
GRANT EXECUTE ON FUNCTION audit_ensure_partition(date) TO welfare_app;
GRANT EXECUTE ON FUNCTION audit_drop_expired() TO welfare_app;

-- Abnormal use found in the audit log (ingest_api/core/audit.py: record_alerts).
CREATE TABLE security_alerts (
    alert_id      bigserial   PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('bulk_reads', 'off_hours_download')),
    actor         text        NOT NULL,
    window_start  timestamptz NOT NULL,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    detail        jsonb       NOT NULL DEFAULT '{}',
    UNIQUE (kind, actor, window_start)
);
