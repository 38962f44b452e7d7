"""One tap per card presentation: the driver-level debouncer every reader's reads pass through."""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_DEBOUNCE_S = 2.0


class Debouncer:
    """Suppress repeats of one identifier until it has been away for `window_s` seconds."""

    def __init__(
        self, window_s: float = DEFAULT_DEBOUNCE_S, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Remember reads for `window_s` seconds by the monotonic `clock`."""
        self.window_s = window_s
        self._clock = clock
        self._last_seen: dict[str, float] = {}

    def accept(self, identifier: str) -> bool:
        """True for a new tap; False for a repeat while the card is still (or again) there."""
        now = self._clock()
        # Sliding window: a card left lying on an NFC reader is seen every poll and must never
        # count twice, so every sighting (even a suppressed one) extends the quiet period.
        last = self._last_seen.get(identifier)
        self._last_seen[identifier] = now
        self._forget_older_than(now - self.window_s)
        return last is None or now - last >= self.window_s

    def _forget_older_than(self, cutoff: float) -> None:
        """Drop old sightings so the table stays small over a long day."""
        if len(self._last_seen) > 64:
            for key in [k for k, seen in self._last_seen.items() if seen < cutoff]:
                del self._last_seen[key]
