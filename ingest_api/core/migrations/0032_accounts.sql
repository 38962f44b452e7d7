-- Accounts, sessions and service tokens (ingest_api/auth, docs/security.md).
-- Passwords only as argon2id hashes; second-factor secrets encrypted with the data key;
-- sessions and tokens only as SHA-256 of their random secrets, so a copy of this database
-- signs no one in.
CREATE TABLE user_accounts (
    username              text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9_.@-]{1,63}$'),
    display_name          text NOT NULL DEFAULT '' CHECK (length(display_name) <= 40),
    role                  text NOT NULL CHECK (role IN
                              ('city_admin', 'center_manager', 'center_staff', 'operator',
                               'auditor')),
    facility_id           text REFERENCES facilities,
    program_ids           text[] NOT NULL DEFAULT '{}',
    grants                text[] NOT NULL DEFAULT '{}',
    password_hash         text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    must_change_password  boolean NOT NULL DEFAULT true,
    totp_secret           bytea,
    totp_last_step        bigint,
    disabled_at           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- a center's manager and staff belong to exactly one center; the others to none
    CHECK ((role IN ('center_manager', 'center_staff')) = (facility_id IS NOT NULL))
);

-- Failed sign-ins per typed name, whether or not such an account exists (same answer, same
-- count, same lockout), so the sign-in page tells nobody which names exist.
CREATE TABLE sign_in_attempts (
    name_key         text PRIMARY KEY CHECK (length(name_key) <= 64),
    failures         integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    last_failure_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_sessions (
    session_hash           text PRIMARY KEY CHECK (session_hash ~ '^[0-9a-f]{64}$'),
    username               text NOT NULL REFERENCES user_accounts ON DELETE CASCADE,
    created_at             timestamptz NOT NULL DEFAULT now(),
    last_seen_at           timestamptz NOT NULL DEFAULT now(),
    expires_at             timestamptz NOT NULL,
    second_factor_pending  boolean NOT NULL,
    csrf_token             text NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (username);

CREATE TABLE api_tokens (
    token_id      text PRIMARY KEY CHECK (token_id ~ '^[a-z0-9]{12}$'),
    name          text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{1,63}$'),
    secret_hash   text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    scopes        text[] NOT NULL,
    facility_id   text REFERENCES facilities,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
