"""Buzzer and LEDs that tell a member at once whether the tap worked (gpiozero).

Patterns differ in count as well as colour, for members who cannot tell red from green or
cannot see the LED well: one short beep = done; two = already served today; three = refused.
Which tap result gets which signal is decided by the edge agent, which wires the drivers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gpiozero import LED, Buzzer

from broker.models import ReaderState


class SignalKind(StrEnum):
    """What the member should hear and see."""

    ACCEPTED = "accepted"
    ALREADY_SERVED = "already_served"
    REFUSED = "refused"
    CHOOSE = "choose"  # look at the screen and pick a class


@dataclass(frozen=True, slots=True)
class SignalTiming:
    """Durations in seconds; the defaults are long enough for slow ears and eyes."""

    beep_s: float = 0.15
    gap_s: float = 0.12
    led_s: float = 2.0


class Signal(ABC):
    """A buzzer and LEDs (or anything else) that signal a tap's outcome."""

    @abstractmethod
    def show(self, kind: SignalKind) -> None:
        """Signal `kind`; returns at once (the pattern plays in the background)."""

    @abstractmethod
    def state(self) -> ReaderState:
        """The device's health as the agent reports it."""


class GpioSignal(Signal):
    """A piezo buzzer and a green and a red LED on Raspberry Pi GPIO pins (BCM numbers)."""

    def __init__(
        self,
        *,
        buzzer_pin: int = 17,
        green_pin: int = 27,
        red_pin: int = 22,
        timing: SignalTiming | None = None,
        pin_factory: Any = None,
        background: bool = True,
    ) -> None:
        """Claim the pins; `pin_factory` is gpiozero's (MockFactory in tests)."""
        self.timing = timing or SignalTiming()
        # Background patterns never delay the next tap; tests play them in the foreground.
        self.background = background
        self.buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory)
        self.green = LED(green_pin, pin_factory=pin_factory)
        self.red = LED(red_pin, pin_factory=pin_factory)

    def show(self, kind: SignalKind) -> None:
        """Play the pattern of `kind` on the buzzer and the LEDs."""
        t = self.timing
        beeps = {
            SignalKind.ACCEPTED: 1,
            SignalKind.CHOOSE: 1,
            SignalKind.ALREADY_SERVED: 2,
            SignalKind.REFUSED: 3,
        }[kind]
        # A new pattern replaces one still playing, so the LED matches the latest tap.
        self.green.off()
        self.red.off()
        self.buzzer.beep(on_time=t.beep_s, off_time=t.gap_s, n=beeps, background=self.background)
        if kind is SignalKind.ACCEPTED:
            self.green.blink(on_time=t.led_s, off_time=0, n=1, background=self.background)
        elif kind is not SignalKind.CHOOSE:
            on = t.led_s / (2 * beeps)
            self.red.blink(on_time=on, off_time=on, n=beeps, background=self.background)

    def state(self) -> ReaderState:
        """GPIO outputs cannot report a fault; claimed pins count as connected."""
        return ReaderState(kind="buzzer", connected=not self.buzzer.closed)

    def close(self) -> None:
        """Release the pins."""
        for device in (self.buzzer, self.green, self.red):
            device.close()


class SimulatedSignal(Signal):
    """Records what it was asked to signal (demo, tests, kiosks without GPIO)."""

    def __init__(self) -> None:
        """Start with nothing signalled."""
        self.shown: list[SignalKind] = []

    def show(self, kind: SignalKind) -> None:
        """Remember `kind`."""
        self.shown.append(kind)

    def state(self) -> ReaderState:
        """Always connected."""
        return ReaderState(kind="buzzer", connected=True, detail="simulator")
