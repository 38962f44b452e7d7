"""The kiosk's roster store: updates applied atomically by hash, sittings decide the day."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from broker.examples import EXAMPLE_KEY, examples
from broker.keys import key_id, sign, verify, wrap_aad, wrap_key
from broker.models import DeviceConfig, ProgramSession, Roster, Sitting
from broker.roster import config_signing_bytes, roster_hash, roster_signing_bytes
from broker.vocabulary import MemberStatus, Outcome, ProgramKind
from edge_agent.agent import EdgeAgent
from edge_agent.roster_store import RosterRefused
from edge_agent.store import EdgeStore
from edge_agent.sync import RosterSync
from tests.edge_agent.conftest import CARDS, FakeClock, edge_settings, make_roster


def _examples() -> tuple[Roster, Roster]:
    """The whole roster and the delta of docs/contract.md."""
    found = examples()
    return (
        Roster.model_validate_json(found["roster"][1]),
        Roster.model_validate_json(found["roster_delta"][1]),
    )


async def test_the_documented_delta_applied_to_the_documented_roster_gives_its_hash(
    tmp_path: Path,
) -> None:
    """The contract's examples are a real exchange: signed, applied, hashed as promised."""
    whole, update = _examples()
    for roster in (whole, update):
        assert roster.signatures is not None
        assert verify([EXAMPLE_KEY], roster_signing_bytes(roster), roster.signatures)
    async with await EdgeStore.open(tmp_path / "edge.sqlite3") as store:
        assert await store.apply_roster(whole) == whole.content_hash
        assert await store.apply_roster(update) == update.content_hash
        assert await store.roster_version() == update.version
        gone = await store.member("B-M00042")
        assert gone is not None
        assert gone.status is MemberStatus.DECEASED
        assert await store.member("B-M00077") is not None
        assert await store.roster_updates() == 2


async def test_a_delta_for_another_version_or_with_a_wrong_hash_changes_nothing(
    tmp_path: Path,
) -> None:
    """The last good roster stays: a refused update rolls back completely."""
    whole, update = _examples()
    async with await EdgeStore.open(tmp_path / "edge.sqlite3") as store:
        with pytest.raises(RosterRefused) as behind:
            await store.apply_roster(update)  # nothing held yet
        assert behind.value.reason == "behind"
        await store.apply_roster(whole)
        tampered = update.model_copy(update={"members": update.members[:1]})  # one dropped
        with pytest.raises(RosterRefused) as refused:
            await store.apply_roster(tampered)
        assert refused.value.reason == "refused"
        assert await store.roster_version() == whole.version
        assert await store.roster_hash() == whole.content_hash
        kept = await store.member("B-M00042")
        assert kept is not None
        assert kept.status is MemberStatus.ACTIVE
        assert await store.member("B-M00077") is None


async def test_sittings_decide_the_day_and_the_weekly_pattern_takes_over_outside_them(
    tmp_path: Path,
) -> None:
    """A closed Friday refuses; Thursday's own hours count; outside the window, weekly rules."""
    friday = date(2026, 11, 20)  # the test roster's lunch Friday (weekly: Mon-Fri 11:30-13:00)
    thursday = friday - timedelta(days=1)
    roster = make_roster().model_copy(
        update={
            # built on Thursday: sittings from Thursday to Saturday; Thursday's lunch moved
            # to 12:00-12:30, Friday's cancelled.
            "issued_at": datetime(2026, 11, 18, 15, 30, tzinfo=UTC),  # Thursday 00:30 Seoul
            "sittings": [
                Sitting(program_id="MEAL", on=thursday, starts=time(12), ends=time(12, 30)),
            ],
            "sittings_until": friday + timedelta(days=1),
        }
    )
    noon_friday = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    clock = FakeClock(noon_friday)
    async with EdgeAgent(edge_settings(tmp_path), clock=clock) as agent:
        await agent.load_roster(roster)
        assert (await agent.tap(CARDS["meal"])).outcome is Outcome.NO_SERVICE  # cancelled
        clock.at = noon_friday - timedelta(days=1, minutes=15)  # Thursday 11:45
        assert (await agent.tap(CARDS["meal"])).outcome is Outcome.NO_SERVICE  # not yet today
        clock.at = noon_friday - timedelta(days=1) + timedelta(minutes=5)  # Thursday 12:05
        assert (await agent.tap(CARDS["meal"])).outcome is Outcome.ACCEPTED
        clock.at = noon_friday - timedelta(days=2, minutes=15)  # Wednesday 11:45: before them
        assert (await agent.tap(CARDS["meal"])).outcome is Outcome.ACCEPTED
        clock.at = noon_friday + timedelta(days=7, minutes=-15)  # next Friday 11:45: after them
        assert (await agent.tap(CARDS["meal"])).outcome is Outcome.ACCEPTED


async def test_a_device_database_from_before_sittings_is_migrated_in_place(
    tmp_path: Path,
) -> None:
    """The old one-row-per-program table moves over; its roster keeps working."""
    path = tmp_path / "old.sqlite3"
    program = ProgramSession(
        program_id="MEAL",
        name="경로식당",
        kind=ProgramKind.MEAL,
        weekdays=[5],
        starts=time(11),
        ends=time(13),
    )
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE roster_members (member_ref TEXT PRIMARY KEY, body TEXT NOT NULL);"
            "CREATE TABLE roster_programs (program_id TEXT PRIMARY KEY, body TEXT NOT NULL);"
        )
        db.execute("INSERT INTO roster_programs VALUES (?, ?)", ("MEAL", program.model_dump_json()))
    async with await EdgeStore.open(path) as store:
        assert await store.programs() == [program]
        assert (await store.schedule(date(2026, 11, 20)))[1] is None
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "roster_programs" not in tables


async def test_a_new_key_is_taken_only_from_a_configuration_signed_under_a_held_key(
    tmp_path: Path,
) -> None:
    """Unwrapped with the provisioned key, bound to this device; a forged one is ignored."""
    settings = edge_settings(tmp_path)
    held = settings.credential_key.get_secret_value().encode()
    new_text = "9f" * 32
    sent: list[str] = []
    async with EdgeAgent(settings) as agent:
        sync = RosterSync(agent, sent.append)

        def config(signing_key: bytes) -> DeviceConfig:
            body = DeviceConfig(
                facility_id="B",
                device_id="k1",
                facility_name="한마음",
                issued_at=datetime(2026, 11, 20, tzinfo=UTC),
                version="v2",
                key_ids=[key_id(new_text.encode()), key_id(held)],
                wrapped_keys=[wrap_key(key_text=new_text, under=held, aad=wrap_aad("B", "k1"))],
            )
            return body.model_copy(
                update={"signatures": sign([signing_key], config_signing_bytes(body))}
            )

        await sync.on_config(config(b"not-the-key-of-this-facility-012").model_dump_json().encode())
        assert await agent.credential_keys() == [held]
        await sync.on_config(config(held).model_dump_json().encode())
        assert await agent.credential_keys() == [new_text.encode(), held]
        assert json.loads(sent[-1])["key_ids"] == [key_id(new_text.encode()), key_id(held)]


def test_a_delta_has_no_hash_of_its_own() -> None:
    """Only whole rosters are hashed; a delta names the hash of what it produces."""
    _, update = _examples()
    with pytest.raises(ValueError, match="delta"):
        roster_hash(update)
