"""Stop on SIGTERM as on Ctrl-C, so a command that started servers stops them."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM as Ctrl-C: unwind, so every server the command started is stopped."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup short
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt (then the previous handler is back).

    `timeout`, systemd and container runtimes stop with SIGTERM, whose default would end the
    process at once and leave its PostgreSQL, Mosquitto and service running.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
