"""The card/NFC reader interface: what a reader reports to, the reader base classes, their
supervision, and the simulator the demo and tests use.

A reader knows nothing of the agent: it hands every raw identifier, exactly as the device
produced it, to a `ReaderSink`, and reports its own health there. Normalising, debouncing and
deciding are the sink's business (the edge agent's reader hub).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, Protocol

from broker.models import ReaderState
from broker.vocabulary import Method

_LOG = logging.getLogger(__name__)

ReaderKind = Literal["card", "nfc"]


class ReaderSink(Protocol):
    """What a reader reports to: identifiers it read and its own health."""

    async def credential(self, reader: str, raw: str, method: Method) -> None:
        """Take one raw identifier as the reader produced it."""

    def reader_state(self, reader: str, state: ReaderState) -> None:
        """Take a change of the reader's health (plugged in, unplugged, error)."""


class CredentialReader(ABC):
    """A device that reads member identifiers: runs until cancelled, reporting to a sink."""

    kind: ReaderKind = "card"
    method: Method = Method.CARD

    def __init__(self, name: str, *, retry_s: float = 2.0) -> None:
        """Name the reader as health reports show it; retry a lost device every `retry_s`."""
        self.name = name
        self.retry_s = retry_s

    @abstractmethod
    async def run(self, sink: ReaderSink) -> None:
        """Read until cancelled, delivering identifiers and health changes to `sink`."""

    def state(self, *, connected: bool, detail: str | None = None) -> ReaderState:
        """This reader's health as the agent reports it."""
        return ReaderState(kind=self.kind, connected=connected, detail=detail)


async def relay(
    worker: asyncio.Future[Any],
    queue: asyncio.Queue[str],
    handle: Callable[[str], Awaitable[None]],
) -> None:
    """Hand each read from a worker thread's queue to `handle`; re-raise if the worker dies.

    Without this a driver thread that crashed would leave the reader silently dead while
    its health still said "connected"; re-raising lets the hub report it and restart it.
    """
    while True:
        getter = asyncio.ensure_future(queue.get())
        try:
            done, _ = await asyncio.wait({getter, worker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter in done:
            await handle(getter.result())
            continue
        worker.result()  # raises the thread's exception
        raise RuntimeError("reader thread stopped")


Deliver = Callable[[str], None]
Report = Callable[[bool, str], None]


class ThreadedReader(CredentialReader):
    """A reader whose driver blocks: a worker thread reads, the event loop delivers."""

    async def run(self, sink: ReaderSink) -> None:
        """Read in a worker thread until cancelled, relaying reads and health to `sink`."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def deliver(identifier: str) -> None:
            """From the thread: hand an identifier to the event loop."""
            loop.call_soon_threadsafe(queue.put_nowait, identifier)

        def report(connected: bool, detail: str) -> None:
            """From the thread: report the device's health on the event loop."""
            loop.call_soon_threadsafe(
                sink.reader_state, self.name, self.state(connected=connected, detail=detail)
            )

        worker = asyncio.create_task(asyncio.to_thread(self.read_blocking, stop, deliver, report))

        async def handle(identifier: str) -> None:
            """Deliver one read to the sink."""
            await sink.credential(self.name, identifier, self.method)

        try:
            await relay(worker, queue, handle)
        finally:
            stop.set()  # the thread notices after its current read or poll
            # Wait for the thread rather than abandon it holding the device open.
            await asyncio.wait({worker}, timeout=5.0)

    @abstractmethod
    def read_blocking(self, stop: threading.Event, deliver: Deliver, report: Report) -> None:
        """Worker thread: open the device and read until `stop`, reporting loss and return."""


class SimulatedCardReader(CredentialReader):
    """A reader driven from code: `present()` a card, `unplug()` and `plug()` the device."""

    def __init__(
        self, name: str = "sim-card", *, kind: ReaderKind = "card", method: Method = Method.CARD
    ) -> None:
        """A simulated reader of the given kind (card or NFC)."""
        super().__init__(name)
        self.kind = kind
        self.method = method
        self._queue: asyncio.Queue[str | bool] = asyncio.Queue()

    def present(self, raw: str) -> None:
        """Present a card: the reader reports `raw` exactly as a real one would type it."""
        self._queue.put_nowait(raw)

    def unplug(self) -> None:
        """Pull the simulated reader out of its USB port."""
        self._queue.put_nowait(False)

    def plug(self) -> None:
        """Plug the simulated reader back in."""
        self._queue.put_nowait(True)

    async def run(self, sink: ReaderSink) -> None:
        """Deliver presented cards until cancelled; cards presented while unplugged are lost."""
        connected = True
        sink.reader_state(self.name, self.state(connected=True, detail="simulator"))
        while True:
            item = await self._queue.get()
            if isinstance(item, bool):
                connected = item
                sink.reader_state(self.name, self.state(connected=connected, detail="simulator"))
            elif connected:
                await sink.credential(self.name, item, self.method)
            self._queue.task_done()

    async def drain(self) -> None:
        """Wait until everything presented so far has been delivered."""
        await self._queue.join()


async def supervise(reader: CredentialReader, sink: ReaderSink) -> None:
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


async def run_readers(readers: Iterable[CredentialReader], sink: ReaderSink) -> None:
    """Run every reader until cancelled; one failing reader never stops the others."""
    async with asyncio.TaskGroup() as group:
        for reader in readers:
            group.create_task(supervise(reader, sink), name=f"reader:{reader.name}")
