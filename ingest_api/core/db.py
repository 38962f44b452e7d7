"""The database: one connection pool per process, opened and closed with the app's lifespan."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from ingest_api.core.config import Settings

# The connection type every data function takes (rows as tuples unless a cursor says otherwise).
Conn = psycopg.Connection[Any]
Pool = ConnectionPool[Conn]


def _reset_role(conn: Conn) -> None:
    """Back to the login role when a request returns its connection (get_conn set welfare_app)."""
    conn.execute("RESET ROLE")
    conn.commit()


def open_pool(settings: Settings) -> Pool:
    """A pool of connections to the central database; connections are checked before use.

    Opening does not wait for the database: the service starts (and answers /healthz with the
    database's state) while PostgreSQL is still coming up or briefly away.
    """
    pool: Pool = ConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        kwargs={"connect_timeout": 5},
        check=ConnectionPool.check_connection,
        reset=_reset_role,
        name="welfare-center",
        open=False,
        timeout=10,
    )
    pool.open(wait=False)
    return pool


def login_role_problem(conn: Conn) -> str | None:
    """Why this login may not run the service in production (None: it may).

    A superuser or the audit log's owner could bypass what holds the service (grants, the
    trigger); the service must log in as a role that is only a member of welfare_app.
    """
    row = conn.execute(
        "SELECT r.rolsuper, pg_has_role(current_user, c.relowner, 'MEMBER'),"
        " pg_has_role(current_user, 'welfare_app', 'MEMBER')"
        " FROM pg_roles r, pg_class c WHERE r.rolname = current_user"
        " AND c.oid = 'audit_log'::regclass"
    ).fetchone()
    if row is None:
        return "cannot see the audit log: run `welfare ingest migrate` first"
    superuser, owner, member = row
    if superuser:
        return "the service logs in as a superuser"
    if owner:
        return "the service logs in as the schema owner"
    if not member:
        return "the service's login is not a member of welfare_app"
    return None
