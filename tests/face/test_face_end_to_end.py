"""Issue 17's "Done when", end to end on real PostgreSQL, Mosquitto and three kiosk agents:
consent -> enrolment at the desk -> the template reaches the second kiosk of B with the roster
-> the member's photo shown to that kiosk's still camera asks "김*순 님이 맞으세요?" -> yes
-> one `face` attendance at the center; withdrawal -> gone from the center and both kiosks,
the photo no longer recognised; no consent -> refused; A's kiosk never holds the template."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from edge_agent.agent import EdgeAgent
from edge_agent.face import FaceWatcher
from edge_agent.link import LinkClient, LinkServer
from hardware.face.camera import StillCamera
from hardware.face.matcher import FaceMatcher
from tests.face.conftest import FaceCenter, kiosk, png, portrait
from tests.fleet.test_sync import until
from tests.hardware.faces import ENCODER, astronaut, lfw_face, variants

ENROL = "/api/v1/registry/members/B-M1/face"


async def face_refs(agent: EdgeAgent) -> list[str]:
    """Members whose sealed template the kiosk holds in its roster."""
    return [ref for ref, _kid, _sealed in await agent.store.face_templates()]


def face_events(center: FaceCenter) -> list[tuple[Any, ...]]:
    """Attendances of B-M1 stored at the center with method face."""
    with center.fleet.conn() as conn:
        return conn.execute(
            "SELECT device_id, outcome FROM attendance_events "
            "WHERE member_ref = 'B-M1' AND method = 'face'"
        ).fetchall()


def center_templates(center: FaceCenter) -> int:
    """How many face templates the center holds."""
    with center.fleet.conn() as conn:
        row = conn.execute("SELECT count(*) FROM face_templates").fetchone()
    assert row is not None
    return int(row[0])


async def test_consent_enrol_sync_confirm_attend_then_withdraw_everywhere(
    face_center: FaceCenter, tmp_path: Path
) -> None:
    """The whole flow of issue 17 across the center and three kiosks."""
    client = face_center.client
    manager = face_center.fleet.manager
    photos = {"photos": [png(portrait(astronaut())), png(portrait(variants()["dim light"]))]}

    # Enrolment without consent is refused before any photo is looked at.
    refused = client.post(f"{ENROL}/enrol", json=photos, headers=manager)
    assert refused.status_code == 409, refused.text
    assert "동의" in refused.json()["detail"]
    assert center_templates(face_center) == 0
    # Another center's manager cannot even see that the member exists.
    other = client.post(f"{ENROL}/consent", json={"form_id": "F-1"}, headers=face_center.a_manager)
    assert other.status_code == 404

    async with (
        kiosk(face_center, "B", "k1") as k1,
        kiosk(face_center, "B", "k2") as k2,
        kiosk(face_center, "A", "k1") as a1,
    ):
        for agent in (k1, k2, a1):
            await until(partial(_holds, face_center, agent), within=30, what="a first roster")

        # Consent (by staff of B), then enrolment from two photos.
        consent = client.post(
            f"{ENROL}/consent", json={"form_id": "얼굴-2026-0117"}, headers=face_center.b_staff
        )
        assert consent.status_code == 201, consent.text
        assert consent.json()["consent"]["recorded_by"].endswith("b.staff")
        enrolled = client.post(f"{ENROL}/enrol", json=photos, headers=manager)
        assert enrolled.status_code == 201, enrolled.text
        assert enrolled.json()["photos_used"] == 2
        assert center_templates(face_center) == 1

        took = await until(
            lambda: _has_face(k2, "B-M1"), within=60, what="the template on B's second kiosk"
        )
        print(f"enrolment -> template on the second kiosk in {took:.2f} s")
        await until(lambda: _has_face(k1, "B-M1"), within=60, what="the template on k1")

        # The second kiosk: the member's photo in front of its still camera.
        socket = tmp_path / "k2.sock"
        async with LinkServer(k2, socket) as link:
            questions: list[dict[str, Any]] = []
            view = LinkClient(socket, on_face=questions.append)
            reader = asyncio.create_task(view.run())
            await view.wait_connected()
            await until(lambda: _async(bool(link._subscribers)), within=5, what="subscribed")
            camera = StillCamera([variants()["mirrored"]])
            watcher = FaceWatcher(k2, camera, ENCODER, FaceMatcher(), confirm=link.confirm_face)
            look = asyncio.create_task(watcher.look())
            await until(lambda: _async(bool(questions)), within=30, what="the confirmation")
            assert questions[0]["display_name"] == "김*자"
            assert await view.face_answer(questions[0]["token"], yes=True)
            attempt = await look
            assert attempt is not None
            assert attempt.result is not None
            assert attempt.result.member_ref == "B-M1"
            await until(
                lambda: _async(len(face_events(face_center)) == 1),
                within=30,
                what="the face attendance at the center",
            )
            assert face_events(face_center) == [("k2", "accepted")]
            health = await k2.health()
            assert health.face_templates == 1
            assert health.face_unreadable is None

            # A stranger in front of the camera: nobody is asked, nothing is recorded.
            camera.show(lfw_face(99))
            stranger = await watcher.look()
            assert stranger is not None
            assert stranger.result is None
            assert len(questions) == 1

            # Withdrawal: gone from the center at once, from both kiosks with the roster.
            withdrawn = client.post(f"{ENROL}/withdraw", headers=face_center.b_staff)
            assert withdrawn.json() == {"withdrawn": True, "template_deleted": True}
            assert center_templates(face_center) == 0
            took = await until(
                lambda: _none(k2, k1), within=60, what="the template gone from both kiosks"
            )
            print(f"withdrawal -> gone from both kiosks in {took:.2f} s")
            camera.show(variants()["mirrored"])
            camera.show(astronaut())
            again = await watcher.look()
            assert again is not None
            assert again.match is None  # no template left to match
            assert again.result is None
            assert len(questions) == 1
            assert k2.face_templates == 0
            await view.close()
            reader.cancel()
        # Enrolment after the withdrawal is refused again until a new consent.
        assert client.post(f"{ENROL}/enrol", json=photos, headers=manager).status_code == 409
        # A new consent and enrolment; then a status change takes her off the rosters'
        # face match: the template is deleted at the center and leaves both kiosks.
        client.post(f"{ENROL}/consent", json={"form_id": "얼굴-2026-0118"}, headers=manager)
        assert client.post(f"{ENROL}/enrol", json=photos, headers=manager).status_code == 201
        await until(lambda: _has_face(k1, "B-M1"), within=60, what="the template again on k1")
        suspended = client.post(
            "/api/v1/registry/members/B-M1/status", json={"status": "suspended"}, headers=manager
        )
        assert suspended.json() == {"changed": True}
        assert center_templates(face_center) == 0
        took = await until(
            lambda: _none(k2, k1), within=60, what="the template gone after the suspension"
        )
        print(f"suspension -> gone from both kiosks in {took:.2f} s")
        # Back, enrolled again (the consent stands), then erased at her request.
        client.post(
            "/api/v1/registry/members/B-M1/status", json={"status": "active"}, headers=manager
        )
        assert client.post(f"{ENROL}/enrol", json=photos, headers=manager).status_code == 201
        await until(lambda: _has_face(k2, "B-M1"), within=60, what="the template again on k2")
        erased = client.post(
            "/api/v1/registry/members/B-M1/rights/erase",
            json={"reason": "본인 요청"},
            headers=manager,
        )
        assert erased.status_code == 200, erased.text
        assert center_templates(face_center) == 0
        took = await until(
            lambda: _none(k2, k1), within=60, what="the template gone after the erasure"
        )
        print(f"erasure -> gone from both kiosks in {took:.2f} s")
        # Still one face attendance in all (erasure moved it to a pseudonym; it still counts).
        with face_center.fleet.conn() as conn:
            row = conn.execute(
                "SELECT count(*) FROM attendance_events WHERE method = 'face'"
            ).fetchone()
        assert row == (1,)
        # A's kiosk never received it (nor B's member at all).
        assert await face_refs(a1) == []
        assert await a1.store.member("B-M1") is None


async def _holds(center: FaceCenter, agent: EdgeAgent) -> bool:
    """The kiosk holds the latest roster the center built for it."""
    with center.fleet.conn() as conn:
        row = conn.execute(
            "SELECT latest_version FROM device_roster_state WHERE facility_id = %s "
            "AND device_id = %s",
            (agent.settings.facility_id, agent.settings.device_id),
        ).fetchone()
    return row is not None and await agent.store.roster_version() == row[0]


async def _has_face(agent: EdgeAgent, member_ref: str) -> bool:
    """The kiosk holds the member's sealed template."""
    return member_ref in await face_refs(agent)


async def _none(*agents: EdgeAgent) -> bool:
    """None of the kiosks holds any template."""
    held = [await face_refs(a) for a in agents]
    return not any(held)


async def _async(value: bool) -> bool:
    """An awaitable of a plain value (for `until`)."""
    return value
