"""Buzzer and LEDs on gpiozero's mock pins: what a member hears and sees for each signal.

Which tap result gets which signal is the agent's wiring (tests/edge_agent/test_devices.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from hardware.feedback import GpioSignal, SignalKind, SignalTiming, SimulatedSignal

FAST = SignalTiming(beep_s=0.01, gap_s=0.01, led_s=0.02)


@pytest.fixture
def pins() -> MockFactory:
    """gpiozero's mock pin factory."""
    return MockFactory()


@pytest.fixture
def signal(pins: MockFactory) -> Iterator[GpioSignal]:
    """A buzzer on BCM 17 and LEDs on 27 (green) and 22 (red), patterns played in foreground."""
    device = GpioSignal(timing=FAST, pin_factory=pins, background=False)
    yield device
    device.close()


def rises(pins: MockFactory, number: int) -> int:
    """How many times the pin went high."""
    return sum(1 for s in pins.pin(number).states if s.state is True)


@pytest.mark.parametrize(
    ("kind", "beeps", "green", "red"),
    [
        (SignalKind.ACCEPTED, 1, 1, 0),
        (SignalKind.ALREADY_SERVED, 2, 0, 2),
        (SignalKind.REFUSED, 3, 0, 3),
        (SignalKind.CHOOSE, 1, 0, 0),
    ],
)
def test_patterns_differ_in_count_and_colour(
    signal: GpioSignal, pins: MockFactory, kind: SignalKind, beeps: int, green: int, red: int
) -> None:
    """Each outcome has its own number of beeps and LED flashes; all end switched off."""
    signal.show(kind)
    assert (rises(pins, 17), rises(pins, 27), rises(pins, 22)) == (beeps, green, red)
    assert [pins.pin(n).state for n in (17, 27, 22)] == [False, False, False]


def test_simulated_signal_remembers_what_it_showed() -> None:
    """The simulator (demo, kiosks without GPIO) keeps the signals in order and is connected."""
    simulated = SimulatedSignal()
    simulated.show(SignalKind.ACCEPTED)
    simulated.show(SignalKind.REFUSED)
    assert simulated.shown == [SignalKind.ACCEPTED, SignalKind.REFUSED]
    assert simulated.state().connected


def test_closed_gpio_signal_reports_disconnected(pins: MockFactory) -> None:
    """Claimed pins count as connected; released ones do not."""
    gpio = GpioSignal(timing=FAST, pin_factory=pins, background=False)
    assert gpio.state().connected
    gpio.close()
    assert not gpio.state().connected
