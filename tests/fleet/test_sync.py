"""Roster sync from the center to running kiosks over a real broker's TLS listener."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg

from broker.keys import facility_key, key_id, sign
from broker.models import Roster
from broker.roster import roster_hash, roster_signing_bytes
from broker.vocabulary import MemberStatus, Outcome
from edge_agent.agent import EdgeAgent
from ingest_api.registry import schedules, store
from tests.fleet.conftest import MASTER, Fleet, member, noon_today

CARD = "04A1B2C3"


async def until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> float:
    """Await `check` until true; returns the seconds it took (fails after `within` s)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def holds_latest(fleet: Fleet, agent: EdgeAgent) -> bool:
    """The kiosk holds the roster the center built last for it."""
    version, digest = fleet.latest(agent.settings.device_id)
    return (
        version is not None
        and await agent.store.roster_version() == version
        and (await agent.store.roster_hash() == digest)
    )


async def test_a_member_marked_deceased_is_refused_by_a_running_kiosk_within_60_s(
    fleet: Fleet,
) -> None:
    """The status change through the API reaches the kiosk; the card is refused, not unknown."""
    async with fleet.kiosk() as kiosk:
        await until(lambda: holds_latest(fleet, kiosk), within=30, what="the first roster")
        assert (await kiosk.tap(CARD)).outcome is Outcome.ACCEPTED

        answer = fleet.client.post(
            "/api/v1/registry/members/B-M1/status",
            json={"status": "deceased"},
            headers=fleet.manager,
        )
        assert answer.json() == {"changed": True}

        async def refused() -> bool:
            found = await kiosk.store.member("B-M1")
            return found is not None and found.status is MemberStatus.DECEASED

        took = await until(refused, within=60, what="the kiosk to learn of the death")
        result = await kiosk.tap(CARD)
        assert result.outcome is Outcome.INACTIVE_MEMBER
        assert result.member_ref == "B-M1"
        print(f"status change -> refused at the kiosk in {took:.2f} s")


async def test_a_kiosk_offline_during_three_roster_changes_converges_in_one_update(
    fleet: Fleet,
) -> None:
    """Back online, it asks with the version it holds and applies one delta to the latest."""
    async with fleet.kiosk() as kiosk:
        await until(lambda: holds_latest(fleet, kiosk), within=30, what="the first roster")
    first, _ = fleet.latest()
    versions = [first]
    changes: list[Callable[[psycopg.Connection[Any]], object]] = [
        # a new member with a card, enrolled in the meal
        lambda c: store.upsert_member(c, member=member("B-M2", "04D4E5F6"), key=MASTER.encode()),
        # the first member's card is revoked (a new one issued instead)
        lambda c: store.upsert_member(
            c, member=member("B-M1", "04FFFF01", display_name="김순자"), key=MASTER.encode()
        ),
        # the meal hall is closed tomorrow (a schedule change)
        lambda c: schedules.set_closure(
            c, facility_id="B", on_date=noon_today().date() + timedelta(days=1), reason="공사"
        ),
    ]
    for change in changes:
        with fleet.conn() as conn:
            change(conn)
        await until(
            lambda: _async(fleet.latest()[0] not in versions), within=30, what="a new version"
        )
        versions.append(fleet.latest()[0])
    assert len(set(versions)) == 4
    # The pushes to the offline kiosk expire (fleet_push_ttl_s = 2 s here) instead of queueing.
    # Mosquitto counts expiry in whole seconds: wait past the TTL plus one tick of its clock.
    await asyncio.sleep(3.5)
    async with fleet.kiosk() as kiosk:
        applied = await kiosk.store.roster_updates()
        assert await kiosk.store.roster_version() == first
        await until(lambda: holds_latest(fleet, kiosk), within=30, what="the latest roster")
        assert await kiosk.store.roster_updates() == applied + 1  # one update, not three
        assert (await kiosk.tap("04FFFF01")).member_ref == "B-M1"  # the new card
        assert (await kiosk.tap("04A1B2C3")).outcome is Outcome.UNKNOWN_CREDENTIAL  # revoked
        assert (await kiosk.tap("04D4E5F6")).member_ref == "B-M2"
        programs, sittings = await kiosk.store.schedule(noon_today().date() + timedelta(days=1))
        assert programs
        assert sittings == []  # closed tomorrow: no sitting, the kiosk says no service
    fleet_sync = fleet.client.app.state.fleet  # type: ignore[attr-defined]
    assert fleet_sync.stats.answered >= 1


async def _async(value: bool) -> bool:
    """An awaitable of a plain value (for `until` on synchronous checks)."""
    return value


async def test_an_update_failing_its_hash_or_signature_is_refused_and_the_kiosk_keeps_deciding(
    fleet: Fleet,
) -> None:
    """A tampered or unsigned roster leaves the last good one in force."""
    async with fleet.kiosk() as kiosk:
        await until(lambda: holds_latest(fleet, kiosk), within=30, what="the first roster")
        good_version = await kiosk.store.roster_version()
        good = await kiosk.store.member("B-M1")
        assert good is not None
        assert kiosk.publisher is not None
        sync = kiosk.publisher.sync  # the device's half of the protocol
        forged = Roster(
            facility_id="B",
            device_id="k1",
            version="forged-1",
            issued_at=noon_today(),
            programs=[],
            members=[good.model_copy(update={"credential_hashes": ["0" * 64]})],
        )
        key = facility_key(MASTER.encode(), facility_id="B", version=1).encode()
        wrong_hash = forged.model_copy(update={"content_hash": "f" * 64})
        wrong_hash = wrong_hash.model_copy(
            update={"signatures": sign([key], roster_signing_bytes(wrong_hash))}
        )
        unsigned = forged.model_copy(update={"content_hash": roster_hash(forged)})
        other_key = unsigned.model_copy(
            update={
                "signatures": sign(
                    [b"another-facility-key-0123456789ab"], roster_signing_bytes(unsigned)
                )
            }
        )
        for bad in (wrong_hash, unsigned, other_key):
            refusals = sync.refusals
            await sync.on_roster(bad.model_dump_json().encode())
            assert sync.refusals == refusals + 1
            assert await kiosk.store.roster_version() == good_version
            assert (await kiosk.tap(CARD)).member_ref == "B-M1"  # still decided, same roster


async def test_rotating_a_facility_key_never_stops_a_card_from_working(fleet: Fleet) -> None:
    """Re-hash, both hashes on the roster, the new key wrapped to the kiosk, then retire."""
    new_id = key_id(facility_key(MASTER.encode(), facility_id="B", version=2).encode())
    async with fleet.kiosk() as kiosk:
        await until(lambda: holds_latest(fleet, kiosk), within=30, what="the first roster")
        outcomes: list[Outcome | None] = []
        stop = asyncio.Event()

        async def keep_tapping() -> None:
            while not stop.is_set():
                outcomes.append((await kiosk.tap(CARD)).outcome)
                await asyncio.sleep(0.02)

        tapping = asyncio.create_task(keep_tapping())
        rotated = fleet.client.post("/api/v1/fleet/facilities/B/keys/rotate", headers=fleet.admin)
        assert rotated.status_code == 200, rotated.text
        assert rotated.json() | {"facility_id": "B"} == {
            "facility_id": "B",
            "version": 2,
            "previous": 1,
            "rehashed": 1,
            "unsealed_missing": 0,
        }

        async def holds_new_key() -> bool:
            return new_id in [key_id(k) for k in await kiosk.credential_keys()]

        await until(holds_new_key, within=30, what="the new key at the kiosk")
        await until(lambda: holds_latest(fleet, kiosk), within=30, what="both hashes")
        both = await kiosk.store.member("B-M1")
        assert both is not None
        assert len(both.credential_hashes) == 2

        async def center_knows() -> bool:
            view = fleet.client.get(
                "/api/v1/fleet/facilities/B/keys", headers=fleet.operator
            ).json()
            return bool(view[-1]["devices_holding"])

        await until(center_knows, within=30, what="k1's report of the new key")
        # k2 is registered but has never connected: retiring now would strand it.
        refused = fleet.client.post("/api/v1/fleet/facilities/B/keys/retire", headers=fleet.admin)
        assert refused.status_code == 409
        assert "k2" in refused.json()["detail"]
        keys_view = fleet.client.get(
            "/api/v1/fleet/facilities/B/keys", headers=fleet.operator
        ).json()
        assert [(k["version"], k["state"], k["credentials"]) for k in keys_view] == [
            (1, "previous", 1),
            (2, "current", 1),
        ]
        assert keys_view[1]["devices_holding"] == ["k1"]
        retired = fleet.client.post(
            "/api/v1/fleet/facilities/B/keys/retire", params={"force": True}, headers=fleet.admin
        )
        assert retired.json() == {"facility_id": "B", "version": 1}

        async def only_new_hash() -> bool:
            found = await kiosk.store.member("B-M1")
            return found is not None and len(found.credential_hashes) == 1

        await until(only_new_hash, within=30, what="the roster without the old hashes")
        await asyncio.sleep(0.2)
        stop.set()
        await tapping
    assert len(outcomes) > 10
    assert Outcome.UNKNOWN_CREDENTIAL not in outcomes  # never a moment the card was unknown
    assert set(outcomes) <= {Outcome.ACCEPTED, Outcome.ALREADY_SERVED}
