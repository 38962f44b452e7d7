"""The reader hub: one tap per card presentation, garbage dropped, health passed on."""

from __future__ import annotations

import asyncio
import contextlib

from broker.models import Method, Outcome
from edge_agent.agent import EdgeAgent
from edge_agent.models import Verdict
from hardware.hub import Debouncer, ReaderHub, ReaderSink
from hardware.readers import SimulatedCardReader
from tests.hardware.conftest import NFC_UID, WEDGE_CARD, RecordingHub, wait_for


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


async def test_simulated_reader_card_makes_one_attendance(agent: EdgeAgent) -> None:
    """Two quick reads of one card, a garbled read and an unplug: one event, health reported."""
    hub = ReaderHub(agent)
    reader = SimulatedCardReader("desk")
    task = asyncio.create_task(hub.run([reader]))
    reader.present(WEDGE_CARD)
    reader.present(f" {WEDGE_CARD}\n")  # the same card, typed again with whitespace
    reader.present("?!")  # noise from a half-read card
    await reader.drain()
    reader.unplug()
    await reader.drain()
    reader.present(NFC_UID)  # presented while unplugged: never read
    await reader.drain()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    events = await agent.store.all_events()
    assert [(e.member_ref, e.outcome, e.method) for e in events] == [
        ("M1", Outcome.ACCEPTED, Method.CARD)
    ]
    assert events[0].ticket_no == 1
    assert [r.verdict for r in hub.results] == [Verdict.ACCEPTED]
    health = await agent.health()
    assert health.readers["desk"].connected is False
    assert health.readers["desk"].kind == "card"


async def test_two_readers_seeing_one_card_make_one_tap(agent: EdgeAgent) -> None:
    """A phone held between two readers is one tap, not two."""
    hub = ReaderHub(agent)
    first, second = SimulatedCardReader("a"), SimulatedCardReader("b")
    task = asyncio.create_task(hub.run([first, second]))
    first.present(NFC_UID)
    second.present(NFC_UID.lower())
    await first.drain()
    await second.drain()
    await wait_for(lambda: len(hub.states) == 2, what="both readers reporting")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(await agent.store.all_events()) == 1


async def test_unknown_card_is_recorded_as_refusal(agent: EdgeAgent) -> None:
    """A valid but unknown card is a refusal the staff can see (unlike noise)."""
    hub = ReaderHub(agent)
    await hub.credential("desk", "DEADBEEF", Method.CARD)
    events = await agent.store.all_events()
    assert [e.outcome for e in events] == [Outcome.UNKNOWN_CREDENTIAL]
    assert events[0].member_ref is None


async def test_simulated_nfc_reader_taps_with_method_nfc(agent: EdgeAgent) -> None:
    """A simulated NFC reader reports kind 'nfc' and taps with method NFC."""
    hub = ReaderHub(agent)
    reader = SimulatedCardReader("phone", kind="nfc", method=Method.NFC)
    task = asyncio.create_task(hub.run([reader]))
    reader.present(NFC_UID)
    await reader.drain()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    [event] = await agent.store.all_events()
    assert (event.member_ref, event.method) == ("M2", Method.NFC)
    assert hub.states["phone"].kind == "nfc"


class ExplodingReader(SimulatedCardReader):
    """A reader whose driver fails once with an unexpected error, then works."""

    def __init__(self) -> None:
        """Fail on the first run only."""
        super().__init__("flaky")
        self.retry_s = 0.01
        self.runs = 0

    async def run(self, sink: ReaderSink) -> None:
        """Crash the first time."""
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("driver bug")
        await super().run(sink)


async def test_crashed_reader_is_reported_and_restarted(agent: EdgeAgent) -> None:
    """An unexpected error shows in health and the reader comes back by itself."""
    hub = RecordingHub(agent)
    reader = ExplodingReader()
    task = asyncio.create_task(hub.run([reader]))
    await wait_for(lambda: reader.runs == 2, what="the restart")
    reader.present(WEDGE_CARD)
    await reader.drain()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(await agent.store.all_events()) == 1
    assert [(s.connected, s.detail) for s in hub.history] == [
        (False, "error: driver bug"),
        (True, "simulator"),
    ]
