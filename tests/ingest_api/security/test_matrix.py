"""Every route, tried as every role, as anonymous, as a machine and as another center's staff.

The expected answers are written out here by hand (the role × route matrix of
docs/security.md), not derived from the permission table the app uses. A route the app has
and this matrix does not is a failure: a new router cannot slip in without a decision here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import APIRouter, Depends, FastAPI

from broker.const import DEFAULT_TIMEZONE
from ingest_api.core.config import Settings
from ingest_api.core.deps import FleetReader, require
from ingest_api.core.security import Permission
from ingest_api.main import create_app
from ingest_api.web import guard
from tests.ingest_api.security.conftest import CONTACT, DAY, PHONES, World

# The callers, in the order each row lists their answers. B's manager comes last: the
# erasure row erases (once) when it is their turn.
CALLERS = (
    "anonymous",
    "token",  # a machine's token bound to B: figures.read, registry.read, fleet.read
    "operator",
    "auditor",
    "city_admin",
    "staff_a",  # another center's staff: B's members are not theirs (IDOR)
    "staff_b",
    "manager_b",
)
FILE_PW = "matrix-file-pw-1"
MEMBER_B1 = {
    "member_ref": "B-M1",
    "facility_id": "B",
    "display_name": "이영희",
    "gender": "F",
    "birth_date": "1941-05-09",
    "phone": PHONES["B-M1"],
    "neighbourhood": "우만2동",
    "main_needs": ["식사", "안부"],
    "consents": [
        {"kind": "privacy", "granted_on": "2026-01-02"},
        {"kind": "transfer", "granted_on": "2026-01-02"},
    ],
    "programs": {"B-MEAL": None},
}
PROGRAM_B = {
    "program_id": "B-MEAL",
    "facility_id": "B",
    "name": "B-MEAL",
    "function": "service_provision",
    "business_area": "지역사회보호",
    "unit_business": "급식지원서비스",
    "fee_type": "free",
}
RULE = {
    "rule_id": "attendance",
    "name": "출석 프로그램",
    "visit_unit": "member_day",
    "case_unit": "session_day",
    "counts_unique": True,
    "in_figures": True,
    "description": "1인 1일 1회 = 연인원 1, 운영일 1일 = 1건",
}
MONTHS = {"first_month": "2026-11", "last_month": "2026-11"}


@dataclass(frozen=True)
class Row:
    """One route: how to call it, and what each caller must get (in CALLERS order)."""

    method: str
    path: str  # the route's template, as the app names it
    url: str  # a concrete URL
    expect: str  # space-separated: ok (2xx), 303, 400, 401, 403, 404
    kw: dict[str, Any]


def row(method: str, path: str, expect: str, url: str | None = None, **kw: Any) -> Row:
    """A matrix row."""
    return Row(method, path, url or path, expect, kw)


DL = {"reason": "점검", "password": FILE_PW}
# B-M2's card as the security world registered it (the PUT of B-M1 below drops B-M1's).
DESK_UID = f"04:A1:04:{sum(map(ord, 'B-M2')) % 256:02X}"
_AN_HOUR_AGO = (datetime.now(ZoneInfo(DEFAULT_TIMEZONE)) - timedelta(hours=1)).strftime(
    "%Y-%m-%dT%H:%M"
)
FIELD_CONTACT = {
    "contact_code": "C-B-20261120-001",
    "gender": "F",
    "age_band": "80-84",
    "neighbourhood": "우만2동",
    "place": "경로당",
    "met_at": _AN_HOUR_AGO,
    "program_id": "B-MEAL",
}
FIELD_SERVICE = {
    "kind": "phone_check",
    "program_id": "B-MEAL",
    "target": "member",
    "occurred_at": _AN_HOUR_AGO,
}
MATRIX = [
    # -- public, by decision ------------------------------------------------------------------
    row("GET", "/healthz", "ok ok ok ok ok ok ok ok"),
    row("GET", "/openapi.json", "ok ok ok ok ok ok ok ok"),
    row("GET", "/docs", "ok ok ok ok ok ok ok ok"),
    row("GET", "/docs/oauth2-redirect", "ok ok ok ok ok ok ok ok"),
    row("GET", "/redoc", "ok ok ok ok ok ok ok ok"),
    row("GET", "/login", "ok ok ok ok ok ok ok ok"),
    # no sign-in form token: refused whoever posts
    row(
        "POST", "/login", "403 403 403 403 403 403 403 403", data={"username": "x", "password": "y"}
    ),
    # no session waiting for the second factor: back to the sign-in page
    row("GET", "/login/second-factor", "303 303 303 303 303 303 303 303"),
    row("POST", "/login/second-factor", "303 303 303 303 303 303 303 303", data={"code": "1"}),
    # -- pages --------------------------------------------------------------------------------
    row("GET", "/", "401 403 ok ok ok ok ok ok", url=f"/?day={DAY}"),
    row("GET", "/account/password", "401 403 ok ok ok ok ok ok"),
    # a wrong current password: the form answers 400, the token may not even try
    row(
        "POST",
        "/account/password",
        "401 403 400 400 400 400 400 400",
        data={"current": "wrong-password-x", "new": "a-new-password-42"},
    ),
    row("GET", "/audit", "401 403 403 ok 403 403 403 403"),
    # -- operations ---------------------------------------------------------------------------
    row("GET", "/api/v1/devices", "401 ok ok 403 403 403 403 403"),
    row("GET", "/api/v1/ingest", "401 ok ok 403 403 403 403 403"),
    row("GET", "/metrics", "401 ok ok 403 403 403 403 403"),
    row("GET", "/static", "ok ok ok ok ok ok ok ok", url="/static/fleet.css"),
    # -- the operator dashboard and the fleet API (no fleet recorded: unknown devices 404) ---
    row("GET", "/fleet", "401 ok ok 403 403 403 403 403"),
    row("GET", "/fleet/table", "401 ok ok 403 403 403 403 403"),
    row(
        "GET",
        "/fleet/devices/{facility_id}/{device_id}",
        "401 404 404 403 403 403 403 403",
        url="/fleet/devices/B/meal-9",
    ),
    row(
        "GET",
        "/fleet/devices/{facility_id}/{device_id}/panel",
        "401 404 404 403 403 403 403 403",
        url="/fleet/devices/B/meal-9/panel",
    ),
    row("GET", "/api/v1/fleet", "401 ok ok 403 403 403 403 403"),
    row("GET", "/api/v1/fleet/alerts", "401 ok ok 403 403 403 403 403"),
    row(
        "GET",
        "/api/v1/fleet/devices/{facility_id}/{device_id}",
        "401 404 404 403 403 403 403 403",
        url="/api/v1/fleet/devices/B/meal-9",
    ),
    row(
        "GET",
        "/api/v1/fleet/devices/{facility_id}/{device_id}/history",
        "401 404 404 403 403 403 403 403",
        url="/api/v1/fleet/devices/B/meal-9/history",
    ),
    # acknowledging is the operators' (a machine's token never may): unknown alert/device 404
    row(
        "POST",
        "/api/v1/fleet/alerts/{alert_id}/acknowledge",
        "401 403 404 403 403 403 403 403",
        url="/api/v1/fleet/alerts/987654/acknowledge",
    ),
    row(
        "POST",
        "/api/v1/fleet/devices/{facility_id}/{device_id}/acknowledge",
        "401 403 404 403 403 403 403 403",
        url="/api/v1/fleet/devices/B/meal-9/acknowledge",
    ),
    # -- audit ----------------------------------------------------------------------------
    row("GET", "/api/v1/audit", "401 403 403 ok 403 403 403 403"),
    row("GET", "/api/v1/audit/alerts", "401 403 403 ok 403 403 403 403"),
    row("GET", "/api/v1/audit/verify", "401 403 403 ok 403 403 403 403"),
    row("POST", "/api/v1/audit/export", "401 403 403 ok 403 403 403 403", data=DL),
    # -- registry: facilities, rules, programs (no personal data) ---------------------------
    row("GET", "/api/v1/registry/facilities", "401 ok 403 403 ok ok ok ok"),
    row(
        "PUT",
        "/api/v1/registry/facilities/{facility_id}",
        "401 403 403 403 ok 403 403 403",
        url="/api/v1/registry/facilities/B",
        json={"facility_id": "B", "name": "한마음"},
    ),
    row("GET", "/api/v1/registry/rules", "401 ok 403 403 ok ok ok ok"),
    row(
        "PUT",
        "/api/v1/registry/rules/{rule_id}",
        "401 403 403 403 ok 403 403 403",
        url="/api/v1/registry/rules/attendance",
        json=RULE,
    ),
    row("GET", "/api/v1/registry/programs", "401 ok 403 403 ok ok ok ok"),
    row(
        "GET",
        "/api/v1/registry/programs/{program_id}/schedule",
        "401 ok 403 403 ok ok ok ok",
        url="/api/v1/registry/programs/B-MEAL/schedule",
    ),
    row(
        "PUT",
        "/api/v1/registry/programs/{program_id}/schedule",
        "401 403 403 403 ok 403 403 ok",
        url="/api/v1/registry/programs/B-MEAL/schedule",
        json={"sessions": []},
    ),
    row(
        "GET",
        "/api/v1/registry/facilities/{facility_id}/closures",
        "401 ok 403 403 ok ok ok ok",
        url="/api/v1/registry/facilities/B/closures",
    ),
    row(
        "PUT",
        "/api/v1/registry/facilities/{facility_id}/closures/{on_date}",
        "401 403 403 403 ok 403 403 ok",
        url="/api/v1/registry/facilities/B/closures/2026-12-25",
        json={"reason": "성탄절"},
    ),
    # the city's administrator opens the day again first: B's manager then finds it open (404)
    row(
        "DELETE",
        "/api/v1/registry/facilities/{facility_id}/closures/{on_date}",
        "401 403 403 403 ok 403 403 404",
        url="/api/v1/registry/facilities/B/closures/2026-12-25",
    ),
    # -- provisioned kiosks (none registered here: a named one is unknown) -------------------
    row("GET", "/api/v1/registry/devices", "401 ok 403 403 ok ok ok ok"),
    row(
        "GET",
        "/api/v1/registry/devices/{facility_id}/{device_id}",
        "401 404 403 403 404 404 404 404",
        url="/api/v1/registry/devices/B/k9",
    ),
    row(
        "PUT",
        "/api/v1/registry/devices/{facility_id}/{device_id}",
        "401 403 403 403 404 403 403 404",
        url="/api/v1/registry/devices/B/k9",
        json={"program_ids": []},
    ),
    row(
        "POST",
        "/api/v1/fleet/devices/{facility_id}/{device_id}/resync",
        "401 403 404 403 403 403 403 403",
        url="/api/v1/fleet/devices/B/k9/resync",
    ),
    row("GET", "/api/v1/fleet/rosters/behind", "401 ok ok 403 403 403 403 403"),
    row(
        "GET",
        "/api/v1/fleet/facilities/{facility_id}/keys",
        "401 ok ok 403 403 403 403 403",
        url="/api/v1/fleet/facilities/B/keys",
    ),
    # a facility's card-hash key: only the city's administrator rotates and retires it
    row(
        "POST",
        "/api/v1/fleet/facilities/{facility_id}/keys/rotate",
        "401 403 403 403 ok 403 403 403",
        url="/api/v1/fleet/facilities/B/keys/rotate",
    ),
    row(
        "POST",
        "/api/v1/fleet/facilities/{facility_id}/keys/retire",
        "401 403 403 403 ok 403 403 403",
        url="/api/v1/fleet/facilities/B/keys/retire",
    ),
    row(
        "PUT",
        "/api/v1/registry/programs/{program_id}",
        "401 403 403 403 ok 403 403 ok",
        url="/api/v1/registry/programs/B-MEAL",
        json=PROGRAM_B,
    ),
    row(
        "PUT",
        "/api/v1/registry/targets",
        "401 403 403 403 ok 403 403 ok",
        json={"year": 2026, "facility_id": "B", "node": "facility", "targets": {"cases": 9}},
    ),
    # -- registry: members (personal data) ---------------------------------------------------
    # A's staff may search, but finds only A's members (see test_idor).
    row(
        "GET",
        "/api/v1/registry/members",
        "401 403 403 403 403 ok ok ok",
        url="/api/v1/registry/members?name=이",
    ),
    row(
        "POST",
        "/api/v1/registry/members/export",
        "401 403 403 403 403 403 403 ok",
        json={**DL, "with_phone": True},
    ),
    row(
        "POST",
        "/api/v1/registry/contacts/export",
        "401 403 403 403 403 403 403 ok",
        json={**DL, "day": str(DAY)},
    ),
    row(
        "PUT",
        "/api/v1/registry/members/{member_ref}",
        "401 403 403 403 403 404 ok ok",
        url="/api/v1/registry/members/B-M1",
        json=MEMBER_B1,
    ),
    row(
        "GET",
        "/api/v1/registry/members/{member_ref}",
        "401 403 403 403 403 404 ok ok",
        url="/api/v1/registry/members/B-M1",
    ),
    row(
        "GET",
        "/api/v1/registry/members/{member_ref}/sensitive",
        "401 403 403 403 403 403 403 ok",
        url="/api/v1/registry/members/B-M1/sensitive?reason=안부전화",
    ),
    row(
        "POST",
        "/api/v1/registry/members/{member_ref}/status",
        "401 403 403 403 403 404 ok ok",
        url="/api/v1/registry/members/B-M1/status",
        json={"status": "active"},
    ),
    # -- face match (issue 17): people of the member's center only, never a token ----------
    # No consent is on record yet: enrolment is refused (409) before any photo is looked at.
    row(
        "GET",
        "/members/{member_ref}/face",
        "401 403 403 403 403 404 ok ok",
        url="/members/B-M1/face",
    ),
    row(
        "POST",
        "/api/v1/registry/members/{member_ref}/face/enrol",
        "401 403 403 403 403 404 409 409",
        url="/api/v1/registry/members/B-M1/face/enrol",
        json={"photos": ["aGVsbG8="]},
    ),
    row(
        "GET",
        "/api/v1/registry/members/{member_ref}/face",
        "401 403 403 403 403 404 ok ok",
        url="/api/v1/registry/members/B-M1/face",
    ),
    row(
        "POST",
        "/api/v1/registry/members/{member_ref}/face/consent",
        "401 403 403 403 403 404 ok ok",
        url="/api/v1/registry/members/B-M1/face/consent",
        json={"form_id": "F-2026-1"},
    ),
    row(
        "POST",
        "/api/v1/registry/members/{member_ref}/face/withdraw",
        "401 403 403 403 403 404 ok ok",
        url="/api/v1/registry/members/B-M1/face/withdraw",
    ),
    row(
        "POST",
        "/api/v1/registry/members/{member_ref}/rights/export",
        "401 403 403 403 403 403 403 ok",
        url="/api/v1/registry/members/B-M1/rights/export",
        json=DL,
    ),
    row(
        "POST",
        "/api/v1/registry/members/{member_ref}/rights/erase",
        "401 403 403 403 403 403 403 ok",
        url="/api/v1/registry/members/B-ERASE/rights/erase",
        json={"reason": "본인 요청"},
    ),
    row(
        "POST",
        "/api/v1/registry/visitors",
        "401 403 403 403 403 403 ok ok",
        json={
            "visitor_code": "V-B-20261120-0001",
            "facility_id": "B",
            "gender": "M",
            "age_band": "75-79",
            "neighbourhood": "우만1동",
        },
    ),
    row(
        "POST",
        "/api/v1/registry/contacts",
        "401 403 403 403 403 403 ok ok",
        json=CONTACT,
    ),
    row(
        "POST",
        "/api/v1/registry/import/{kind}",
        "401 403 403 403 403 403 403 ok",
        url="/api/v1/registry/import/members?facility_id=B&filename=m.csv&dry_run=true",
        content="회원번호,성명,성별,이용프로그램\nB-M9,김옥순,여,B-MEAL\n".encode(),
    ),
    # -- figures (aggregates) ---------------------------------------------------------------
    row("POST", "/api/v1/figures/refresh", "401 403 ok 403 ok 403 403 403"),
    row(
        "GET",
        "/api/v1/figures/report",
        "401 ok 403 403 ok ok ok ok",
        url="/api/v1/figures/report?year=2026&quarter=4",
    ),
    row(
        "POST",
        "/api/v1/figures/report/download",
        "401 403 403 403 ok ok ok ok",
        json={**DL, "year": 2026, "quarter": 4, "format": "csv"},
    ),
    row(
        "GET",
        "/api/v1/figures/query",
        "401 ok 403 403 ok ok ok ok",
        url="/api/v1/figures/query?first_month=2026-11&last_month=2026-11",
    ),
    row(
        "GET",
        "/api/v1/figures/statistics",
        "401 ok 403 403 ok ok ok ok",
        url="/api/v1/figures/statistics?first_month=2026-11&last_month=2026-11",
    ),
    row(
        "GET",
        "/api/v1/figures/duplicates",
        "401 403 403 403 ok 403 403 403",
        url="/api/v1/figures/duplicates?first_month=2026-11&last_month=2026-11",
    ),
    row(
        "GET",
        "/api/v1/figures/daily",
        "401 ok 403 403 ok ok ok ok",
        url=f"/api/v1/figures/daily?start={DAY}",
    ),
    # -- the desk and the field (pages; issue 13, docs/staff.md) -----------------------------
    # A's staff work at A's desk: B's members, cards and visitors are not found there (404);
    # forms with a mistake answer 422 (the page again with messages).
    row("GET", "/desk", "401 403 403 403 403 ok ok ok", url="/desk?q=이영희"),
    row("POST", "/desk/card", "401 403 403 403 403 404 303 303", data={"uid": DESK_UID}),
    row("GET", "/desk/members/new", "401 403 403 403 403 ok ok ok"),
    row(
        "POST",
        "/desk/members/new",
        "401 403 403 403 403 422 422 422",
        data={"display_name": "정복순", "gender": "F", "consent": "privacy"},
    ),
    row(
        "GET",
        "/desk/members/{member_ref}",
        "401 403 403 403 403 404 ok ok",
        url="/desk/members/B-M1",
    ),
    row(
        "GET",
        "/desk/members/{member_ref}/sensitive",
        "401 403 403 403 403 403 403 ok",
        url="/desk/members/B-M1/sensitive?reason=안부전화",
    ),
    row(
        "GET",
        "/desk/members/{member_ref}/edit",
        "401 403 403 403 403 404 ok ok",
        url="/desk/members/B-M1/edit",
    ),
    row(
        "POST",
        "/desk/members/{member_ref}/edit",
        "401 403 403 403 403 404 303 303",
        url="/desk/members/B-M1/edit",
        data={
            "display_name": "이영희",
            "gender": "F",
            "neighbourhood": "우만2동",
            "consent": ["privacy", "transfer"],
        },
    ),
    row(
        "POST",
        "/desk/members/{member_ref}/programs",
        "401 403 403 403 403 404 303 303",
        url="/desk/members/B-M1/programs",
        data={"action": "enrol", "program_id": "B-MEAL"},
    ),
    row(
        "POST",
        "/desk/members/{member_ref}/cards",
        "401 403 403 403 403 404 422 422",  # no such card: said
        url="/desk/members/B-M1/cards",
        data={"action": "revoke", "card_ref": "0" * 12},
    ),
    row(
        "POST",
        "/desk/members/{member_ref}/status",
        "401 403 403 403 403 404 303 303",
        url="/desk/members/B-M1/status",
        data={"status": "active"},
    ),
    row("GET", "/field/visitors", "401 403 403 403 403 ok ok ok"),
    row(
        "POST",
        "/field/visitors",
        "401 403 403 403 403 303 303 303",
        data={"gender": "M", "age_band": "70-74", "neighbourhood": "우만1동"},
    ),
    row(
        "GET",
        "/field/visitors/{visitor_code}",
        "401 403 403 403 403 404 ok ok",
        url="/field/visitors/V-B-20261120-0001",
    ),
    row(
        "POST",
        "/field/visitors/{visitor_code}/visits",
        "401 403 403 403 403 404 303 303",
        url="/field/visitors/V-B-20261120-0001/visits",
        data={"program_id": "B-MEAL"},
    ),
    row("GET", "/field/contacts", "401 403 403 403 403 ok ok ok"),
    # B-MEAL is not a program of A: A's staff get the form back; B's manager sends the meeting
    # B's staff recorded already (same resident, same minute): said, not recorded twice
    row("POST", "/field/contacts", "401 403 403 403 403 422 303 422", data=FIELD_CONTACT),
    row("GET", "/services", "401 403 403 403 403 ok ok ok"),
    row(
        "POST",
        "/services",
        "401 403 403 403 403 422 303 303",
        data={**FIELD_SERVICE, "member_ref": "B-M1"},
    ),
    # -- follow-up pages (issue 13: absence calls, incident contact list) --------------------
    row("GET", "/followup/absence", "401 403 403 403 403 ok ok ok"),
    # another center's staff: B-M1 is not theirs (404, audited); a repeated key is one call
    row(
        "POST",
        "/followup/absence/calls",
        "401 403 403 403 403 404 303 303",
        data={
            "member_ref": "B-M1",
            "program_id": "B-MEAL",
            "call_id": "0195f3a0-0000-7000-8000-000000000013",
            "outcome": "not_reached",
        },
    ),
    row(
        "GET",
        "/followup/absence/phone",
        "401 403 403 403 403 403 403 ok",
        url="/followup/absence/phone?member_ref=B-M1&reason=안부전화",
    ),
    row("GET", "/followup/contacts", "401 403 403 403 403 403 403 ok"),
    row(
        "POST",
        "/followup/contacts",
        "401 403 403 403 403 403 403 ok",
        data={
            "start": f"{DAY}T00:00",
            "end": f"{DAY}T23:59",
            "reason": "식중독 의심",
            "password": FILE_PW,
            "password_again": FILE_PW,
            "format": "csv",
        },
    ),
    # -- figures pages (issue 13: months and quarters, statistics, the city's duplicates) ----
    row("GET", "/figures", "401 ok 403 403 ok ok ok ok", url="/figures?year=2026"),
    row(
        "POST",
        "/figures/report",
        "401 403 403 403 ok ok ok ok",
        data={**DL, "password_again": FILE_PW, "year": "2026", "quarter": "4", "format": "csv"},
    ),
    row("GET", "/figures/statistics", "401 ok 403 403 ok ok ok ok"),
    row("GET", "/figures/duplicates", "401 403 403 403 ok 403 403 403"),
    # -- the meal hall, live (issue 13); refused taps name member numbers -------------------
    row("GET", "/mealhall", "401 ok 403 403 ok ok ok ok", url=f"/mealhall?day={DAY}"),
    row("GET", "/mealhall/live", "401 ok 403 403 ok ok ok ok"),
    row("GET", "/mealhall/refusals", "401 403 403 403 403 ok ok ok"),
    # last: it ends each caller's session
    row("POST", "/logout", "401 403 303 303 303 303 303 303"),
]


def _matches(expected: str, status: int) -> bool:
    """Whether a status is what the matrix says."""
    return 200 <= status < 300 if expected == "ok" else status == int(expected)


def test_every_route_as_every_caller(world: World) -> None:
    """Each caller gets exactly the matrix's answer from every route."""
    wrong: list[str] = []
    for r in MATRIX:
        expected = r.expect.split()
        assert len(expected) == len(CALLERS), r.path
        for caller, want in zip(CALLERS, expected, strict=True):
            response = world.client.request(
                r.method,
                r.url,
                headers=world.headers[caller],
                follow_redirects=False,
                **r.kw,
            )
            if not _matches(want, response.status_code):
                wrong.append(
                    f"{r.method} {r.url} as {caller}: {response.status_code}, expected {want}"
                    f" ({response.text[:120]})"
                )
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_every_route_of_the_app(world: World) -> None:
    """A route without a row here fails (a router added later must be put in the matrix)."""
    app = world.client.app
    assert isinstance(app, FastAPI)
    decisions = guard.route_decisions(app)
    listed = {(r.method, r.path) for r in MATRIX}
    assert set(decisions) - listed == set(), "routes missing from the matrix"
    assert listed - set(decisions) == set(), "matrix rows for routes that do not exist"


def test_without_a_session_or_token_every_non_public_route_answers_401() -> None:
    """Anonymous gets 401 from every route that is not public by decision (no data at all)."""
    decisions = guard.route_decisions(
        create_app(Settings(database_url="postgresql://unused/x"), consume=False)
    )
    by_route = {(r.method, r.path): r.expect.split()[0] for r in MATRIX}
    for route, decision in decisions.items():
        if decision != "public":
            assert by_route[route] == "401", route


def test_the_overview_shows_no_personal_data(world: World) -> None:
    """Whoever signs in, the overview holds aggregates only: no name, number or phone."""
    secrets = ["김순자", "이영희", "박말순", "최옥분", "B-M1", "A-M1", "B-ERASE", *PHONES.values()]
    secrets += [p[-4:] for p in PHONES.values()]
    for caller in ("city_admin", "manager_b", "staff_b", "operator", "auditor"):
        page = world.client.get(f"/?day={DAY}", headers=world.headers[caller])
        assert page.status_code == 200
        assert not [s for s in secrets if s in page.text], caller


def test_an_app_with_a_route_lacking_a_decision_does_not_start() -> None:
    """The guard refuses a router whose route names no permission (or two)."""
    settings = Settings(database_url="postgresql://unused/x")

    def with_router(router: APIRouter) -> FastAPI:
        app = create_app(settings, consume=False)
        app.include_router(router)
        guard.route_decisions(app)  # what create_app runs after including its own routers
        return app

    careless = APIRouter()

    @careless.get("/api/v1/fleet/summary")
    def summary() -> dict[str, int]:
        return {"kiosks": 8}

    with pytest.raises(RuntimeError, match="/api/v1/fleet/summary"):
        with_router(careless)

    careful = APIRouter()

    @careful.get("/api/v1/fleet/summary")
    def summary_ok(_: FleetReader) -> dict[str, int]:
        return {"kiosks": 8}

    guarded = APIRouter(dependencies=[Depends(require(Permission.FLEET_READ))])

    @guarded.get("/metrics")
    def metrics() -> str:
        return "up 1"

    decisions = guard.route_decisions(with_router(careful))
    assert decisions[("GET", "/api/v1/fleet/summary")] == "fleet.read"
    assert guard.route_decisions(with_router(guarded))[("GET", "/metrics")] == "fleet.read"
