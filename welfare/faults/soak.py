"""`welfare faults soak --minutes N`: the five centers' kiosks under random, overlapping faults.

One kiosk per center (A–E) taps steadily through the flaky proxy into real Mosquitto, two real
`welfare ingest consume` processes and a real PostgreSQL, while faults are drawn at random and
overlap: broker, ingest and database kills, partitions, lossy and stalled links, kiosk power
cuts and kiosk clocks jumping forward and back; now and then a kiosk records a visitor the
database refuses (a NUL character). Then the Jepsen-style check: attempted, confirmed, stored,
parked, lost, duplicated — and every refused event parked on its device.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from welfare.faults.harness import Counts, Device, FaultEnv

FACILITIES = ("A", "B", "C", "D", "E")
DOC = Path(__file__).parents[2] / "docs" / "reliability.md"
# Every fault the soak draws, with how long it lasts (seconds, drawn uniformly).
FAULTS: dict[str, tuple[float, float]] = {
    "broker_kill": (1.0, 8.0),
    "ingest_kill": (1.0, 10.0),
    "db_crash": (1.0, 8.0),
    "partition": (2.0, 20.0),
    "lossy_link": (5.0, 30.0),
    "stalled_link": (2.0, 10.0),
    "power_cut": (1.0, 6.0),
    "clock_jump": (5.0, 40.0),
}


@dataclass
class SoakResult:
    """What the soak did and what the check found."""

    minutes: float
    counts: Counts
    faults: Counter[str] = field(default_factory=Counter)
    most_at_once: int = 0

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing twice, every refused event parked, every event settled."""
        c = self.counts
        return (
            c.lost == 0
            and c.duplicated == 0
            and c.refused_unparked == 0
            and c.stored + c.parked == c.confirmed
        )

    def table(self) -> str:
        """The result as Markdown."""
        c = self.counts
        head = "| minutes | attempted | confirmed | stored | parked | lost | duplicated |"
        head += " refused, not parked | faults (overlapping, at most at once) |"
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        return "\n".join(
            [
                head,
                "|" + "---|" * 9,
                f"| {self.minutes:g} | {c.attempted} | {c.confirmed} | {c.stored} | {c.parked} "
                f"| {c.lost} | {c.duplicated} | {c.refused_unparked} "
                f"| {faults} ({self.most_at_once}) |",
            ]
        )


class _Soak:
    """The running soak: its environment, the faults in force and when each ends."""

    def __init__(self, env: FaultEnv, *, rate: float, poison_every: int, seed: int) -> None:
        """Bind to a started environment."""
        self.env = env
        self.rate = rate
        self.poison_every = poison_every
        self.rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self.active: dict[str, tuple[float, Callable[[], None]]] = {}
        self.faults: Counter[str] = Counter()
        self.most_at_once = 0
        self.until = 0.0

    def clock_file(self, device: Device) -> Path:
        """The file holding the device clock's offset in seconds."""
        return self.env.workdir / f"{device.ident.device_id}.clock"

    def start_device(self, device: Device) -> None:
        """(Re)start a kiosk tapping at the rate until the soak's end."""
        count = max(1, int(self.rate * max(0.0, self.until - time.monotonic())))
        self.env.start_device(
            device,
            count=count,
            rate=self.rate,
            extra=(
                "--clock-file",
                str(self.clock_file(device)),
                "--poison-every",
                str(self.poison_every),
            ),
        )

    def begin(self, kind: str, now: float) -> None:
        """Start one fault and remember how to end it."""
        env = self.env
        low, high = FAULTS[kind]
        ends = now + self.rng.uniform(low, high)
        undo: Callable[[], None]
        if kind == "broker_kill":
            env.broker.kill()
            undo = env.broker.start
        elif kind == "ingest_kill":
            victim = self.rng.choice(sorted(env.consumers))
            env.kill_consumer(victim)

            def undo() -> None:
                env.start_consumer(victim)

        elif kind == "db_crash":
            env.pg.stop("immediate")
            undo = env.pg.start
        elif kind == "partition":
            env.proxy.set_down(True)

            def undo() -> None:
                env.proxy.set_down(False)

        elif kind == "lossy_link":
            env.proxy.faults.loss = 0.1
            env.proxy.faults.latency_s = 0.05
            env.proxy.faults.jitter_s = 0.15

            def undo() -> None:
                env.proxy.faults.loss = 0.0
                env.proxy.faults.latency_s = 0.0
                env.proxy.faults.jitter_s = 0.0

        elif kind == "stalled_link":
            env.proxy.faults.stalled = True

            def undo() -> None:
                env.proxy.faults.stalled = False

        elif kind == "power_cut":
            device = self.rng.choice(env.devices)
            if device.proc is None or device.proc.poll() is not None:
                return
            env.power_cut(device)

            def undo() -> None:
                self.start_device(device)

        else:  # clock_jump: forward or back by up to three hours on one kiosk
            device = self.rng.choice(env.devices)
            jump = self.rng.choice((-1, 1)) * self.rng.uniform(600, 3 * 3600)
            self.clock_file(device).write_text(f"{jump:.0f}")

            def undo() -> None:
                self.clock_file(device).write_text("0")

            kind = f"clock_jump:{device.ident.device_id}"
        self.active[kind] = (ends, undo)
        self.faults[kind.split(":")[0]] += 1
        self.most_at_once = max(self.most_at_once, len(self.active))

    def end_due(self, now: float, *, everything: bool = False) -> None:
        """End the faults whose time is up (or all of them)."""
        for kind, (ends, undo) in list(self.active.items()):
            if everything or ends <= now:
                undo()
                del self.active[kind]

    def run(self, seconds: float, log: Callable[[str], None]) -> None:
        """Tap and inject until `seconds` have passed, then end every fault."""
        self.until = time.monotonic() + seconds
        for device in self.env.devices:
            self.clock_file(device).write_text("0")
            self.start_device(device)
        next_fault = time.monotonic() + self.rng.uniform(2, 6)
        while (now := time.monotonic()) < self.until:
            self.end_due(now)
            if now >= next_fault:
                # The kinds in force are not drawn again (one broker, one database), so faults
                # of different kinds overlap.
                free = [k for k in FAULTS if not any(a.split(":")[0] == k for a in self.active)]
                if free:
                    kind = self.rng.choice(free)
                    self.begin(kind, now)
                    log(
                        f"{seconds - (self.until - now):7.1f}s  {kind:13} in force: "
                        f"{', '.join(sorted(self.active))}"
                    )
                next_fault = now + self.rng.uniform(2, 8)
            time.sleep(0.2)
        self.end_due(time.monotonic(), everything=True)


def soak(
    workdir: Path,
    *,
    minutes: float,
    rate: float = 4.0,
    poison_every: int = 500,
    seed: int = 16,
    log: Callable[[str], None] = print,
) -> SoakResult:
    """Run the soak in `workdir`; returns the counts (the caller judges `ok`)."""
    env = FaultEnv(workdir, devices=len(FACILITIES), consumers=2, facilities=FACILITIES)
    try:
        env.start_consumers()
        run = _Soak(env, rate=rate, poison_every=poison_every, seed=seed)
        run.run(minutes * 60, log)
        log("faults over; waiting for every kiosk to settle")
        env.wait_devices(timeout=600)
        counts = env.counts(f"soak {minutes:g} min")
    finally:
        env.close()
    return SoakResult(minutes, counts, run.faults, run.most_at_once)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `welfare faults soak`."""
    faults = sub.add_parser("faults", help="fault injection on real servers")
    cmds = faults.add_subparsers(dest="faults_command", required=True)
    run = cmds.add_parser("soak", help="random overlapping faults, then the Jepsen-style check")
    run.add_argument("--minutes", type=float, required=True)
    run.add_argument("--rate", type=float, default=4.0, help="taps per second per kiosk")
    run.add_argument("--poison-every", type=int, default=500, help="a refused event per K taps")
    run.add_argument("--seed", type=int, default=16)
    run.add_argument("--workdir", type=Path, help="keep the servers' files here")
    run.add_argument("--report", action="store_true", help="write the table to the doc")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    """`welfare faults soak`: exit 1 unless nothing was lost or duplicated."""
    with tempfile.TemporaryDirectory(prefix="welfare-soak-") as tmp:
        result = soak(
            args.workdir or Path(tmp),
            minutes=args.minutes,
            rate=args.rate,
            poison_every=args.poison_every,
            seed=args.seed,
        )
    print(result.table())
    if args.report and DOC.exists():
        block = f"<!-- soak:begin -->\n{result.table()}\n<!-- soak:end -->"
        text = DOC.read_text()
        DOC.write_text(re.sub(r"<!-- soak:begin -->.*<!-- soak:end -->", block, text, flags=re.S))
    return 0 if result.ok else 1
