"""The central FastAPI app: its lifespan owns the database pool, the consumer and the refresher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from broker.const import SOFTWARE_VERSION
from ingest_api.core.config import Settings
from ingest_api.core.db import open_pool
from ingest_api.figures.refresher import RollupRefresher
from ingest_api.ingest.consumer import IngestConsumer
from ingest_api.registry.sync import FleetSync
from ingest_api.web import pages
from ingest_api.web.api import figures, fleet, ops, registry

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
        # Rosters and configurations for the kiosks (needs the master key to sign them).
        fleet_sync = FleetSync(settings) if consume and settings.credential_key else None
        if consume and fleet_sync is None:
            _LOG.warning("fleet sync off: set WELFARE_CREDENTIAL_KEY to send kiosks rosters")
        app.state.fleet = fleet_sync
        if refresher is not None:
            refresher.start()
        if consumer is not None:
            consumer.start()
        if fleet_sync is not None:
            fleet_sync.start()
        try:
            yield
        finally:
            if fleet_sync is not None:
                fleet_sync.stop()
            if consumer is not None:
                consumer.stop()
            if refresher is not None:
                refresher.stop()
            app.state.pool = None
            pool.close()

    app = FastAPI(
        title="Smart Welfare central service", version=SOFTWARE_VERSION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.consumer = None
    app.state.fleet = None
    app.state.pool = None
    for router in (ops.router, pages.router, registry.router, figures.router, fleet.router):
        app.include_router(router)
    return app
