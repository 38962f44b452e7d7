"""The central FastAPI app; the MQTT consumer starts and stops with it (lifespan)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from ingest_api.api import pages, routes
from ingest_api.consumer import IngestConsumer
from ingest_api.core.config import IngestSettings
from welfare import __version__

_LOG = logging.getLogger(__name__)
# Routers of other features, included when present.
OPTIONAL_ROUTERS = ("ingest_api.api.registry", "ingest_api.api.figures")


def _optional_routers() -> list[APIRouter]:
    """Routers of features that are installed in this tree."""
    found = []
    for name in OPTIONAL_ROUTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        found.append(module.router)
    return found


def create_app(settings: IngestSettings, *, consume: bool = True) -> FastAPI:
    """Build the app; with `consume` the MQTT consumer runs for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        consumer = IngestConsumer(settings) if consume else None
        app.state.consumer = consumer
        if consumer is not None:
            consumer.start()
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop()

    app = FastAPI(title="Smart Welfare central service", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.consumer = None
    app.include_router(routes.router)
    app.include_router(pages.router)
    for router in _optional_routers():
        app.include_router(router)
    return app
