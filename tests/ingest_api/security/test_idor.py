"""Insecure direct object references: another center's member is not found, and that is audited."""

from __future__ import annotations

import psycopg

from tests.ingest_api.security.conftest import World


def _denials(url: str) -> list[tuple[str, str, str, bool]]:
    """The audited denials: (actor, subject, request, whether the member exists)."""
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1], r[2], r[3] == "true")
            for r in conn.execute(
                "SELECT actor, subject, detail->>'request', detail->>'exists' FROM audit_log"
                " WHERE action = 'denied' ORDER BY audit_id"
            )
        ]


def test_another_centers_member_answers_404_like_a_missing_one_and_is_audited(
    world: World,
) -> None:
    """A's staff asking for B's member gets exactly what a made-up number gets: 404."""
    a = world.headers["staff_a"]
    real = world.client.get("/api/v1/registry/members/B-M1", headers=a)
    made_up = world.client.get("/api/v1/registry/members/B-NOBODY", headers=a)
    assert (real.status_code, made_up.status_code) == (404, 404)
    assert real.json() == made_up.json()
    for method, path, kw in (
        ("POST", "/api/v1/registry/members/B-M1/status", {"json": {"status": "deceased"}}),
        (
            "PUT",
            "/api/v1/registry/members/B-M1",
            {
                "json": {
                    "member_ref": "B-M1",
                    "facility_id": "A",
                    "display_name": "가짜",
                }
            },
        ),
    ):
        assert world.client.request(method, path, headers=a, **kw).status_code == 404
    assert _denials(world.url) == [
        ("staff.a", "member:B-M1", "view", True),
        ("staff.a", "member:B-NOBODY", "view", False),
        ("staff.a", "member:B-M1", "status", True),
        ("staff.a", "member:B-M1", "change", True),
    ]
    # Nothing of B's member changed: not its status, not its center.
    b = world.client.get("/api/v1/registry/members/B-M1", headers=world.headers["manager_b"])
    assert (b.json()["status"], b.json()["facility_id"]) == ("active", "B")


def test_search_and_lists_stay_within_the_center(world: World) -> None:
    """A search finds only one's own members; a list of another center is refused."""
    a = world.client.get(
        "/api/v1/registry/members", params={"name": "이"}, headers=world.headers["staff_a"]
    )
    b = world.client.get(
        "/api/v1/registry/members", params={"name": "이"}, headers=world.headers["staff_b"]
    )
    assert a.json() == []
    assert [m["member_ref"] for m in b.json()] == ["B-M1"]
    by_phone = world.client.get(
        "/api/v1/registry/members",
        params={"phone_last4": "5926"},
        headers=world.headers["manager_b"],
    )
    assert [m["member_ref"] for m in by_phone.json()] == ["B-M1"]
    assert by_phone.json()[0]["phone_masked"] == "***-****-5926"
    other = world.client.post(
        "/api/v1/registry/members/export",
        json={"reason": "점검", "password": "list-file-pw-1", "facility_id": "A"},
        headers=world.headers["manager_b"],
    )
    assert other.status_code == 403


def test_staff_with_programs_see_only_their_programs_members(world: World) -> None:
    """B's yoga teacher sees the yoga member, not the meal hall's, and enrols only in yoga."""
    yoga = world.headers["staff_b_yoga"]
    assert world.client.get("/api/v1/registry/members/B-M2", headers=yoga).status_code == 200
    assert world.client.get("/api/v1/registry/members/B-M1", headers=yoga).status_code == 404
    new = {
        "member_ref": "B-M7",
        "facility_id": "B",
        "display_name": "정순례",
        "programs": {"B-MEAL": None},
        "consents": [
            {"kind": "privacy", "granted_on": "2026-01-02"},
            {"kind": "transfer", "granted_on": "2026-01-02"},
        ],
    }
    assert (
        world.client.put("/api/v1/registry/members/B-M7", json=new, headers=yoga).status_code == 403
    )
    new["programs"] = {"B-YOGA": None}
    assert (
        world.client.put("/api/v1/registry/members/B-M7", json=new, headers=yoga).status_code == 200
    )


def test_sensitive_fields_only_for_the_manager_with_a_reason(world: World) -> None:
    """Staff see the masked record; the manager sees the phone in clear with a reason."""
    masked = world.client.get(
        "/api/v1/registry/members/B-M1", headers=world.headers["staff_b"]
    ).json()
    assert masked["phone_masked"] == "***-****-5926"
    assert "phone" not in masked
    assert "birth_date" not in masked
    url = "/api/v1/registry/members/B-M1/sensitive"
    assert world.client.get(url, headers=world.headers["staff_b"]).status_code == 403
    assert world.client.get(url, headers=world.headers["manager_b"]).status_code == 422
    clear = world.client.get(
        url, params={"reason": "안부전화"}, headers=world.headers["manager_b"]
    ).json()
    assert (clear["phone"], clear["birth_date"]) == ("010-3141-5926", "1941-05-09")


def test_a_granted_city_administrator_reads_members_city_wide(world: World) -> None:
    """The city's administrator sees no member record unless granted; then every center's."""
    from ingest_api.auth.accounts import set_role
    from ingest_api.core.security import Permission, Role
    from tests.security_helpers import session_headers

    url = "/api/v1/registry/members/A-M1"
    assert world.client.get(url, headers=world.headers["city_admin"]).status_code == 403
    with psycopg.connect(world.url) as conn:
        set_role(
            conn,
            username="city.admin",
            actor="test",
            role=Role.CITY_ADMIN,
            grants=[Permission.MEMBERS_READ],
        )
        change = conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'role_change'"
            " AND subject = 'account:city.admin'"
        ).fetchone()
    assert change is not None
    assert change[0]["after"]["grants"] == ["members.read"]
    # The role change ended the old session.
    assert world.client.get(url, headers=world.headers["city_admin"]).status_code == 401
    fresh = session_headers(world.url, "city.admin")
    assert world.client.get(url, headers=fresh).status_code == 200
    assert world.client.get("/api/v1/registry/members/B-M1", headers=fresh).status_code == 200
