"""Roster members come from the registry: active, enrolled, hashed credentials only."""

from __future__ import annotations

import psycopg

from broker.hashing import credential_hash
from ingest_api.registry import store
from ingest_api.registry.models import Facility, MemberIn, Program
from ingest_api.registry.rosters import roster_members

KEY = b"roster-test-key-0123456789abcdef"


def test_moved_out_and_deceased_members_leave_the_roster(database_url: str) -> None:
    """Only active members enrolled in the kiosk's programs, with their card hashes."""
    with psycopg.connect(database_url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="B", name="한마음"))
        for pid in ("B-MEAL", "B-YOGA"):
            store.upsert_program(
                conn,
                program=Program(
                    program_id=pid,
                    facility_id="B",
                    name=pid,
                    function="service_provision",
                    business_area="지역사회보호",
                    unit_business="급식지원서비스",
                    fee_type="free",
                ),
            )
        for n, status in enumerate(("active", "moved_out", "deceased", "active"), start=1):
            store.upsert_member(
                conn,
                member=MemberIn(
                    member_ref=f"B-{n}",
                    facility_id="B",
                    display_name=f"회원{n}",
                    status=status,
                    card_uids=[f"AABB00{n:02d}"],
                    programs={"B-MEAL": None} if n < 4 else {"B-YOGA": None},
                ),
                key=KEY,
            )
        roster = roster_members(conn, facility_id="B", program_ids=["B-MEAL"])
        assert [m.member_ref for m in roster] == ["B-1"]
        assert roster[0].credential_hashes == [credential_hash("AABB0001", key=KEY)]
        assert roster[0].program_ids == ["B-MEAL"]
        store.set_status(conn, member_ref="B-1", status="deceased")
        assert roster_members(conn, facility_id="B", program_ids=["B-MEAL"]) == []
