"""What a kiosk knows about itself for its heartbeat: temperature, disk, and its clock's offset.

The clock offset is estimated the way NTP does it, from round trips the device makes anyway:
a batch sent at device time t0 whose ack (stamped `acked_at` by the center, somewhere inside
the round trip) arrives at t1 gives offset = (t0 + t1) / 2 - acked_at, within ± half the round
trip. Of the last few samples the one with the shortest round trip is the most precise.
"""

from __future__ import annotations

import shutil
from collections import OrderedDict, deque
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from uuid import UUID

THERMAL_ROOT = Path("/sys/class/thermal")
# Zone types that are the CPU on a Raspberry Pi (cpu-thermal), x86 and common SoCs.
_CPU_ZONES = ("cpu", "x86_pkg_temp", "soc", "coretemp")


def cpu_temperature(root: Path = THERMAL_ROOT) -> float | None:
    """The CPU's temperature in °C from the kernel's thermal zones; None where there are none."""
    readings: list[tuple[str, float]] = []
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip().lower()
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        readings.append((kind, milli / 1000))
    for kind, celsius in readings:
        if any(name in kind for name in _CPU_ZONES):
            return round(celsius, 1)
    return round(readings[0][1], 1) if readings else None


def disk_space(path: Path) -> tuple[float | None, float | None]:
    """(free, total) MB of the file system holding `path` (the limit of an offline backlog)."""
    try:
        usage = shutil.disk_usage(path.resolve().parent)
    except OSError:
        return None, None
    return usage.free / 1_048_576, usage.total / 1_048_576


class ClockEstimator:
    """The device clock's offset from the center's, from the round trips of first sends."""

    def __init__(self, *, keep: int = 8, track: int = 256) -> None:
        """Keep the last `keep` samples; remember up to `track` batches in flight."""
        # first event id of a batch -> (device wall time, monotonic time) of its first send;
        # None once it was sent again (its ack may answer either copy: no sample from it).
        self._sent: OrderedDict[UUID, tuple[float, float] | None] = OrderedDict()
        self._track = track
        self._samples: deque[tuple[float, float]] = deque(maxlen=keep)

    def sent(self, first_event: UUID, *, wall: float, mono: float) -> None:
        """A batch starting with `first_event` went out at device time `wall`."""
        if first_event in self._sent:
            self._sent[first_event] = None
            return
        self._sent[first_event] = (wall, mono)
        while len(self._sent) > self._track:
            self._sent.popitem(last=False)

    def acked(self, committed: Iterable[UUID], acked_at: datetime, *, mono: float) -> None:
        """An ack arrived (monotonic time `mono`): a sample from each batch it completes."""
        for event_id in committed:
            first = self._sent.pop(event_id, None)
            if first is None:
                continue
            sent_wall, sent_mono = first
            rtt = mono - sent_mono
            if rtt < 0:
                continue
            # The device's wall clock mid-trip; the monotonic clock measured the trip itself.
            self._samples.append((rtt, sent_wall + rtt / 2 - acked_at.timestamp()))

    def reset(self) -> None:
        """After a reconnect what was in flight may be answered late or never: forget it."""
        for key in list(self._sent):
            self._sent[key] = None

    @property
    def offset_s(self) -> float | None:
        """Device clock minus the center's (+: device ahead), or None before any sample."""
        if not self._samples:
            return None
        return round(min(self._samples)[1], 3)

    @property
    def error_s(self) -> float | None:
        """Half the shortest round trip: how far off `offset_s` can be."""
        return min(self._samples)[0] / 2 if self._samples else None
