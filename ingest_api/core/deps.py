"""FastAPI dependencies of every router: settings, a pooled connection, the actor, the key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from broker.config import key_bytes
from ingest_api.core.config import Settings
from ingest_api.core.db import Conn, Pool


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> Pool:
    """The process's connection pool (opened in the app's lifespan)."""
    pool: Pool | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise RuntimeError("the app's lifespan has not opened the database pool")
    return pool


def get_conn(pool: Annotated[Pool, Depends(get_pool)]) -> Iterator[Conn]:
    """A pooled connection for one request, committed when the handler succeeds.

    Values the database refuses (a NUL character in text, an unknown program referenced, …)
    answer 400 instead of a server error; the transaction is rolled back.
    """
    with pool.connection() as conn:
        try:
            yield conn
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            conn.rollback()
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HTTPException(400, f"rejected by the database: {detail}") from exc


def get_actor(
    x_actor: Annotated[str, Header(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")],
) -> str:
    """Who is acting: the staff id the front end sends (until sign-in sets it)."""
    return x_actor


def get_credential_key(settings: Annotated[Settings, Depends(get_settings)]) -> bytes:
    """The card-hash key; without one, members cannot be registered (400 with the reason).

    Not a 5xx: the service itself is healthy, only this write cannot be done until the
    operator sets WELFARE_CREDENTIAL_KEY (and there is deliberately no default key).
    """
    if settings.credential_key is None:
        raise HTTPException(
            400, "registry not configured: set WELFARE_CREDENTIAL_KEY to hash card identifiers"
        )
    return key_bytes(settings.credential_key)


def query_error(field: str, message: str) -> RequestValidationError:
    """A 422 for a rule the schema cannot express, in FastAPI's usual error shape."""
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error", "input": None}]
    )


class ErrorOut(BaseModel):
    """The body of a 4xx answer."""

    detail: str


# Documented on every route that can refuse a request.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Refused (unknown reference, bad value)"},
    404: {"model": ErrorOut, "description": "Not found"},
}

SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[Conn, Depends(get_conn)]
PoolDep = Annotated[Pool, Depends(get_pool)]
ActorDep = Annotated[str, Depends(get_actor)]
KeyDep = Annotated[bytes, Depends(get_credential_key)]
