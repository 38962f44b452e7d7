-- The application's database role. Every request of the service runs as `welfare_app`
-- (ingest_api/core/deps.py: get_conn sets it), and in production the service logs in as a role
-- that is only a member of it, while migrations run as the schema owner (WELFARE_MIGRATION_URL).
-- welfare_app owns nothing: it reads and writes the data tables, and only appends to the audit
-- log through audit_append() (0033). Creating it needs CREATEROLE (or a DBA who created it).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'welfare_app') THEN
        CREATE ROLE welfare_app NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, 'welfare_app', 'MEMBER') THEN
        EXECUTE format('GRANT welfare_app TO %I', current_user);
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO welfare_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO welfare_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO welfare_app;
-- Tables later migrations create (as this same owner) are granted alike; tables that must be
-- append-only revoke it again.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO welfare_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO welfare_app;
-- Which migrations ran is the owner's business.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM welfare_app;
