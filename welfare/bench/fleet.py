"""Fleet: a registry change reaching every kiosk, and a kiosk applying a large roster.

*Change → kiosk.* Real kiosks (edge agents, each with its SQLite database, on the broker's TLS
listener with its own account and its facility's key) and the real center (the ingest
consumer and the fleet sync with its production poll of 1 s) against the bed's PostgreSQL and
Mosquitto. Each change is a committed registry write — a member suspended, or a new card
issued — and its latency, per kiosk, runs from the commit to the moment the kiosk's own
database answers with the change (what its next tap would be decided with). The row is the
p99 over every kiosk × change.

*Applying a roster.* A whole roster of 5,000 members (one card each, a week of sittings) is
applied to a device database the way an update from the center is — one SQLite transaction,
every member digest computed, the content hash checked before the commit — and then a delta of
10 changed members on top of it.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import psycopg

from broker.auth import INGEST_USER, DeviceIdentity
from broker.hashing import credential_hash
from broker.keys import facility_key
from broker.models import ProgramSession, Roster, RosterMember, Sitting
from broker.roster import delta, member_digest, roster_hash
from broker.vocabulary import MemberStatus, ProgramKind
from welfare.bench.bed import BENCH_FACILITY, Bed
from welfare.bench.results import Report, Row, percentile

GROUP = "5. Fleet (registry → kiosks)"
TARGET_S = 60.0
PROGRAM = "B-MEAL"


@dataclass(frozen=True)
class FleetScale:
    """Counts of one run."""

    kiosks: int = 10
    members: int = 1_000
    changes: int = 20
    roster_members: int = 5_000
    timeout_s: float = 120.0


QUICK = FleetScale(kiosks=3, members=40, changes=3, roster_members=500, timeout_s=60.0)


def _card(n: int, generation: int = 0) -> str:
    """Member n's card UID (a new card has a new generation)."""
    return f"{generation:02X}{n:08X}"


def _registry(url: str, devices: list[DeviceIdentity], members: int, master: bytes) -> None:
    """A facility with an all-day meal program, `members` members with cards, the kiosks."""
    from ingest_api.registry import devices as fleet
    from ingest_api.registry import schedules, store
    from ingest_api.registry.models import (
        DeviceIn,
        Facility,
        MemberIn,
        Program,
        ScheduleIn,
        WeeklySession,
    )

    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id=BENCH_FACILITY, name="벤치"))
        store.upsert_program(
            conn,
            program=Program(
                program_id=PROGRAM,
                facility_id=BENCH_FACILITY,
                name="경로식당",
                function="service_provision",
                business_area="지역사회보호",
                unit_business="급식지원서비스",
                fee_type="free",
                kind="meal",
            ),
        )
        all_day = [
            WeeklySession(weekday=d, starts=dtime(0), ends=dtime(23, 59)) for d in range(1, 8)
        ]
        schedules.set_schedule(conn, program_id=PROGRAM, schedule=ScheduleIn(sessions=all_day))
        for n in range(members):
            store.upsert_member(
                conn,
                member=MemberIn(
                    member_ref=f"B-F{n:05d}",
                    facility_id=BENCH_FACILITY,
                    display_name="김순자",
                    card_uids=[_card(n)],
                    programs={PROGRAM: None},
                ),
                key=master,
            )
        for device in devices:
            fleet.register_device(
                conn,
                facility_id=device.facility_id,
                device_id=device.device_id,
                device=DeviceIn(program_ids=[PROGRAM]),
            )


async def _changes(
    bed: Bed, devices: list[DeviceIdentity], url: str, master: bytes, scale: FleetScale
) -> tuple[list[float], float]:
    """Latency (s) of every change at every kiosk, and the time to the first full rosters."""
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import EdgeSettings
    from ingest_api.registry import store
    from ingest_api.registry.models import MemberIn

    key = facility_key(master, facility_id=BENCH_FACILITY, version=1)
    last = f"B-F{scale.members - 1:05d}"
    noon = datetime.combine(datetime.now(UTC).date(), dtime(3, 0), UTC)  # 12:00 in Seoul
    samples: list[float] = []
    async with AsyncExitStack() as stack:
        agents = [
            await stack.enter_async_context(
                EdgeAgent(
                    EdgeSettings(
                        facility_id=d.facility_id,
                        device_id=d.device_id,
                        database=bed.dir / "fleet" / f"{d.device_id}.sqlite3",
                        credential_key=key,
                        link_socket=None,
                        mqtt=bed.broker.mqtt_settings(d.username),
                    ),
                    clock=lambda: noon,
                )
            )
            for d in devices
        ]
        started = time.monotonic()
        await _until_all(agents, lambda a: a.store.member(last), scale.timeout_s)
        first_rosters_s = time.monotonic() - started
        for i in range(scale.changes):
            ref = f"B-F{i % scale.members:05d}"
            with psycopg.connect(url) as conn:
                if i % 2 == 0:
                    store.set_status(conn, member_ref=ref, status="suspended")
                    applied = _suspended(ref)
                else:
                    n = i % scale.members
                    store.upsert_member(
                        conn,
                        member=MemberIn(
                            member_ref=ref,
                            facility_id=BENCH_FACILITY,
                            display_name="김순자",
                            card_uids=[_card(n), _card(n, i)],
                            programs={PROGRAM: None},
                        ),
                        key=master,
                    )
                    applied = _holds_card(credential_hash(_card(n, i), key=key.encode()))

                conn.commit()
            committed = time.monotonic()
            samples += await _until_all(agents, applied, scale.timeout_s, since=committed)
    return samples, first_rosters_s


Check = Callable[[Any], Awaitable[bool]]


def _suspended(ref: str) -> Check:
    """Whether a kiosk's database has the member suspended."""

    async def check(agent: Any) -> bool:
        """The member's stored status."""
        found = await agent.store.member(ref)
        return found is not None and found.status is MemberStatus.SUSPENDED

    return check


def _holds_card(card_hash: str) -> Check:
    """Whether a kiosk's database knows a card."""

    async def check(agent: Any) -> bool:
        """The card's member, if any."""
        return await agent.store.member_by_credential(card_hash) is not None

    return check


async def _until_all(
    agents: list[Any], check: Any, timeout_s: float, *, since: float | None = None
) -> list[float]:
    """Seconds from `since` until `check(agent)` holds, per agent (timeout_s when never)."""
    start = since if since is not None else time.monotonic()
    found: dict[int, float] = {}
    while len(found) < len(agents):
        now = time.monotonic()
        for i, agent in enumerate(agents):
            if i not in found and await check(agent):
                found[i] = now - start
        if now - start > timeout_s:
            return [found.get(i, timeout_s) for i in range(len(agents))]
        await asyncio.sleep(0.02)
    return [found[i] for i in range(len(agents))]


def big_roster(members: int) -> Roster:
    """A whole roster of `members` members (one card each) and a week of lunch sittings."""
    key = b"bench-facility-key-0123456789abcdef"
    today = date(2026, 11, 16)
    roster = Roster(
        facility_id="B",
        device_id="meal-1",
        version="v1",
        issued_at=datetime(2026, 11, 16, tzinfo=UTC),
        programs=[
            ProgramSession(
                program_id=PROGRAM,
                name="경로식당 점심",
                kind=ProgramKind.MEAL,
                weekdays=[1, 2, 3, 4, 5, 6],
                starts=dtime(11, 30),
                ends=dtime(13),
                capacity=300,
                place="경로식당",
            )
        ],
        sittings=[
            Sitting(
                program_id=PROGRAM,
                on=today + timedelta(days=d),
                starts=dtime(11, 30),
                ends=dtime(13),
                capacity=300,
                place="경로식당",
            )
            for d in range(6)
        ],
        sittings_until=today + timedelta(days=7),
        members=[
            RosterMember(
                member_ref=f"B-M{n:05d}",
                display_name="김*자",
                credential_hashes=[credential_hash(_card(n), key=key)],
                program_ids=[PROGRAM],
            )
            for n in range(members)
        ],
    )
    return roster.model_copy(update={"content_hash": roster_hash(roster)})


async def _apply(members: int, runs: int = 3) -> dict[str, Any]:
    """Time a whole roster applied to a device database, then a delta of 10 members."""
    from edge_agent.store import EdgeStore

    whole = big_roster(members)
    payload = whole.model_dump_json(exclude_none=True)
    changed = [m.model_copy(update={"status": MemberStatus.DECEASED}) for m in whole.members[:10]]
    later = whole.model_copy(
        update={"version": "v2", "members": changed + whole.members[10:], "content_hash": None}
    )
    later = later.model_copy(update={"content_hash": roster_hash(later)})
    update = delta(
        later,
        base_version="v1",
        base_digests={m.member_ref: member_digest(m) for m in whole.members},
    )
    whole_s, delta_s = [], []
    with tempfile.TemporaryDirectory(prefix="welfare-roster-") as tmp:
        for run in range(runs):
            async with await EdgeStore.open(Path(tmp) / f"edge-{run}.sqlite3") as store:
                t0 = time.perf_counter()
                await store.apply_roster(whole)
                whole_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await store.apply_roster(update)
                delta_s.append(time.perf_counter() - t0)
    return {
        "members": members,
        "payload_bytes": len(payload.encode()),
        "delta_payload_bytes": len(update.model_dump_json(exclude_none=True).encode()),
        "whole_s": whole_s,
        "delta_s": delta_s,
    }


def run(bed: Bed, scale: FleetScale, report: Report) -> None:
    """Measure the fleet sync and the roster apply; add their rows to `report`."""
    from ingest_api.core.config import Settings
    from ingest_api.ingest.consumer import IngestConsumer
    from ingest_api.registry.sync import FleetSync

    (bed.dir / "fleet").mkdir(exist_ok=True)
    url = bed.new_database("fleet")
    devices = bed.devices[: scale.kiosks]
    master = secrets.token_hex(16)
    _registry(url, devices, scale.members, master.encode())
    settings = Settings(
        database_url=url,
        mqtt=bed.broker.mqtt_settings(INGEST_USER),
        credential_key=master,
        consumer_id="ingest-fleet",
        refresh_interval_s=0,
    )
    consumer = IngestConsumer(settings)
    consumer.start()
    sync = FleetSync(settings)
    try:
        if not consumer.wait_connected(30):
            raise RuntimeError("the fleet benchmark's consumer did not connect")
        sync.start()
        samples, first_s = asyncio.run(_changes(bed, devices, url, master.encode(), scale))
    finally:
        sync.stop()
        consumer.stop()
        bed.clear_sessions(["ingest-fleet", "ingest-fleet-fleet"])
    applied = asyncio.run(_apply(scale.roster_members))
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    report.details["fleet"] = {
        "scale": scale.__dict__,
        "change_to_kiosk_s": samples,
        "first_rosters_s": first_s,
        "fleet_sync": sync.stats.__dict__,
        "apply": applied,
    }
    report.rows.append(
        Row(
            GROUP,
            "registry change → applied on every kiosk, p99",
            p99,
            "s",
            target=f"≤ {TARGET_S:g} s",
            met=p99 is not None and p99 <= TARGET_S,
            note=f"{scale.kiosks} kiosks on the TLS listener × {scale.changes} changes "
            f"(suspensions, new cards), fleet poll 1 s; p50 {p50 or 0:.2f} s, "
            f"max {max(samples):.2f} s; first rosters to all kiosks in {first_s:.1f} s",
        )
    )
    whole = statistics.median(applied["whole_s"])
    report.rows.append(
        Row(
            GROUP,
            f"apply a {scale.roster_members:,}-member roster on the device (hash checked)",
            whole,
            "s",
            note=f"one SQLite transaction, synchronous=FULL; the message is "
            f"{applied['payload_bytes'] / 1e6:.2f} MB; median of {len(applied['whole_s'])}",
        )
    )
    report.rows.append(
        Row(
            GROUP,
            f"apply a delta of 10 members to the {scale.roster_members:,}-member roster",
            statistics.median(applied["delta_s"]) * 1000,
            "ms",
            note=f"{applied['delta_payload_bytes'] / 1000:.1f} kB; the hash is recomputed over "
            "every member's stored digest",
        )
    )
