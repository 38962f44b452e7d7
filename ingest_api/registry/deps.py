"""FastAPI dependencies of the registry and figures routers: a connection, the acting staff."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Header, HTTPException, Request
from pydantic import BaseModel

from ingest_api.registry.config import RegistrySettings


def get_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A connection per request from the app's settings (committed when the handler succeeds).

    Values the database refuses (a NUL character in text, an unknown program referenced, …)
    answer 400 instead of a server error; the transaction is rolled back.
    """
    url: str = request.app.state.settings.database_url
    with psycopg.connect(url, connect_timeout=5) as conn:
        try:
            yield conn
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            conn.rollback()
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HTTPException(400, f"rejected by the database: {detail}") from exc


class ErrorOut(BaseModel):
    """The body of a 4xx answer of these routers."""

    detail: str


# Documented on every route of the registry and figures routers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Refused (unknown reference, bad value)"},
    404: {"model": ErrorOut, "description": "Not found"},
}


def get_registry_settings() -> RegistrySettings:
    """The registry's settings from the environment."""
    return RegistrySettings()


def get_credential_key(
    settings: Annotated[RegistrySettings, Depends(get_registry_settings)],
) -> bytes:
    """The hashing key; without one members cannot be registered (400 with the reason).

    Not a 5xx: the service itself is healthy, only this write cannot be done until the
    operator sets the key (and there is deliberately no default key).
    """
    try:
        return settings.key()
    except RuntimeError as exc:
        raise HTTPException(400, f"registry not configured: {exc}") from exc


def get_actor(
    x_actor: Annotated[str, Header(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")],
) -> str:
    """Who is acting: the staff id the front end sends (the lead's auth layer will set it)."""
    return x_actor


ConnDep = Annotated[psycopg.Connection[Any], Depends(get_conn)]
ActorDep = Annotated[str, Depends(get_actor)]
KeyDep = Annotated[bytes, Depends(get_credential_key)]
