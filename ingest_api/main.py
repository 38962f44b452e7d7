"""The central FastAPI app: its lifespan owns the pool, the consumer and the background work."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from broker.const import SOFTWARE_VERSION
from ingest_api.core.config import Settings
from ingest_api.core.db import open_pool
from ingest_api.core.maintenance import SecurityMaintenance
from ingest_api.figures.refresher import RollupRefresher
from ingest_api.fleet.monitor import FleetMonitor
from ingest_api.ingest.consumer import IngestConsumer
from ingest_api.registry.face import Describer
from ingest_api.registry.sync import FleetSync
from ingest_api.web import (
    desk,
    face_page,
    field,
    figures_pages,
    fleet,
    followup,
    guard,
    mealhall,
    pages,
    signin,
)
from ingest_api.web.api import audit, face, figures, kiosks, metrics, ops, registry

_LOG = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, consume: bool = True, face_describer: Describer | None = None
) -> FastAPI:
    """Build the app; with `consume` the MQTT consumer runs for the app's lifetime.

    `face_describer` turns an enrolment photo into face descriptors in memory (docs/face.md);
    without one, face enrolment at the desk answers that it is not available on this server.
    """

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
        monitor = (
            FleetMonitor(pool, rules=settings.fleet)
            if settings.fleet.check_interval_s > 0
            else None
        )
        maintenance = (
            SecurityMaintenance(pool, settings=settings)
            if settings.security.maintenance_interval_s > 0
            else None
        )
        # Rosters and configurations for the kiosks (needs the master key to sign them).
        fleet_sync = FleetSync(settings) if consume and settings.credential_key else None
        if consume and fleet_sync is None:
            _LOG.warning("fleet sync off: set WELFARE_CREDENTIAL_KEY to send kiosks rosters")
        app.state.fleet = fleet_sync
        background = [
            w for w in (maintenance, refresher, consumer, monitor, fleet_sync) if w is not None
        ]
        for worker in background:
            worker.start()
        try:
            yield
        finally:
            for worker in reversed(background):
                worker.stop()
            app.state.pool = None
            pool.close()

    app = FastAPI(
        title="Smart Welfare central service", version=SOFTWARE_VERSION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.consumer = None
    app.state.fleet = None
    app.state.pool = None
    app.state.face_describer = face_describer
    for router in (
        ops.router,
        pages.router,
        signin.router,
        registry.router,
        figures.router,
        audit.router,
        fleet.router,
        kiosks.router,
        metrics.router,
        face.router,
        face_page.router,
        desk.router,
        field.router,
        followup.router,
        figures_pages.router,
        mealhall.router,
    ):
        app.include_router(router)
    # The pages' CSS and scripts; vendor/ is filled by `make assets` from npm, never a CDN.
    static = resources.files("ingest_api.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # Refuses to build an app with a route that names no authorization decision.
    guard.install(app)
    return app
