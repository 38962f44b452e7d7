"""Rosters from the registry: who is on one, names as configured, sittings, hashes, deltas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from broker.hashing import credential_hash
from broker.keys import facility_key
from broker.models import Roster
from broker.roster import delta, member_digest, roster_hash
from broker.vocabulary import MemberStatus, NameDisplay
from ingest_api.registry import devices, rosters, schedules, store
from ingest_api.registry.models import (
    Closure,
    DeviceIn,
    Facility,
    MemberIn,
    Program,
    ScheduleIn,
    WeeklySession,
)

KEY = b"roster-test-key-0123456789abcdef"
MONDAY = date(2026, 11, 16)


def _program(pid: str, *, kind: str = "class") -> Program:
    """A program of center B."""
    return Program(
        program_id=pid,
        facility_id="B",
        name=pid,
        function="service_provision",
        business_area="지역사회보호",
        unit_business="급식지원서비스",
        fee_type="free",
        kind=kind,
    )


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Center B with a meal hall and a yoga class; four members; kiosk k1 serving the meal."""
    with psycopg.connect(database_url) as c:
        store.upsert_facility(c, facility=Facility(facility_id="B", name="한마음"))
        store.upsert_program(c, program=_program("B-MEAL", kind="meal"))
        store.upsert_program(c, program=_program("B-YOGA"))
        for n, status in enumerate(("active", "moved_out", "deceased", "active"), start=1):
            store.upsert_member(
                c,
                member=MemberIn(
                    member_ref=f"B-{n}",
                    facility_id="B",
                    display_name=f"김회원{n}",
                    status=status,
                    card_uids=[f"AABB00{n:02d}"],
                    programs={"B-MEAL": None} if n < 4 else {"B-YOGA": None},
                ),
                key=KEY,
            )
        devices.register_device(
            c, facility_id="B", device_id="k1", device=DeviceIn(program_ids=["B-MEAL"])
        )
        yield c


def test_members_of_the_programs_with_status_masked_names_and_facility_hashes(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """Inactive members stay a while with their status; names masked; hashes under B's key."""
    found = rosters.roster_members(
        conn, facility_id="B", program_ids=["B-MEAL"], name_display=NameDisplay.MASKED
    )
    assert [(m.member_ref, m.status, m.display_name) for m in found] == [
        ("B-1", MemberStatus.ACTIVE, "김**1"),
        ("B-2", MemberStatus.MOVED_OUT, "김**2"),
        ("B-3", MemberStatus.DECEASED, "김**3"),
    ]
    b_key = facility_key(KEY, facility_id="B", version=1).encode()
    assert found[0].credential_hashes == [credential_hash("AABB0001", key=b_key)]
    assert found[0].program_ids == ["B-MEAL"]
    # 31 days after the status change the member leaves every roster.
    conn.execute(
        "UPDATE members SET updated_at = now() - interval '31 days' WHERE member_ref = 'B-2'"
    )
    assert [
        m.member_ref for m in rosters.roster_members(conn, facility_id="B", program_ids=["B-MEAL"])
    ] == [
        "B-1",
        "B-3",
    ]


def test_a_devices_roster_has_its_weekly_pattern_and_the_sittings_of_the_coming_week(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """Two time windows of one program; a facility holiday and a cancelled day are left out."""
    schedules.set_schedule(
        conn,
        program_id="B-MEAL",
        schedule=ScheduleIn(
            sessions=[
                WeeklySession(weekday=d, starts=time(11, 30), ends=time(13), place="경로식당")
                for d in (1, 2, 3, 4, 5)
            ]
            + [WeeklySession(weekday=6, starts=time(11), ends=time(12), place="경로식당")],
            exceptions=[Closure(on_date=MONDAY + timedelta(days=2), reason="소독")],
        ),
    )
    schedules.set_closure(conn, facility_id="B", on_date=MONDAY + timedelta(days=3), reason="휴관")
    at = datetime(2026, 11, 16, 0, 30, tzinfo=UTC)
    roster = rosters.build_roster(
        conn, facility_id="B", device_id="k1", today=MONDAY, issued_at=at, timezone="Asia/Seoul"
    )
    assert [(p.weekdays, p.starts) for p in roster.programs] == [
        ([6], time(11)),
        ([1, 2, 3, 4, 5], time(11, 30)),
    ]
    assert roster.sittings is not None
    assert [s.on.isoformat() for s in roster.sittings] == [
        "2026-11-16",
        "2026-11-17",
        # the 18th is cancelled (disinfection), the 19th the whole center is closed
        "2026-11-20",
        "2026-11-21",
        "2026-11-23",
    ]
    assert roster.sittings[3].starts == time(11)  # Saturday's own time
    assert roster.sittings_until == MONDAY + timedelta(days=7)
    assert roster.content_hash == roster_hash(roster)
    assert roster.version == f"20261116003000000-{roster.content_hash[:12]}"


def test_a_delta_from_any_kept_version_gives_the_latest_content(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """Digests of a stored version make the delta; applying it reproduces the hash."""
    at = datetime(2026, 11, 16, 0, 30, tzinfo=UTC)

    def build() -> Roster:
        return rosters.build_roster(
            conn, facility_id="B", device_id="k1", today=MONDAY, issued_at=at, timezone="Asia/Seoul"
        )

    first = build()
    rosters.store_version(conn, roster=first)
    store.set_status(conn, member_ref="B-1", status="suspended")
    store.upsert_member(
        conn,
        member=MemberIn(
            member_ref="B-9",
            facility_id="B",
            display_name="이영호",
            card_uids=["CCDD0009"],
            programs={"B-MEAL": None},
        ),
        key=KEY,
    )
    conn.execute(
        "UPDATE members SET updated_at = now() - interval '40 days' WHERE member_ref = 'B-3'"
    )
    latest = build()
    assert latest.content_hash != first.content_hash
    base = rosters.digests_of(conn, facility_id="B", device_id="k1", version=first.version)
    update = delta(latest, base_version=first.version, base_digests=base)
    assert sorted(m.member_ref for m in update.members) == ["B-1", "B-9"]
    assert update.removed == ["B-3"]
    held = {m.member_ref: m for m in first.members}
    for ref in update.removed:
        held.pop(ref)
    held |= {m.member_ref: m for m in update.members}
    assert {r: member_digest(m) for r, m in held.items()} == {
        m.member_ref: member_digest(m) for m in latest.members
    }
    with pytest.raises(KeyError):
        rosters.digests_of(conn, facility_id="B", device_id="k1", version="never-built")
