"""A TCP proxy between devices and the broker that adds latency, loss, resets and outages."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from dataclasses import dataclass

from welfare.services.ports import free_port


@dataclass
class LinkFaults:
    """What the link does to traffic right now (changed by the test while it runs)."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    reset_per_s: float = 0.0  # chance per connection per second of a TCP reset
    down: bool = False  # refuse new connections and cut existing ones
    # Packet loss as the endpoints' TCP sees it: a lost segment arrives after a retransmission
    # timeout (doubling while it keeps being lost), and everything behind it waits (in-order
    # delivery), so the stream is delayed, never corrupted.
    loss: float = 0.0
    rto_s: float = 0.2  # Linux's minimum retransmission timeout
    # A black hole: nothing gets through, but no side is told (no reset, no FIN), as when a
    # mobile link stalls; the bytes wait and arrive when it ends, like retransmissions would.
    stalled: bool = False


class FlakyProxy:
    """127.0.0.1:<port> -> 127.0.0.1:<target>, with faults; runs its own event loop thread."""

    def __init__(self, target_port: int, *, seed: int = 1) -> None:
        """Prepare; `start()` listens."""
        self.target_port = target_port
        self.port = free_port()
        self.faults = LinkFaults()
        self.resets = 0
        self.lost = 0  # transmissions "lost" (each delays its chunk by a retransmission timeout)
        self.worst_burst = 0  # the most times one chunk was lost in a row
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> None:
        """Listen in the background."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def stop(self) -> None:
        """Close everything."""
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def set_down(self, down: bool) -> None:
        """Cut the link (and every connection on it), or restore it."""
        self.faults.down = down
        if down:
            asyncio.run_coroutine_threadsafe(self._reset_all(), self._loop).result(10)

    async def _listen(self) -> None:
        """Accept device connections."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _close_all(self) -> None:
        """Stop listening and drop connections."""
        if self._server is not None:
            self._server.close()
        await self._reset_all()

    async def _reset_all(self) -> None:
        """Reset every open connection."""
        for writer in list(self._writers):
            self._reset(writer)

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        """Abort a connection with a TCP RST (SO_LINGER 0), like a flaky mobile link."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        self._writers.discard(writer)
        self.resets += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Pipe one device connection to the broker through the faults."""
        if self.faults.down:
            self._reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self._reset(writer)
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pipe(reader, up_writer, writer),
            self._pipe(up_reader, writer, up_writer),
            return_exceptions=True,
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, peer: asyncio.StreamWriter
    ) -> None:
        """Copy bytes one way, delaying or resetting as the faults say.

        Reading and delivering are apart: each chunk is released at its arrival plus its own
        delay (latency, jitter, retransmissions), but never before the chunk ahead of it —
        in order, like TCP, without one chunk's delay adding to the next one's.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes, float] | None] = asyncio.Queue()
        deliverer = asyncio.create_task(self._deliver(queue, dst, peer))
        try:
            while not deliverer.done():
                data = await src.read(65536)
                if not data or self.faults.down:
                    break
                queue.put_nowait((loop.time(), data, self._delay()))
        except OSError:
            pass
        finally:
            queue.put_nowait(None)
            await deliverer
        dst.close()

    def _delay(self) -> float:
        """How long one chunk takes beyond the wire: latency, jitter and lost transmissions."""
        delay = self.faults.latency_s + self._rng.random() * self.faults.jitter_s
        rto, burst = self.faults.rto_s, 0
        while self.faults.loss and self._rng.random() < self.faults.loss:
            delay += rto
            rto = min(rto * 2, 60.0)
            burst += 1
        self.lost += burst
        self.worst_burst = max(self.worst_burst, burst)
        return delay

    async def _deliver(
        self,
        queue: asyncio.Queue[tuple[float, bytes, float] | None],
        dst: asyncio.StreamWriter,
        peer: asyncio.StreamWriter,
    ) -> None:
        """Write the chunks in order, each at its release time; reset when the faults say."""
        loop = asyncio.get_running_loop()
        release = 0.0
        while (item := await queue.get()) is not None:
            arrived, data, delay = item
            release = max(release, arrived + delay)
            if (wait := release - loop.time()) > 0:
                await asyncio.sleep(wait)
            # The flag is flipped from the test's thread: polled, not an asyncio.Event.
            while self.faults.stalled and not self.faults.down:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            if self.faults.down:
                return
            if self.faults.reset_per_s and self._rng.random() < self.faults.reset_per_s * max(
                delay, 0.05
            ):
                self._reset(dst)
                self._reset(peer)
                return
            try:
                dst.write(data)
                await dst.drain()
            except OSError:
                return
