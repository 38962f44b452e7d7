"""One bad event never holds back good ones: a poisoned batch on the real pipeline.

A real edge agent holds, in one batch, valid check-ins, a visitor whose neighbourhood holds a
NUL character (the contract accepts it, PostgreSQL refuses it) and an event the center's
contract refuses (a newer kiosk's field). Through real Mosquitto and the real ingest into
PostgreSQL: the valid events are stored and confirmed, each bad one is refused to the device
by id with its reason and parked there (kept, not resent, in the heartbeat), the dead letters
name the events, and taps after it flow as before.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from broker.auth import DeviceIdentity
from broker.ids import uuid7
from broker.vocabulary import Gender
from edge_agent.agent import EdgeAgent
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events_isolating
from tests.conftest import BrokerFactory, IngestFactory
from tests.test_end_to_end import DAY, KEY, ReplayClock, _settings
from welfare.sample.centers import CENTERS, day_of_taps, people, roster_for


async def _until(check: object, *, within: float = 60) -> None:
    """Wait until the async `check()` is true."""
    async with asyncio.timeout(within):
        while not await check():  # type: ignore[operator]  # noqa: ASYNC110 - polling
            await asyncio.sleep(0.2)


async def test_a_poisoned_batch_stores_the_valid_events_and_parks_the_bad_ones(
    tmp_path: Path,
    broker_factory: BrokerFactory,
    ingest_factory: IngestFactory,
    database_url: str,
) -> None:
    """Valid events stored and acknowledged, bad ones parked with their reason, stream goes on."""
    broker = broker_factory([DeviceIdentity("B", "meal-1")])
    center = next(c for c in CENTERS if c.facility_id == "B")
    persons = people(center)
    taps = day_of_taps(center, "meal-1", persons, DAY)
    clock = ReplayClock()
    offline = _settings(tmp_path, "B", "meal-1", broker).model_copy(update={"mqtt": None})
    # Offline first, so the good and the bad events leave the device in one batch.
    async with EdgeAgent(offline, clock=clock) as agent:
        await agent.load_roster(roster_for(center, "meal-1", persons, key=KEY, issued_at=clock.at))
        for tap in taps[:20]:
            clock.at = tap.at
            await agent.tap(tap.card_uid)
        poisoned = await agent.register_visitor(
            gender=Gender.FEMALE, age_band="75-79", neighbourhood="중앙\x00동", purpose="상담"
        )
        for tap in taps[20:30]:
            clock.at = tap.at
            await agent.tap(tap.card_uid)
        before = await agent.store.all_events()
        # A newer kiosk's event: a field this center's contract does not know.
        newer = uuid7(clock.at)
        body = json.loads(before[0].model_dump_json(exclude_none=True))
        body.update(event_id=str(newer), occurred_at=clock.at.isoformat(), mood="happy")
        await agent.store._db.execute(
            "INSERT INTO outbox (event_id, payload, created_at) VALUES (?, ?, ?)",
            (str(newer), json.dumps(body), time.time()),
        )
    poisoned_id = next(e.event_id for e in before if e.member_ref == poisoned.visitor_code)
    good_ids = {str(e.event_id) for e in before} - {str(poisoned_id)}
    assert len(good_ids) == 30

    ingest_factory(broker)
    async with EdgeAgent(_settings(tmp_path, "B", "meal-1", broker), clock=clock) as agent:

        async def settled() -> bool:
            stats = await agent.store.stats()
            return stats.pending == 0 and stats.parked == 2

        await _until(settled)
        parked = {p.event_id: p.reason for p in await agent.store.parked()}
        assert set(parked) == {poisoned_id, newer}
        assert parked[poisoned_id].startswith("db_rejected")
        assert parked[newer].startswith("invalid")
        assert "mood" in parked[newer]
        assert (await agent.health()).outbox_parked == 2
        # Nothing waits behind them: taps after the refusal are stored and confirmed.
        for tap in taps[30:40]:
            clock.at = tap.at
            await agent.tap(tap.card_uid)

        async def drained() -> bool:
            return (await agent.store.stats()).pending == 0

        await _until(drained)
        cur = await agent.store._db.execute(
            "SELECT event_id, send_count FROM outbox WHERE parked_at IS NOT NULL"
        )
        sends: dict[Any, Any] = dict(await cur.fetchall())  # type: ignore[arg-type]
        await asyncio.sleep(3)  # longer than resend_after_s: a parked event is never resent
        cur = await agent.store._db.execute(
            "SELECT event_id, send_count FROM outbox WHERE parked_at IS NOT NULL"
        )
        assert dict(await cur.fetchall()) == sends  # type: ignore[arg-type]
        stats = await agent.store.stats()
        assert stats.parked == 2
        assert stats.pending == 0
        cur = await agent.store._db.execute("SELECT event_id FROM outbox")
        after = {str(r[0]) for r in await cur.fetchall()}

        async def center_knows() -> bool:
            """The heartbeat after the parking reached the fleet's device status."""
            async with await psycopg.AsyncConnection.connect(database_url) as conn:
                cur = await conn.execute(
                    "SELECT health->>'outbox_parked' FROM device_status "
                    "WHERE facility_id = 'B' AND device_id = 'meal-1'"
                )
                row = await cur.fetchone()
            return row is not None and row[0] == "2"

        await _until(center_knows, within=20)

    later_ids = after - {str(e.event_id) for e in before} - {str(newer)}
    assert len(later_ids) == 10
    with psycopg.connect(database_url) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT event_id FROM attendance_events")}
        letters = conn.execute(
            "SELECT event_id, reason, detail, payload FROM dead_letters ORDER BY event_id"
        ).fetchall()
    assert stored == (good_ids - {str(newer)}) | later_ids  # every valid event, once
    assert {(r[0], r[1]) for r in letters} == {
        (poisoned_id, "db_rejected"),
        (newer, "invalid_message"),
    }
    by_id = {r[0]: r for r in letters}
    assert "mood" in by_id[newer][2]
    assert json.loads(bytes(by_id[newer][3]))["mood"] == "happy"  # the event itself is kept


def test_bisection_finds_the_refused_rows_among_many(database_url: str) -> None:
    """Three bad rows among 61: 58 stored, the three named, in far fewer than 61 statements."""
    rows = []
    bad: set[UUID] = set()
    for i in range(61):
        at = ReplayClock().at.replace(minute=i % 60, second=i // 60)
        visitor = None
        if i in (3, 30, 59):  # refused when cast to jsonb, as a visitor's NUL is
            visitor = '{"neighbourhood": "중앙\\u0000동"}'
        row = EventRow(
            event_id=uuid7(at),
            occurred_at=at,
            facility_id="B",
            device_id="meal-1",
            service_date=DAY,
            program_id=None,
            member_ref=None,
            method="card",
            outcome="unknown_credential",
            ticket_no=None,
            roster_version=None,
            visitor=visitor,
        )
        if i in (3, 30, 59):
            bad.add(row.event_id)
        rows.append(row)
    statements: list[str] = []

    class Counting(psycopg.Cursor[tuple[object, ...]]):
        """Counts the statements the inserts send."""

        def execute(self, query: Any, *args: Any, **kw: Any) -> Counting:
            """Count, then execute."""
            statements.append(str(query))
            super().execute(query, *args, **kw)
            return self

    with psycopg.connect(database_url) as conn:
        with Counting(conn) as cur, conn.transaction():
            new, refused = insert_events_isolating(cur, rows=rows)
        count = conn.execute("SELECT count(*) FROM attendance_events").fetchone()
    assert new == 58, (refused[:2], len(statements))
    assert {r.event_id for r, _ in refused} == bad
    assert all("Unicode" in why or "\\u0000" in why for _, why in refused)
    assert count == (58,)
    assert len(statements) < 40, len(statements)
