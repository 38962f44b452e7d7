"""Nothing lost, nothing counted twice: a steady stream through every fault we can inject.

Run alone with the full counts: WELFARE_FAULT_SCALE=full pytest -m faults -s
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import Scale, record
from welfare.faults.harness import FaultEnv

# Full scale takes minutes per scenario on a 2-core machine (30,000-event backlog).
pytestmark = [pytest.mark.faults, pytest.mark.timeout(1800)]


def _finish(env: FaultEnv, scenario: str, scale: Scale, *notes: str) -> None:
    """Wait for the devices to drain, count, record, and require lost = duplicated = 0."""
    env.wait_devices(timeout=120 + scale.backlog / 40)
    counts = env.counts(scenario)
    counts.notes.extend(notes)
    record(counts)
    assert counts.confirmed > 0
    assert counts.lost == 0, counts
    assert counts.duplicated == 0, counts
    assert counts.stored == counts.confirmed


def test_broker_sigkill(fault_env: FaultEnv, scale: Scale) -> None:
    """Mosquitto is SIGKILLed mid-stream and restarted: whatever it held unsaved is resent."""
    fault_env.start_consumers()
    fault_env.start_stream(count=scale.taps, rate=scale.rate)
    fault_env.wait_recorded(0.4)
    fault_env.broker.kill()
    time.sleep(1.5)
    fault_env.broker.start()
    _finish(fault_env, "broker SIGKILL + restart", scale)


def test_consumer_sigkill_mid_batch(fault_env: FaultEnv, scale: Scale) -> None:
    """The ingest process is SIGKILLed while writing: unacknowledged messages come back."""
    fault_env.start_consumers()
    fault_env.start_stream(count=scale.taps, rate=scale.rate)
    for progress in (0.3, 0.6):
        fault_env.wait_recorded(progress)
        fault_env.kill_consumer("ingest-1")
        time.sleep(1.0)
        fault_env.start_consumer("ingest-1")
    _finish(fault_env, "ingest SIGKILL x2 + restart", scale)


def test_postgres_restart(fault_env: FaultEnv, scale: Scale) -> None:
    """PostgreSQL stops (immediate = crash) and comes back: the consumer retries its batch."""
    fault_env.start_consumers()
    fault_env.start_stream(count=scale.taps, rate=scale.rate)
    fault_env.wait_recorded(0.4)
    fault_env.pg.stop("immediate")
    time.sleep(2.0)
    fault_env.pg.start()
    _finish(fault_env, "PostgreSQL crash + restart", scale)


def test_edge_power_cut(fault_env: FaultEnv, scale: Scale) -> None:
    """A kiosk is SIGKILLed between its writes and its publishes, then boots again."""
    fault_env.start_consumers()
    victim, others = fault_env.devices[0], fault_env.devices[1:]
    for device in others:
        fault_env.start_device(device, count=scale.taps, rate=scale.rate)
    # The victim taps as fast as it can, so its publisher is always behind its writes.
    fault_env.start_device(victim, count=scale.taps * 4, rate=0)
    while len(fault_env.device_events(victim)) < scale.taps:
        time.sleep(0.01)
    # A moment without link makes sure some writes have not been published at the cut too.
    fault_env.proxy.set_down(True)
    written = len(fault_env.device_events(victim))
    while len(fault_env.device_events(victim)) < written + 20:
        time.sleep(0.01)
    unpublished, unconfirmed = fault_env.power_cut(victim)
    fault_env.proxy.set_down(False)
    assert unpublished > 0, "the cut missed the window between write and publish"
    assert unconfirmed > unpublished, "no event was in flight (sent, unconfirmed) at the cut"
    fault_env.start_device(victim, count=scale.taps // 4, rate=scale.rate)
    _finish(
        fault_env,
        "kiosk power cut (SIGKILL) + reboot",
        scale,
        f"at the cut: {unpublished} unpublished, {unconfirmed} unconfirmed",
    )


def test_long_offline_backlog(fault_env: FaultEnv, scale: Scale) -> None:
    """A kiosk is cut off while hours of taps pile up, then its link comes back."""
    fault_env.start_consumers()
    fault_env.proxy.set_down(True)
    offline = fault_env.devices[0]
    fault_env.start_device(offline, count=scale.backlog, rate=0, hours=6)
    for device in fault_env.devices[1:]:
        fault_env.start_device(device, count=scale.taps, rate=scale.rate)
    deadline = time.monotonic() + 300
    while len(fault_env.device_events(offline)) < scale.backlog and time.monotonic() < deadline:
        time.sleep(0.2)  # the backlog is recorded locally while offline
    backlog = fault_env.pending(offline)
    fault_env.proxy.set_down(False)
    _finish(
        fault_env, "kiosk offline 6 h of taps, then back", scale, f"backlog of {backlog} drained"
    )


def test_degraded_link(fault_env: FaultEnv, scale: Scale) -> None:
    """Latency, jitter and random TCP resets between the kiosks and the broker."""
    fault_env.proxy.faults.latency_s = 0.05
    fault_env.proxy.faults.jitter_s = 0.15
    fault_env.proxy.faults.reset_per_s = 0.5
    fault_env.start_consumers()
    fault_env.start_stream(count=scale.taps, rate=scale.rate)
    fault_env.wait_recorded(0.9)
    fault_env.proxy.faults.reset_per_s = 0.0  # let it settle so the run ends
    _finish(
        fault_env, "link: 50-200 ms latency, TCP resets", scale, f"{fault_env.proxy.resets} resets"
    )


@pytest.mark.parametrize("fault_env", [3], indirect=True)
def test_shared_subscription_consumer_killed(fault_env: FaultEnv, scale: Scale) -> None:
    """Three consumers share the stream (MQTT v5 $share); one is SIGKILLed and stays dead."""
    fault_env.start_consumers()
    fault_env.start_stream(count=scale.taps, rate=scale.rate)
    fault_env.wait_recorded(0.4)
    fault_env.kill_consumer("ingest-2")
    _finish(fault_env, "3 shared consumers, one SIGKILLed", scale)
