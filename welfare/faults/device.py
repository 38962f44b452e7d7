"""A simulated kiosk as its own process, so a test can SIGKILL it like a power cut.

Usage: python -m welfare.faults.device --db PATH --facility F --device D --port P
         --count N --rate R [--hours H] [--clock-file PATH] [--poison-every K] --log PATH
         (the device's broker password in WELFARE_TEST_DEVICE_PASSWORD)
It taps `count` cards at `rate` per second, then keeps publishing until every event is
confirmed (or refused and parked) by the center and exits 0. Each recorded tap's event id is
appended to `log`. With --clock-file, the device clock is off by the seconds the file holds
(a clock that jumps); with --poison-every K, every K-th tap is instead a visitor whose
neighbourhood holds a NUL character, which the center refuses and the device parks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from broker.config import MqttSettings
from broker.hashing import credential_hash
from broker.models import ProgramSession, Roster, RosterMember
from broker.vocabulary import Gender, ProgramKind
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings

# A realistic random-looking key: broker.config refuses placeholder-like ones.
KEY = b"3b9e0f5a7c2d41e8b6a09d3f5e7c1a24"
MEMBERS = 200


def card(n: int) -> str:
    """The card of member n."""
    return f"C{n:07X}"


def roster(facility: str, device: str) -> Roster:
    """A roster with an all-day program, so every tap decides something real."""
    return Roster(
        facility_id=facility,
        device_id=device,
        version="fault-v1",
        issued_at=datetime.now(UTC),
        programs=[
            ProgramSession(
                program_id="ALLDAY",
                name="종일 프로그램",
                kind=ProgramKind.MEAL,
                weekdays=[1, 2, 3, 4, 5, 6, 7],
                starts=time(0, 0),
                ends=time(23, 59, 59),
            )
        ],
        members=[
            RosterMember(
                member_ref=f"{facility}-{device}-{n}",
                display_name="홍길동",
                credential_hashes=[credential_hash(card(n), key=KEY)],
                program_ids=["ALLDAY"],
            )
            for n in range(MEMBERS)
        ],
    )


class SimClock:
    """Real time, or a clock that runs through `hours` of a day while taps are made."""

    def __init__(self, hours: float, count: int, offset_file: Path | None = None) -> None:
        """Spread `count` taps over `hours` when hours > 0; `offset_file` makes it jump."""
        self.start = datetime.now(UTC) - timedelta(hours=hours)
        self.step = timedelta(hours=hours) / max(count, 1) if hours else None
        self.n = 0
        self.offset_file = offset_file

    def offset(self) -> timedelta:
        """How far the device clock is off now (the soak writes the file)."""
        if self.offset_file is None:
            return timedelta(0)
        try:
            return timedelta(seconds=float(self.offset_file.read_text() or 0))
        except (OSError, ValueError):
            return timedelta(0)

    def __call__(self) -> datetime:
        """Now (simulated when a backlog of hours is replayed, off when the clock jumped)."""
        if self.step is None:
            return datetime.now(UTC) + self.offset()
        return self.start + self.step * self.n


async def main(args: argparse.Namespace) -> None:
    """Tap, then drain until confirmed."""
    clock = SimClock(args.hours, args.count, Path(args.clock_file) if args.clock_file else None)
    settings = EdgeSettings(
        facility_id=args.facility,
        device_id=args.device,
        database=Path(args.db),
        credential_key=KEY.decode(),
        resend_after_s=args.resend_after,
        health_interval_s=30,
        mqtt=MqttSettings(
            host="127.0.0.1",
            port=args.port,
            username=f"{args.facility}.{args.device}",
            password=os.environ["WELFARE_TEST_DEVICE_PASSWORD"],
        ),
    )
    async with EdgeAgent(settings, clock=clock) as agent:
        if await agent.store.roster_version() is None:
            await agent.load_roster(roster(args.facility, args.device))
        log = Path(args.log).open("a", buffering=1)  # noqa: ASYNC230, SIM115 - line-buffered log
        with log:
            for i in range(args.count):
                clock.n = i
                if args.poison_every and i % args.poison_every == args.poison_every - 1:
                    await agent.register_visitor(
                        gender=Gender.FEMALE,
                        age_band="75-79",
                        neighbourhood="중앙\x00동",  # JSON allows it, PostgreSQL refuses it
                        purpose="상담",
                    )
                    continue
                result = await agent.tap(card(i % MEMBERS))
                log.write(f"{result.event_id}\n")  # what the member was shown as recorded
                if args.rate:
                    await asyncio.sleep(1 / args.rate)
        while (await agent.store.stats()).pending:  # noqa: ASYNC110 - polling the store
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--facility", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--hours", type=float, default=0.0)
    parser.add_argument("--resend-after", type=float, default=3.0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--clock-file")
    parser.add_argument("--poison-every", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
