"""A background thread that does one step every few seconds (the rollup, the housekeeping)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

_LOG = logging.getLogger(__name__)


class Periodic:
    """Runs `step` every `interval_s` in a daemon thread; failures are logged and retried."""

    def __init__(
        self, name: str, step: Callable[[], None], *, interval_s: float, first_at_once: bool
    ) -> None:
        """`first_at_once`: the first step right at start, not after one interval."""
        self._name = name
        self._step = step
        self._interval_s = interval_s
        self._first_at_once = first_at_once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the step in progress, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        """Step, wait, step…; a database outage is logged and retried at the next turn."""
        if not self._first_at_once and self._stop.wait(self._interval_s):
            return
        while True:
            try:
                self._step()
            except (psycopg.Error, OSError) as exc:
                _LOG.warning("%s failed (%s); retrying", self._name, exc)
            except Exception:  # a pool timeout while the database is away, say
                _LOG.exception("%s failed; retrying", self._name)
            if self._stop.wait(self._interval_s):
                return
