"""A kiosk's view of itself: CPU temperature, its clock's offset, its heartbeat, its metrics."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from broker.models import ReaderState
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from edge_agent.health import ClockEstimator, cpu_temperature
from edge_agent.metrics import serve_metrics
from tests.edge_agent.conftest import CARDS, KEY


def _zone(root: Path, n: int, kind: str, milli: str) -> None:
    """A fake /sys/class/thermal/thermal_zone<n>."""
    zone = root / f"thermal_zone{n}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n")
    (zone / "temp").write_text(milli + "\n")


def test_cpu_temperature_from_the_kernels_thermal_zones(tmp_path: Path) -> None:
    """The CPU zone where there is one (Raspberry Pi: cpu-thermal), else the first, else None."""
    assert cpu_temperature(tmp_path / "none") is None
    _zone(tmp_path / "pi", 0, "gpu-thermal", "41000")
    _zone(tmp_path / "pi", 1, "cpu-thermal", "48312")
    assert cpu_temperature(tmp_path / "pi") == 48.3
    _zone(tmp_path / "other", 0, "acpitz", "30500")
    _zone(tmp_path / "other", 1, "broken", "n/a")
    assert cpu_temperature(tmp_path / "other") == 30.5


def test_clock_offset_from_ack_round_trips() -> None:
    """A device 5 s ahead is measured as +5 s within half the shortest round trip."""
    clock = ClockEstimator()
    assert clock.offset_s is None
    center = 1_800_000_000.0  # the center's clock when each batch leaves
    samples = [(0.40, 0.30), (0.06, 0.02), (0.90, 0.10)]  # (round trip, when the center acks)
    for n, (rtt, ack_after) in enumerate(samples):
        first = uuid.uuid4()
        sent = center + 100 * n
        clock.sent(first, wall=sent + 5.0, mono=sent)
        acked_at = datetime.fromtimestamp(sent + ack_after, tz=UTC)
        clock.acked([uuid.uuid4(), first], acked_at, mono=sent + rtt)
    assert clock.error_s == pytest.approx(0.03)  # the 60 ms round trip is the most precise
    assert clock.offset_s is not None
    assert abs(clock.offset_s - 5.0) <= clock.error_s
    assert clock.offset_s == 5.01


def test_resent_batches_give_no_sample() -> None:
    """An ack may answer the first copy of a resent batch: its round trip is unknown."""
    clock = ClockEstimator()
    first, other = uuid.uuid4(), uuid.uuid4()
    clock.sent(first, wall=100.0, mono=100.0)
    clock.sent(first, wall=130.0, mono=130.0)  # resent after 30 s
    clock.sent(other, wall=140.0, mono=140.0)
    clock.reset()  # a reconnect: whatever was in flight may be answered late
    clock.acked([first, other], datetime.fromtimestamp(131.0, tz=UTC), mono=150.0)
    assert clock.offset_s is None


async def test_heartbeat_carries_what_operators_need(agent: EdgeAgent) -> None:
    """Outbox depth and age, roster, readers, disk, interval; no ack yet, so no offset."""
    await agent.tap(CARDS["meal"])
    await agent.tap("DEADBEEF")
    agent.set_reader_state("card-usb", ReaderState(kind="card", connected=False, detail="x"))
    health = await agent.health()
    assert health.outbox_pending == 2
    assert health.oldest_pending_at is not None
    assert health.roster_version == "v1"
    assert health.readers["card-usb"].connected is False
    assert health.disk_free_mb is not None
    assert health.disk_total_mb is not None
    assert 0 < health.disk_free_mb <= health.disk_total_mb
    assert health.heartbeat_interval_s == agent.settings.health_interval_s
    assert (health.last_ack_at, health.clock_offset_s, health.online_since) == (None, None, None)


async def test_metrics_are_served_on_localhost(agent: EdgeAgent) -> None:
    """Tap latency histogram, taps by outcome and the outbox depth, in Prometheus' format."""
    for card in (CARDS["meal"], CARDS["meal"], "DEADBEEF"):
        await agent.tap(card)
    async with serve_metrics(agent, host="127.0.0.1", port=0) as port:
        assert port is not None
        async with serve_metrics(agent, host="127.0.0.1", port=port) as taken:
            assert taken is None  # the port is in use: no metrics, but no crash either
        text = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("welfare_edge_tap_seconds_count", ())] == 3
    assert samples[("welfare_edge_taps_total", (("outcome", "accepted"),))] == 1
    assert samples[("welfare_edge_taps_total", (("outcome", "already_served"),))] == 1
    assert samples[("welfare_edge_taps_total", (("outcome", "unknown_credential"),))] == 1
    assert samples[("welfare_edge_outbox_pending", ())] == 3
    assert samples[("welfare_edge_broker_connected", ())] == 0


def test_settings_of_the_heartbeat_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """WELFARE_WILL_DELAY_S and WELFARE_METRICS_PORT (off serves none)."""
    monkeypatch.setenv("WELFARE_WILL_DELAY_S", "15")
    monkeypatch.setenv("WELFARE_METRICS_PORT", "off")
    settings = EdgeSettings(facility_id="B", device_id="k1", credential_key=KEY.decode())
    assert (settings.will_delay_s, settings.metrics_port) == (15, None)
    monkeypatch.setenv("WELFARE_METRICS_PORT", "9200")
    assert (
        EdgeSettings(facility_id="B", device_id="k1", credential_key=KEY.decode()).metrics_port
        == 9200
    )
    monkeypatch.setenv("WELFARE_METRICS_PORT", "70000")
    with pytest.raises(ValidationError, match="metrics_port"):
        EdgeSettings(facility_id="B", device_id="k1", credential_key=KEY.decode())
