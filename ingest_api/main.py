"""The central FastAPI app: its lifespan owns the database pool, the consumer and the refresher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from broker.const import SOFTWARE_VERSION
from ingest_api.core.config import Settings
from ingest_api.core.db import open_pool
from ingest_api.core.maintenance import SecurityMaintenance
from ingest_api.figures.refresher import RollupRefresher
from ingest_api.ingest.consumer import IngestConsumer
from ingest_api.web import guard, pages, signin
from ingest_api.web.api import audit, figures, ops, registry

_LOG = logging.getLogger(__name__)


def create_app(settings: Settings, *, consume: bool = True) -> FastAPI:
    """Build the app; with `consume` the MQTT consumer runs for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings)
        app.state.pool = pool
        refresher = (
            RollupRefresher(pool, interval_s=settings.refresh_interval_s)
            if settings.refresh_interval_s > 0
            else None
        )
        consumer = IngestConsumer(settings) if consume else None
        app.state.consumer = consumer
        maintenance = (
            SecurityMaintenance(pool, settings=settings)
            if settings.security.maintenance_interval_s > 0
            else None
        )
        if maintenance is not None:
            maintenance.start()
        if refresher is not None:
            refresher.start()
        if consumer is not None:
            consumer.start()
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop()
            if refresher is not None:
                refresher.stop()
            if maintenance is not None:
                maintenance.stop()
            app.state.pool = None
            pool.close()

    app = FastAPI(
        title="Smart Welfare central service", version=SOFTWARE_VERSION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.consumer = None
    app.state.pool = None
    for router in (
        ops.router,
        pages.router,
        signin.router,
        registry.router,
        figures.router,
        audit.router,
    ):
        app.include_router(router)
    # Refuses to build an app with a route that names no authorization decision.
    guard.install(app)
    return app
