"""A small city for the security tests: two centers, members, every role, a machine's token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from broker.ids import uuid7
from ingest_api.core.config import Settings
from ingest_api.core.security import Permission, Role
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events
from ingest_api.main import create_app
from ingest_api.registry import store
from ingest_api.registry.models import Consent, Facility, MemberIn, Program
from tests.security_helpers import CIPHER, DATA_KEY, add_account, session_headers, token_headers

CREDENTIAL_KEY = "security-suite-credential-key-7f3a"
DAY = date(2026, 11, 20)
PHONES = {
    "A-M1": "010-1111-2222",
    "B-M1": "010-3141-5926",
    "B-M2": "010-2718-2818",
    "B-ERASE": "010-8080-4545",
}
# A resident met during community organizing at B (needs are free text: encrypted at rest).
CONTACT = {
    "contact_code": "C-B-0001",
    "facility_id": "B",
    "program_id": "B-MEAL",
    "gender": "F",
    "age_band": "80-84",
    "neighbourhood": "우만2동",
    "place": "경로당",
    "met_at": "2026-11-20T14:00:00+09:00",
    "needs": "안부확인",
}


@dataclass
class World:
    """The app, its database and the headers of every kind of caller."""

    url: str
    client: TestClient
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    totp: dict[str, str] = field(default_factory=dict)


def _program(program_id: str, facility_id: str) -> Program:
    """A free meal or class program."""
    return Program(
        program_id=program_id,
        facility_id=facility_id,
        name=program_id,
        function="service_provision",
        business_area="지역사회보호",
        unit_business="급식지원서비스",
        fee_type="free",
    )


def _member(ref: str, facility_id: str, programs: list[str], name: str) -> MemberIn:
    """A member with phone, birth date, needs, a card and the consents."""
    return MemberIn(
        member_ref=ref,
        facility_id=facility_id,
        display_name=name,
        gender="F",
        birth_date=date(1941, 5, 9),
        phone=PHONES[ref],
        neighbourhood="우만2동",
        main_needs=["식사", "안부"],
        consents=[
            Consent(kind="privacy", granted_on=date(2026, 1, 2)),
            Consent(kind="transfer", granted_on=date(2026, 1, 2)),
        ],
        card_uids=[f"04:A1:{len(ref):02X}:{sum(map(ord, ref)) % 256:02X}"],
        programs=dict.fromkeys(programs),
    )


def build_world(url: str) -> dict[str, str]:
    """Centers A and B, their programs and members, a day of meals, and every account.

    Returns the TOTP secrets of the accounts that have a second factor.
    """
    with psycopg.connect(url) as conn:
        for fid, name in (("A", "새빛"), ("B", "한마음")):
            store.upsert_facility(conn, facility=Facility(facility_id=fid, name=name))
        for pid, fid in (("A-MEAL", "A"), ("B-MEAL", "B"), ("B-YOGA", "B")):
            store.upsert_program(conn, program=_program(pid, fid))
        members = [
            _member("A-M1", "A", ["A-MEAL"], "김순자"),
            _member("B-M1", "B", ["B-MEAL"], "이영희"),
            _member("B-M2", "B", ["B-YOGA"], "박말순"),
            _member("B-ERASE", "B", ["B-MEAL"], "최옥분"),
        ]
        for m in members:
            store.upsert_member(conn, member=m, key=CREDENTIAL_KEY.encode(), cipher=CIPHER)
        rows = [
            EventRow(uuid7(at), at, fid, "meal-1", DAY, pid, ref, "card", "accepted", n, "v1", None)
            for n, (fid, pid, ref) in enumerate(
                [("A", "A-MEAL", "A-M1"), ("B", "B-MEAL", "B-M1"), ("B", "B-MEAL", "B-ERASE")]
            )
            for at in [datetime(2026, 11, 20, 3, 0, n, tzinfo=UTC)]
        ]
        with conn.cursor() as cur:
            insert_events(cur, rows=rows)
    roles = {
        "city_admin": (Role.CITY_ADMIN, None, ()),
        "manager_b": (Role.CENTER_MANAGER, "B", ()),
        "staff_b": (Role.CENTER_STAFF, "B", ()),
        "staff_a": (Role.CENTER_STAFF, "A", ()),
        "staff_b_yoga": (Role.CENTER_STAFF, "B", ("B-YOGA",)),
        "operator": (Role.OPERATOR, None, ()),
        "auditor": (Role.AUDITOR, None, ()),
    }
    secrets = {}
    for name, (role, facility, programs) in roles.items():
        issued = add_account(
            url, name.replace("_", "."), role, facility_id=facility, programs=programs
        )
        if issued.totp_secret:
            secrets[issued.username] = issued.totp_secret
    return secrets


@pytest.fixture
def world(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The app over the small city; headers for anonymous, every role and a token."""
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", CREDENTIAL_KEY)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    secrets = build_world(database_url)
    settings = Settings(
        database_url=database_url,
        refresh_interval_s=0,
        security={"maintenance_interval_s": 0},
    )
    app = create_app(settings, consume=False)
    with TestClient(app) as client:
        w = World(database_url, client, totp=secrets)
        w.headers["anonymous"] = {}
        for name in (
            "city_admin",
            "manager_b",
            "staff_b",
            "staff_a",
            "staff_b_yoga",
            "operator",
            "auditor",
        ):
            w.headers[name] = session_headers(database_url, name.replace("_", "."))
        w.headers["token"] = token_headers(
            database_url,
            "kiosk-sync",
            [Permission.FIGURES_READ, Permission.REGISTRY_READ, Permission.FLEET_READ],
            facility_id="B",
        )
        yield w
