"""Edge: tap -> durable confirmation through `EdgeAgent.tap`, and a week's backlog draining.

Each phase runs in its own process (`python -m welfare.bench.edge SPEC.json`) so that its peak
resident memory is the agent's own. The backlog is written into the device's SQLite outbox
beforehand by the parent (as a week offline would have left it), then the agent starts with a
real broker and ingest; live taps go on at a fixed interval while it drains.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from broker.auth import DeviceIdentity
from welfare.bench.bed import Bed, wait_for_rows
from welfare.bench.payloads import event_json
from welfare.bench.results import Report, Row, percentile, ratio
from welfare.sample.centers import CENTERS, SEOUL, people, roster_for

_LOG = logging.getLogger(__name__)
GROUP = "2. Edge (kiosk agent, SQLite WAL synchronous=FULL)"
FACILITY, DEVICE = "B", "meal-1"
DEVICE_IDENTITY = DeviceIdentity(FACILITY, DEVICE)
# The hall's other kiosk, for peer sharing (a served meal reaching it).
PEER_IDENTITY = DeviceIdentity(FACILITY, "meal-2")
# Random-looking, as broker.config requires of a credential key.
KEY = "9d2c7e4a1f6b08e3c5a7d9b2e4f61c38"


@dataclass(frozen=True)
class EdgeScale:
    """Counts of one run."""

    taps: int = 2_000
    backlog: int = 100_000
    live_tap_interval_s: float = 0.1
    drain_timeout_s: float = 240.0
    peer_taps: int = 300  # a lunch rush of distinct members at one kiosk, the other listening


QUICK = EdgeScale(
    taps=20, backlog=200, live_tap_interval_s=0.05, drain_timeout_s=60.0, peer_taps=20
)


def _lunch_clock() -> Callable[[], datetime]:
    """A clock running from 11:45 (Seoul) of the latest meal day, so the meal hall is open."""
    day: date = datetime.now(SEOUL).date()
    while day.isoweekday() == 7:  # the meal hall is open Monday to Saturday
        day -= timedelta(days=1)
    base = datetime.combine(day, dtime(11, 45), SEOUL).astimezone(UTC)
    started = time.monotonic()
    return lambda: base + timedelta(seconds=time.monotonic() - started)


def prefill_backlog(path: Path, count: int) -> None:
    """Write `count` unsent events of the last 7 days into a fresh device outbox."""
    from edge_agent.store import EdgeStore

    async def create() -> None:
        """Create the device database's schema."""
        store = await EdgeStore.open(path)
        await store.close()

    asyncio.run(create())
    now = datetime.now(UTC)
    step = timedelta(days=7) / max(count, 1)
    start = now - timedelta(days=7)
    rows = []
    created = time.time() - 7 * 86400
    for i in range(count):
        event_id, body = event_json(
            start + step * i, member=i % 420, program_id="B-MEAL", ticket=i % 300 + 1
        )
        rows.append((event_id, body, created + i * 6.048))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO outbox (event_id, payload, created_at) VALUES (?, ?, ?)", rows
        )


def _max_seq(path: Path) -> int:
    """The last outbox sequence number (the end of the backlog)."""
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
    return int(row[0])


def _unconfirmed(path: Path, up_to: int) -> int:
    """Backlog events not yet confirmed by the center (read beside the agent, WAL allows it)."""
    with sqlite3.connect(path, timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox WHERE seq <= ? AND confirmed_at IS NULL", (up_to,)
        ).fetchone()
    return int(row[0])


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one phase inside this process."""
    from broker.config import MqttSettings
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import EdgeSettings

    mqtt = spec.get("mqtt")
    settings = EdgeSettings(
        facility_id=FACILITY,
        device_id=DEVICE,
        database=Path(spec["database"]),
        credential_key=KEY,
        mqtt=MqttSettings(**mqtt) if mqtt else None,
    )
    clock = _lunch_clock()
    center = next(c for c in CENTERS if c.facility_id == FACILITY)
    persons = [p for p in people(center) if "B-MEAL" in p.program_ids]
    cards = [p.card_uid for p in persons]
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    async with EdgeAgent(settings, clock=clock) as agent:
        await agent.load_roster(
            roster_for(center, DEVICE, persons, key=KEY.encode(), issued_at=clock())
        )

        async def tap(i: int) -> None:
            """Tap the i-th card and time it until the event is durable."""
            started = time.perf_counter()
            result = await agent.tap(cards[i % len(cards)])
            latencies.append((time.perf_counter() - started) * 1000)
            key = result.outcome.value if result.outcome is not None else "choose"
            outcomes[key] = outcomes.get(key, 0) + 1

        drain_s: float | None = None
        pending_at_start = (await agent.store.stats()).pending
        if spec["mode"] == "pure":
            for i in range(int(spec["taps"])):
                await tap(i)
        else:
            backlog_end = _max_seq(settings.database)
            started = time.monotonic()
            deadline = started + float(spec["drain_timeout_s"])
            interval = float(spec["live_tap_interval_s"])
            i = 0
            next_check = started
            while time.monotonic() < deadline:
                await tap(i)
                i += 1
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + 0.5
                    left = await asyncio.to_thread(_unconfirmed, settings.database, backlog_end)
                    if left == 0:
                        drain_s = time.monotonic() - started
                        break
                await asyncio.sleep(interval)
        stats = await agent.store.stats()
        left = (
            0
            if spec["mode"] == "pure"
            else await asyncio.to_thread(_unconfirmed, settings.database, backlog_end)
        )
    return {
        "backlog_confirmed_at_end": pending_at_start - left,
        "mode": spec["mode"],
        "taps": len(latencies),
        "tap_ms": latencies,
        "outcomes": outcomes,
        "pending_at_start": pending_at_start,
        "pending_at_end": stats.pending,
        "drain_s": drain_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def _hall_kiosk(spec: dict[str, Any], ident: DeviceIdentity) -> Any:
    """A started kiosk of the hall (an async context manager's result is entered by callers)."""
    from broker.config import MqttSettings
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import EdgeSettings

    settings = EdgeSettings(
        facility_id=FACILITY,
        device_id=ident.device_id,
        database=Path(spec["dir"]) / f"{ident.device_id}.sqlite3",
        credential_key=KEY,
        link_socket=None,
        metrics_port=None,
        mqtt=MqttSettings(**spec["mqtt"][ident.device_id]),
    )
    return EdgeAgent(settings, clock=_lunch_clock())


def _eaters() -> list[Any]:
    """The hall's active meal members."""
    center = next(c for c in CENTERS if c.facility_id == FACILITY)
    return [p for p in people(center) if "B-MEAL" in p.program_ids]


async def _online(agent: Any) -> None:
    """Until the agent is connected, and its subscriptions have settled."""
    async with asyncio.timeout(30):
        # `online` is a flag the MQTT thread sets: polled.
        while not agent.online:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)


async def _peer_listener(spec: dict[str, Any]) -> dict[str, Any]:
    """The hall's other kiosk, in a process of its own (another device): notes the wall-clock
    time each serve of the first kiosk is entered in its served log, until stdin closes."""
    center = next(c for c in CENTERS if c.facility_id == FACILITY)
    arrived: dict[str, float] = {}
    async with await _hall_kiosk(spec, PEER_IDENTITY) as agent:
        await agent.load_roster(
            roster_for(
                center,
                PEER_IDENTITY.device_id,
                _eaters(),
                key=KEY.encode(),
                issued_at=agent.clock(),
            )
        )
        receive = agent.peers.receive

        async def timed(topic_name: str, payload: bytes) -> str:
            """Receive, noting when the serve was applied (same host: one wall clock)."""
            result: str = await receive(topic_name, payload)
            arrived[json.loads(payload)["member_ref"]] = time.time()
            return result

        agent.peers.receive = timed
        await _online(agent)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # the tapping kiosk closes it when done
    return {"mode": "peer-listener", "arrived": arrived}


async def _peer_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Two kiosks of the hall, each its own process, on one broker: each tap at the first is
    timed until it is durable there, and until the second has entered it (peer sharing)."""
    center = next(c for c in CENTERS if c.facility_id == FACILITY)
    listener_spec = Path(spec["dir"]) / "peer-listener.json"
    listener_spec.write_text(json.dumps({**spec, "mode": "peer-listener"}))
    listener = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "welfare.bench.edge",
        str(listener_spec),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert listener.stdin is not None
    assert listener.stdout is not None
    tap_ms: list[float] = []
    started: dict[str, float] = {}
    try:
        async with asyncio.timeout(60):
            while (line := await listener.stdout.readline()) and line.strip() != b"ready":
                pass
        async with await _hall_kiosk(spec, DEVICE_IDENTITY) as agent:
            await agent.load_roster(
                roster_for(center, DEVICE, _eaters(), key=KEY.encode(), issued_at=agent.clock())
            )
            await _online(agent)
            eaters = [p for p in _eaters() if p.status.value == "active"]
            for person in eaters[: int(spec["taps"])]:
                started[person.member_ref] = time.time()
                began = time.perf_counter()
                await agent.tap(person.card_uid)
                tap_ms.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(float(spec["interval_s"]))
            await asyncio.sleep(2.0)  # the last serves on their way
    finally:
        listener.stdin.close()
        out, _ = await listener.communicate()
    arrived: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])["arrived"]
    reach_ms = [(arrived[m] - t) * 1000 for m, t in started.items() if m in arrived]
    return {
        "mode": "peer",
        "tap_ms": tap_ms,
        "reach_ms": reach_ms,
        "lost": len(started) - len(reach_ms),
    }


def _run_worker(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run a phase in a subprocess and return its result."""
    path = work / f"edge-{spec['mode']}.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run(
        [sys.executable, "-m", "welfare.bench.edge", str(path)],
        capture_output=True,
        text=True,
        timeout=float(spec.get("drain_timeout_s", 300)) + 120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"edge worker failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(bed: Bed, scale: EdgeScale, report: Report) -> None:
    """Measure the edge agent and add its rows to `report`."""
    work = bed.dir / "edge"
    work.mkdir(exist_ok=True)
    pure = _run_worker(
        {"mode": "pure", "database": str(work / "pure.sqlite3"), "taps": scale.taps}, work
    )
    backlog_db = work / "backlog.sqlite3"
    prefill_backlog(backlog_db, scale.backlog)
    url = bed.new_database("edge")
    ids = ["ingest-edge"]
    consumers = bed.start_consumers(url, ids)
    try:
        drain = _run_worker(
            {
                "mode": "drain",
                "database": str(backlog_db),
                "drain_timeout_s": scale.drain_timeout_s,
                "live_tap_interval_s": scale.live_tap_interval_s,
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": bed.broker.port,
                    "username": DEVICE_IDENTITY.username,
                    "password": bed.broker.passwords[DEVICE_IDENTITY.username],
                },
            },
            work,
        )
        expected = scale.backlog + int(drain["taps"])
        stored, _ = wait_for_rows(url, expected, timeout=30)
    finally:
        bed.stop(consumers)
        bed.clear_sessions(ids)
    peer = _run_worker(
        {
            "mode": "peer",
            "dir": str(work),
            "taps": scale.peer_taps,
            "interval_s": scale.live_tap_interval_s,
            "mqtt": {
                ident.device_id: {
                    "host": "127.0.0.1",
                    "port": bed.broker.port,
                    "username": ident.username,
                    "password": bed.broker.passwords[ident.username],
                }
                for ident in (DEVICE_IDENTITY, PEER_IDENTITY)
            },
        },
        work,
    )
    pure_ms = pure.pop("tap_ms")
    drain_ms = drain.pop("tap_ms")
    drain["stored_in_db"] = stored
    report.details["edge"] = {"scale": scale.__dict__, "pure": pure, "drain": drain}
    for q in (50, 99):
        value = percentile(drain_ms, q)
        base = percentile(pure_ms, q)
        report.rows.append(
            Row(
                GROUP,
                f"tap → durable confirmation p{q}, while the backlog drains",
                value,
                "ms",
                "idle, no broker",
                base,
                ratio(value, base),
                "p99 ≤ 30 ms" if q == 99 else None,
                (value is not None and value <= 30) if q == 99 else None,
                f"{len(drain_ms)} live taps every {scale.live_tap_interval_s:g} s; "
                f"idle: {len(pure_ms)} taps back to back",
            )
        )
    peer_tap_ms, reach_ms = peer.pop("tap_ms"), peer.pop("reach_ms")
    report.details["edge"]["peer"] = {"taps": len(peer_tap_ms)}
    peer_p99 = percentile(peer_tap_ms, 99)
    reach_p99 = percentile(reach_ms, 99)
    report.rows.append(
        Row(
            GROUP,
            "tap → durable confirmation p99, peer sharing on",
            peer_p99,
            "ms",
            "idle, no broker",
            percentile(pure_ms, 99),
            ratio(peer_p99, percentile(pure_ms, 99)),
            "p99 ≤ 30 ms",
            peer_p99 is not None and peer_p99 <= 30,
            f"{len(peer_tap_ms)} taps at meal-1, each shared with meal-2 (QoS 1)",
        )
    )
    report.rows.append(
        Row(
            GROUP,
            "served meal → in the other kiosk's served log, p99",
            reach_p99,
            "ms",
            target="p99 ≤ 1 s",
            met=reach_p99 is not None and reach_p99 <= 1000,
            note=f"p50 {percentile(reach_ms, 50) or 0:.1f} ms; {len(reach_ms)} serves, "
            f"{peer['lost']} not arrived; two kiosk processes on one local Mosquitto "
            "(a center broker's LAN hop not simulated)",
        )
    )
    drain_s = drain["drain_s"]
    confirmed = drain["backlog_confirmed_at_end"]
    report.rows.append(
        Row(
            GROUP,
            f"{scale.backlog:,}-event backlog drain time (until all confirmed)",
            drain_s,
            "s",
            target="≤ 60 s",
            met=drain_s is not None and drain_s <= 60,
            note=f"rate {scale.backlog / drain_s:,.0f} events/s; {stored:,} rows in the database"
            if drain_s
            else f"not drained: {confirmed:,} confirmed in {scale.drain_timeout_s:g} s "
            f"({confirmed / scale.drain_timeout_s:,.0f} events/s)",
        )
    )
    report.rows.append(
        # Memory sits in the benchmark's own group: a run with --only replaces whole groups,
        # so a group shared by two benchmarks would lose the other's row.
        Row(
            GROUP,
            f"peak RSS of the edge agent with a {scale.backlog:,}-event backlog draining",
            drain["peak_rss_mb"],
            "MB",
            "agent without backlog or broker",
            pure["peak_rss_mb"],
            ratio(drain["peak_rss_mb"], pure["peak_rss_mb"]),
            note="ru_maxrss of the agent's own process",
        )
    )


def main() -> int:
    """Worker entry point."""
    logging.basicConfig(level=logging.WARNING)
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    workers = {"peer": _peer_worker, "peer-listener": _peer_listener}
    worker = workers.get(spec["mode"], _worker)
    print(json.dumps(asyncio.run(worker(spec))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
