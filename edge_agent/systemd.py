"""systemd's notify protocol (sd_notify(3)): readiness, a watchdog that proves liveness, stop.

A few lines over the datagram socket systemd names in $NOTIFY_SOCKET (an abstract socket when
it starts with '@'); without it (a desktop, a test) every call does nothing. The units in
firmware_config/ use Type=notify and WatchdogSec=: systemd restarts a service that stops
pinging, and a ping is sent only when the service's own check passes (the agent's event loop
runs and its database answers; the kiosk UI's frame clock ticks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

_LOG = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; whether there was a socket to send to."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        _LOG.warning("could not notify systemd (%s): %s", state.split("=", 1)[0], exc)
        return False
    return True


def watchdog_period() -> float | None:
    """Seconds between watchdog pings (half systemd's WatchdogSec=), None when not asked."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 1_000_000 / 2, 0.05)
    except ValueError:
        return None


async def _watchdog(period: float, check: Callable[[], Awaitable[bool]]) -> None:
    """Ping every `period` while `check` passes within it (a hung check misses pings)."""
    while True:
        try:
            async with asyncio.timeout(period):
                alive = await check()
        except TimeoutError:
            alive = False
        if alive:
            notify("WATCHDOG=1")
        else:
            _LOG.warning("watchdog check failed: systemd restarts the service if it persists")
        await asyncio.sleep(period)


@contextlib.asynccontextmanager
async def service(check: Callable[[], Awaitable[bool]], *, status: str = "") -> AsyncIterator[None]:
    """Tell systemd the service is ready, ping its watchdog while inside, stopping at exit."""
    notify("READY=1" + (f"\nSTATUS={status}" if status else ""))
    period = watchdog_period()
    task = asyncio.create_task(_watchdog(period, check), name="watchdog") if period else None
    try:
        yield
    finally:
        notify("STOPPING=1")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
