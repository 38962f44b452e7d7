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
