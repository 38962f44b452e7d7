"""The debouncer: one tap per card presentation, however often the reader sees the card."""

from __future__ import annotations

from hardware.debounce import Debouncer


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """Now."""
        return self.now


def test_debouncer_suppresses_repeats_until_the_card_has_been_away() -> None:
    """A card lying on the reader never re-taps; taken away for the window, it does."""
    clock = FakeMonotonic()
    debounce = Debouncer(2.0, clock=clock)
    assert debounce.accept("A")
    for _ in range(10):  # seen every 0.5 s for 5 s: still the same presentation
        clock.now += 0.5
        assert not debounce.accept("A")
    assert debounce.accept("B")  # another card is not held back by the first
    clock.now += 2.0
    assert debounce.accept("A")
