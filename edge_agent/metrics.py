"""The edge agent's own Prometheus metrics, served on localhost for the kiosk's operators.

`welfare edge run` serves them on WELFARE_METRICS_HOST:WELFARE_METRICS_PORT (127.0.0.1:9101 by
default; docs/fleet.md lists the names). The outbox gauges are refreshed every few seconds
from the store, whether or not the kiosk is connected — offline is when they matter most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

_LOG = logging.getLogger(__name__)
# A tap is committed in a few milliseconds on an SD card; past 0.5 s a senior notices.
TAP_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
REFRESH_S = 2.0


class EdgeMetrics:
    """One agent's metrics, in a registry of its own (a test process runs many agents)."""

    def __init__(self) -> None:
        """Create the metrics."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.tap_seconds = Histogram(
            "welfare_edge_tap_seconds",
            "From a card, NFC or face identification to the decision committed on the device",
            buckets=TAP_BUCKETS,
            registry=self.registry,
        )
        self.taps = Counter(
            "welfare_edge_taps",
            "Tap results shown, by outcome (choose: a class must be picked first)",
            ["outcome"],
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "welfare_edge_outbox_pending",
            "Events stored on the device and not yet confirmed by the center",
            registry=self.registry,
        )
        self.oldest_pending_age = Gauge(
            "welfare_edge_outbox_oldest_age_seconds",
            "Age of the oldest unconfirmed event (0 when none)",
            registry=self.registry,
        )
        self.connected = Gauge(
            "welfare_edge_broker_connected",
            "1 while the agent is connected to the broker",
            registry=self.registry,
        )
        self.peer_applied = Counter(
            "welfare_edge_peer_serves",
            "Serves of the hall's other kiosks received: applied, known, conflict (served twice)",
            ["result"],
            registry=self.registry,
        )
        self.peer_ignored = Counter(
            "welfare_edge_peer_ignored",
            "Peer messages ignored: invalid, other_facility, wrong_device",
            ["reason"],
            registry=self.registry,
        )
        self.clock_offset = Gauge(
            "welfare_edge_clock_offset_seconds",
            "Device clock minus the center's, from ack round trips (NaN before the first)",
            registry=self.registry,
        )

    async def refresh(self, agent: EdgeAgent) -> None:
        """Bring the gauges up to date from the agent and its store."""
        stats = await agent.store.stats()
        self.outbox_pending.set(stats.pending)
        age = time.time() - stats.oldest_pending_at if stats.oldest_pending_at else 0.0
        self.oldest_pending_age.set(max(age, 0.0))
        self.connected.set(1.0 if agent.online else 0.0)
        offset = agent.clock_estimator.offset_s
        self.clock_offset.set(float("nan") if offset is None else offset)


@contextlib.asynccontextmanager
async def serve_metrics(agent: EdgeAgent, *, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve the agent's metrics over HTTP while inside; yields the port (0 picks one).

    A port already taken is logged and the agent runs on without metrics: taps matter more.
    """
    await agent.metrics.refresh(agent)
    try:
        server, thread = start_http_server(port, addr=host, registry=agent.metrics.registry)
    except OSError as exc:
        _LOG.warning("metrics not served on %s:%d: %s", host, port, exc)
        yield None
        return

    async def refresh_forever() -> None:
        """Refresh the gauges every few seconds; a failed read is logged and retried."""
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await agent.metrics.refresh(agent)
            except Exception:
                _LOG.exception("edge metrics refresh failed")

    task = asyncio.create_task(refresh_forever(), name="edge-metrics")
    try:
        yield int(server.server_address[1])
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.shutdown()
        server.server_close()
        thread.join(5)
