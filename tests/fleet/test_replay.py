"""Replay requests over the signed configuration: obeyed once when signed, refused otherwise."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta

import psycopg

from broker.auth import INGEST_USER
from broker.models import DeviceConfig
from broker.topics import Channel, topic
from edge_agent.agent import EdgeAgent
from ingest_api.registry.sync import request_replay
from tests.fleet.conftest import Fleet
from tests.fleet.test_sync import holds_latest, until

CARD = "04A1B2C3"


async def _confirmed(fleet: Fleet, kiosk: object) -> list[tuple[str, float | None]]:
    """(event id, confirmed_at) of every event on the kiosk."""
    cur = await kiosk.store._db.execute(  # type: ignore[attr-defined]
        "SELECT event_id, confirmed_at FROM outbox ORDER BY seq"
    )
    return [(str(r[0]), r[1]) for r in await cur.fetchall()]


async def _one_confirmed_tap(fleet: Fleet, kiosk: EdgeAgent) -> None:
    """With the first roster, one tap, confirmed by the center."""
    await until(lambda: holds_latest(fleet, kiosk), within=30, what="the first roster")
    await kiosk.tap(CARD)

    async def drained() -> bool:
        return (await kiosk.store.stats()).pending == 0

    await until(drained, within=30, what="the confirmation")


async def test_an_unsigned_replay_request_is_refused_and_audited(fleet: Fleet) -> None:
    """Someone with the center's broker account but not its keys asks for a replay: the kiosk
    keeps its confirmations, says so, and the center audits the refusal."""
    async with fleet.kiosk() as kiosk:
        await _one_confirmed_tap(fleet, kiosk)
        before = await _confirmed(fleet, kiosk)
        forged = DeviceConfig(
            facility_id="B",
            device_id="k1",
            facility_name="가짜",
            issued_at=datetime.now(UTC),
            version="forged",
            replay_id="forged-1",
            replay_since=datetime.now(UTC) - timedelta(days=1),
        )
        await asyncio.to_thread(
            subprocess.run,
            [
                "mosquitto_pub",
                "-p",
                str(fleet.broker.port),
                "-u",
                INGEST_USER,
                "-P",
                fleet.broker.passwords[INGEST_USER],
                "-q",
                "1",
                "-t",
                topic("B", "k1", Channel.CONFIG),
                "-m",
                forged.model_dump_json(exclude_none=True),
            ],
            check=True,
            timeout=10,
        )

        def audited() -> list[tuple[str, str, str]]:
            with psycopg.connect(fleet.url) as conn:
                return [
                    (str(r[0]), str(r[1]), str(r[2]))
                    for r in conn.execute(
                        "SELECT actor, action, subject FROM audit_log WHERE subject LIKE 'replay:%'"
                    )
                ]

        async def refused() -> bool:
            return bool(audited())

        await until(refused, within=30, what="the refusal to be audited")
        assert audited() == [("device:B/k1", "denied", "replay:forged-1")]
        assert await _confirmed(fleet, kiosk) == before  # nothing made due again


async def test_a_signed_replay_is_obeyed_once(fleet: Fleet) -> None:
    """The center's request (signed by the fleet sync) resends the confirmed events, once."""
    async with fleet.kiosk() as kiosk:
        await _one_confirmed_tap(fleet, kiosk)
        first = await _confirmed(fleet, kiosk)
        with fleet.conn() as conn:
            request_replay(
                conn,
                since=datetime.now(UTC) - timedelta(hours=1),
                reason="시험",
                actor="test",
                now=datetime.now(UTC),
                keep_days=14,
            )

        async def resent() -> bool:
            now = await _confirmed(fleet, kiosk)
            return all(c is not None for _, c in now) and now != first

        await until(resent, within=30, what="the replay and its confirmation")
        again = await _confirmed(fleet, kiosk)
        config = await kiosk.store.config()
        assert config is not None
        assert config.replay_id is not None
        # The retained configuration at a reconnection does not replay a second time.
        assert await kiosk.store.replay_confirmed(since=0, replay_id=config.replay_id) is None
        assert await _confirmed(fleet, kiosk) == again
    with psycopg.connect(fleet.url) as conn:
        row = conn.execute("SELECT count(*) FROM attendance_events").fetchone()
    assert row == (1,)  # the resent event is stored once
