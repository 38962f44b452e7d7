"""Prometheus families of the fleet, read from the database at scrape time (never written)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from ingest_api.core.db import Conn
from ingest_api.fleet.const import AlertKind, DeviceState


def fleet_families(conn: Conn) -> list[GaugeMetricFamily]:
    """Devices by state, open alerts by kind and acknowledgement, the fleet's backlog."""
    states = dict.fromkeys((s.value for s in DeviceState), 0)
    backlog = 0
    for state, count, pending in conn.execute(
        "SELECT state, count(*), coalesce(sum(outbox_pending), 0) FROM device_status GROUP BY state"
    ):
        states[str(state)] = int(count)
        backlog += int(pending)
    devices = GaugeMetricFamily("welfare_devices", "Kiosks by state", labels=["state"])
    for state, count in states.items():
        devices.add_metric([state], count)
    open_alerts = {(k.value, a): 0 for k in AlertKind for a in ("false", "true")}
    for kind, acknowledged, count in conn.execute(
        "SELECT kind, acknowledged_at IS NOT NULL, count(*) FROM device_alerts "
        "WHERE resolved_at IS NULL GROUP BY 1, 2"
    ):
        open_alerts[(str(kind), "true" if acknowledged else "false")] = int(count)
    alerts = GaugeMetricFamily(
        "welfare_alerts_open",
        "Open alerts by kind, and whether an operator acknowledged them",
        labels=["kind", "acknowledged"],
    )
    for (kind, acknowledged), count in sorted(open_alerts.items()):
        alerts.add_metric([kind, acknowledged], count)
    pending = GaugeMetricFamily(
        "welfare_devices_outbox_pending",
        "Events not yet confirmed, summed over the kiosks' last heartbeats",
    )
    pending.add_metric([], backlog)
    return [devices, alerts, pending]
