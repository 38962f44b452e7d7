"""GET /metrics: the central service in Prometheus' text format, for the operators' tools.

Totals of every ingest worker and the fleet's gauges are read from the database at scrape
time; the batch latency and queue depth are this process's own consumer's (a worker started
with `welfare ingest consume --metrics-port` serves its own). The names are listed in
docs/fleet.md. Reading them writes nothing. Prometheus scrapes with a service token of scope
`fleet.read` (`welfare token add prometheus --scope fleet.read`, bearer_token in its config).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest

from ingest_api.core.db import Conn
from ingest_api.core.deps import ERROR_RESPONSES, ConnDep, FleetReader
from ingest_api.fleet.metrics import fleet_families
from ingest_api.ingest.metrics import Snapshot, ingest_totals

router = APIRouter(tags=["operations"], responses=ERROR_RESPONSES)
# The classic text format that every Prometheus (2.x and 3.x) scrapes.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def exposition(conn: Conn, request: Request) -> bytes:
    """The whole exposition: database-wide families, then this process's consumer."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot([*ingest_totals(conn), *fleet_families(conn)]))
    text = generate_latest(registry)
    consumer = getattr(request.app.state, "consumer", None)
    if consumer is not None:
        text += generate_latest(consumer.metrics.registry)
    return text


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {PROMETHEUS_TEXT: {}}, "description": "Prometheus text"}},
)
def metrics(conn: ConnDep, request: Request, _reader: FleetReader) -> Response:
    """Prometheus metrics of the ingest and the fleet (a scraper uses a fleet.read token)."""
    return Response(exposition(conn, request), media_type=PROMETHEUS_TEXT)
