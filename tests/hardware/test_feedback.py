"""Buzzer and LEDs on gpiozero's mock pins: what a member hears and sees after a tap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from broker.models import Method
from edge_agent.agent import EdgeAgent
from edge_agent.models import TapResult, Verdict
from hardware.feedback import GpioSignal, SignalKind, SignalTiming, SimulatedSignal, signal_kind
from tests.hardware.conftest import WEDGE_CARD

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


def test_every_refusal_sounds_like_a_refusal() -> None:
    """Unknown card, inactive member, not enrolled and no service all map to 'refused'."""
    refusals = [
        Verdict.UNKNOWN_CREDENTIAL,
        Verdict.INACTIVE_MEMBER,
        Verdict.NOT_ENROLLED,
        Verdict.NO_SERVICE,
    ]
    kinds = {signal_kind(TapResult(verdict=v, method=Method.CARD)) for v in refusals}
    assert kinds == {SignalKind.REFUSED}


async def test_attached_signal_follows_the_agent(agent: EdgeAgent, pins: MockFactory) -> None:
    """Tapping the same card twice at the meal hall: one beep, then two (already served)."""
    gpio = GpioSignal(timing=FAST, pin_factory=pins, background=False)
    simulated = SimulatedSignal()
    gpio.attach(agent)
    simulated.attach(agent)
    await agent.tap(WEDGE_CARD, method=Method.CARD)
    await agent.tap(WEDGE_CARD, method=Method.CARD)
    assert simulated.shown == [SignalKind.ACCEPTED, SignalKind.ALREADY_SERVED]
    assert rises(pins, 17) == 3
    assert rises(pins, 27) == 1
    assert gpio.state().connected
    gpio.close()
    assert not gpio.state().connected
