"""Where readers deliver what they read: debounce, normalise, hand to the edge agent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from broker.models import Method, ReaderState
from welfare.hashing import normalize_credential

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent
    from edge_agent.models import TapResult
    from hardware.readers import CredentialReader

_LOG = logging.getLogger(__name__)

DEFAULT_DEBOUNCE_S = 2.0


class ReaderSink(Protocol):
    """What a reader reports to: identifiers it read and its own health."""

    async def credential(self, reader: str, raw: str, method: Method) -> None:
        """Take one raw identifier as the reader produced it."""

    def reader_state(self, reader: str, state: ReaderState) -> None:
        """Take a change of the reader's health (plugged in, unplugged, error)."""


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


class ReaderHub:
    """Connect readers to the edge agent: one tap per card presentation, health per reader."""

    def __init__(
        self,
        agent: EdgeAgent,
        *,
        debounce: Debouncer | None = None,
    ) -> None:
        """Deliver to `agent`, suppressing repeats with `debounce` (2 s window by default)."""
        self.agent = agent
        self.debounce = debounce or Debouncer()
        self.results: list[TapResult] = []
        self.states: dict[str, ReaderState] = {}
        self._lock = asyncio.Lock()

    async def credential(self, reader: str, raw: str, method: Method) -> None:
        """Normalise, debounce and tap; a garbled read is logged and dropped, not refused."""
        try:
            identifier = normalize_credential(raw)
        except ValueError:
            # A half-read card or a stray key press is noise, not a person at the kiosk:
            # recording it as an 'unknown card' would mislead staff reading refusals.
            _LOG.warning("reader %s produced an unreadable identifier (%d chars)", reader, len(raw))
            return
        # One lock: two readers seeing the same phone at once must still make one tap.
        async with self._lock:
            if not self.debounce.accept(identifier):
                _LOG.debug("reader %s: repeat read suppressed", reader)
                return
            result = await self.agent.tap(identifier, method=method)
        self.results.append(result)

    def reader_state(self, reader: str, state: ReaderState) -> None:
        """Pass a health change to the agent, which reports it in the next health message."""
        if self.states.get(reader) != state:
            _LOG.info("reader %s: %s", reader, "connected" if state.connected else "disconnected")
        self.states[reader] = state
        self.agent.set_reader_state(reader, state)

    async def run(self, readers: Iterable[CredentialReader]) -> None:
        """Run every reader until cancelled; one failing reader never stops the others."""
        async with asyncio.TaskGroup() as group:
            for reader in readers:
                group.create_task(_supervise(reader, self), name=f"reader:{reader.name}")


async def _supervise(reader: CredentialReader, sink: ReaderSink) -> None:
    """Keep one reader running; an unexpected error is reported and the reader restarted."""
    while True:
        try:
            await reader.run(sink)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _LOG.exception("reader %s crashed; restarting", reader.name)
            sink.reader_state(
                reader.name,
                ReaderState(kind=reader.kind, connected=False, detail=f"error: {exc}"[:200]),
            )
            await asyncio.sleep(reader.retry_s)
