"""The reader interface on its own: what any reader reports to its sink, and its supervision.

No agent here: readers hand raw identifiers and health to a `ReaderSink` (a recording one).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from broker.models import ReaderState
from broker.vocabulary import Method
from hardware.readers import (
    Deliver,
    ReaderSink,
    Report,
    SimulatedCardReader,
    ThreadedReader,
    run_readers,
)
from tests.edge_agent.meal_hall import NFC_UID, WEDGE_CARD, wait_for
from tests.hardware.conftest import RecordingSink


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the readers' task and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_simulator_reports_raw_reads_and_health() -> None:
    """Reads go out exactly as typed (no normalising); unplugged, nothing is read."""
    sink = RecordingSink()
    reader = SimulatedCardReader("desk")
    task = asyncio.create_task(run_readers([reader], sink))
    reader.present(f" {WEDGE_CARD}\n")
    await reader.drain()
    reader.unplug()
    reader.present(NFC_UID)  # presented while unplugged: never read
    await reader.drain()
    reader.plug()
    await reader.drain()
    await stop(task)
    assert sink.reads == [("desk", f" {WEDGE_CARD}\n", Method.CARD)]
    assert [(name, s.kind, s.connected) for name, s in sink.history] == [
        ("desk", "card", True),
        ("desk", "card", False),
        ("desk", "card", True),
    ]


async def test_simulated_nfc_reader_reports_its_kind_and_method() -> None:
    """An NFC reader's reads carry method NFC and its health kind 'nfc'."""
    sink = RecordingSink()
    reader = SimulatedCardReader("phone", kind="nfc", method=Method.NFC)
    task = asyncio.create_task(run_readers([reader], sink))
    reader.present(NFC_UID)
    await reader.drain()
    await stop(task)
    assert sink.reads == [("phone", NFC_UID, Method.NFC)]
    assert sink.history[0][1].kind == "nfc"


class ExplodingReader(SimulatedCardReader):
    """A reader whose driver fails `failures` times with an unexpected error, then works."""

    def __init__(self, name: str = "flaky", *, failures: int = 1) -> None:
        """Fail on the first `failures` runs."""
        super().__init__(name)
        self.retry_s = 0.01
        self.failures = failures
        self.runs = 0

    async def run(self, sink: ReaderSink) -> None:
        """Crash while failures remain."""
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError("driver bug")
        await super().run(sink)


async def test_crashed_reader_is_reported_and_restarted() -> None:
    """An unexpected error shows in health and the reader comes back by itself."""
    sink = RecordingSink()
    reader = ExplodingReader()
    task = asyncio.create_task(run_readers([reader], sink))
    await wait_for(lambda: reader.runs == 2, what="the restart")
    reader.present(WEDGE_CARD)
    await reader.drain()
    await stop(task)
    assert sink.reads == [("flaky", WEDGE_CARD, Method.CARD)]
    assert [(s.connected, s.detail) for _, s in sink.history] == [
        (False, "error: driver bug"),
        (True, "simulator"),
    ]


async def test_one_failing_reader_never_stops_the_others() -> None:
    """A reader that keeps crashing is retried while its neighbour goes on reading."""
    sink = RecordingSink()
    broken = ExplodingReader("broken", failures=1_000_000)
    working = SimulatedCardReader("working")
    task = asyncio.create_task(run_readers([broken, working], sink))
    await wait_for(lambda: broken.runs >= 3, what="several restarts of the broken reader")
    working.present(WEDGE_CARD)
    await working.drain()
    await stop(task)
    assert sink.reads == [("working", WEDGE_CARD, Method.CARD)]
    assert {name for name, s in sink.history if not s.connected} == {"broken"}


class ThreadReader(ThreadedReader):
    """A blocking driver: its thread reports connected, delivers cards, then dies or waits."""

    def __init__(self, cards: list[str], *, crash: bool) -> None:
        """Deliver `cards` from the worker thread; then crash, or wait to be stopped."""
        super().__init__("threaded", retry_s=0.01)
        self.cards = cards
        self.crash = crash
        self.threads = 0

    def read_blocking(self, stop: threading.Event, deliver: Deliver, report: Report) -> None:
        """Worker thread: open, read, then fail like a driver bug or wait for `stop`."""
        self.threads += 1
        report(True, "open")
        for card in self.cards:
            deliver(card)
        if self.crash and self.threads == 1:
            raise OSError("driver thread died")
        stop.wait()


async def test_threaded_reader_relays_reads_and_a_dead_thread_is_restarted() -> None:
    """Reads cross from the driver thread to the loop; a thread that dies is seen and restarted."""
    sink = RecordingSink()
    reader = ThreadReader([WEDGE_CARD], crash=True)
    task = asyncio.create_task(run_readers([reader], sink))
    await wait_for(lambda: reader.threads == 2 and len(sink.reads) == 2, what="the restart")
    await stop(task)
    assert sink.reads == [("threaded", WEDGE_CARD, Method.CARD)] * 2
    states: list[ReaderState] = [s for _, s in sink.history]
    assert [(s.connected, s.detail) for s in states] == [
        (True, "open"),
        (False, "error: driver thread died"),
        (True, "open"),
    ]
