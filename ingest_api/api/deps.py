"""FastAPI dependencies: settings and a database connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from ingest_api.core.config import IngestSettings


def get_settings(request: Request) -> IngestSettings:
    """The settings the app was created with."""
    settings: IngestSettings = request.app.state.settings
    return settings


def get_conn(
    settings: Annotated[IngestSettings, Depends(get_settings)],
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A database connection for one request."""
    with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
        yield conn


def query_error(field: str, message: str) -> RequestValidationError:
    """A 422 for a rule the schema cannot express, in FastAPI's usual error shape."""
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error", "input": None}]
    )


SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
ConnDep = Annotated[psycopg.Connection[tuple[object, ...]], Depends(get_conn)]
