"""Operator actions on the fleet: clear 404s, programs of a kiosk, resync, bad sync reports."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.models import SyncRequest
from broker.vocabulary import Outcome, SyncReason
from tests.fleet.conftest import Fleet
from tests.fleet.test_sync import CARD, holds_latest, until
from tests.helpers import mqtt_client, sql_scalar, wait_until


def test_an_operator_action_on_an_unknown_device_or_facility_answers_404(fleet: Fleet) -> None:
    """Every route naming a device or facility that does not exist says so."""
    client = fleet.client
    for method, url, who in (
        ("GET", "/api/v1/registry/devices/B/nope", fleet.manager),
        ("PUT", "/api/v1/registry/devices/B/nope", fleet.manager),
        ("POST", "/api/v1/fleet/devices/B/nope/resync", fleet.operator),
        ("POST", "/api/v1/fleet/devices/Z/k1/resync", fleet.operator),
        ("GET", "/api/v1/fleet/facilities/Z/keys", fleet.operator),
        ("POST", "/api/v1/fleet/facilities/Z/keys/rotate", fleet.admin),
        ("POST", "/api/v1/fleet/facilities/Z/keys/retire", fleet.admin),
    ):
        answer = client.request(method, url, json={"program_ids": []}, headers=who)
        assert answer.status_code == 404, (method, url, answer.text)
        assert answer.json()["detail"].startswith("no ")
    retire = client.post("/api/v1/fleet/facilities/B/keys/retire", headers=fleet.admin)
    assert retire.status_code == 409


def test_a_kiosks_programs_change_through_the_api_and_a_program_of_another_center_is_refused(
    fleet: Fleet,
) -> None:
    """The device list shows programs and sync state; a wrong program is a 400 naming it."""
    client = fleet.client
    client.put(
        "/api/v1/registry/facilities/A",
        json={"facility_id": "A", "name": "새빛"},
        headers=fleet.admin,
    ).raise_for_status()
    wrong = client.put(
        "/api/v1/registry/devices/B/k1", json={"program_ids": ["A-ENG"]}, headers=fleet.manager
    )
    assert wrong.status_code == 400
    assert "unknown program 'A-ENG'" in wrong.json()["detail"]
    changed = client.put(
        "/api/v1/registry/devices/B/k1",
        json={"label": "식당 입구", "program_ids": [], "health_interval_s": 30},
        headers=fleet.manager,
    )
    assert changed.status_code == 200
    assert (changed.json()["label"], changed.json()["program_ids"]) == ("식당 입구", [])
    devices = client.get("/api/v1/registry/devices", headers=fleet.manager).json()
    listed = {d["device_id"]: d for d in devices}
    assert set(listed) == {"k1", "k2"}
    assert listed["k2"]["program_ids"] == ["B-MEAL"]
    wait_until(lambda: fleet.latest("k2")[0] is not None, what="k2's first build")
    # Neither kiosk ever connected: both are behind the roster built for them.
    behind_now = client.get("/api/v1/fleet/rosters/behind", headers=fleet.operator).json()
    behind = [d["device_id"] for d in behind_now]
    assert behind == ["k1", "k2"]


async def test_resync_sends_the_whole_roster_and_a_kiosk_in_step_is_not_behind(
    fleet: Fleet,
) -> None:
    """After resync the kiosk holds the latest again, and the fleet view says so."""
    async with fleet.kiosk() as kiosk:
        await until(lambda: holds_latest(fleet, kiosk), within=30, what="the first roster")

        async def reported() -> bool:
            device = fleet.client.get("/api/v1/registry/devices/B/k1", headers=fleet.manager).json()
            return device["held_version"] == device["latest_version"] and not device["behind"]

        await until(reported, within=30, what="the kiosk's report")
        sync = fleet.client.app.state.fleet  # type: ignore[attr-defined]
        whole = sync.stats.full
        applied = await kiosk.store.roster_updates()
        answer = fleet.client.post("/api/v1/fleet/devices/B/k1/resync", headers=fleet.operator)
        assert answer.status_code == 202

        async def resent() -> bool:
            return await kiosk.store.roster_updates() > applied

        await until(resent, within=30, what="the whole roster again")
        assert sync.stats.full > whole
        assert (await kiosk.tap(CARD)).outcome is Outcome.ACCEPTED
        await until(reported, within=30, what="the kiosk's report of the resent roster")
        behind = fleet.client.get("/api/v1/fleet/rosters/behind", headers=fleet.operator).json()
        assert [d["device_id"] for d in behind] == ["k2"]


def test_a_sync_report_speaking_for_another_device_is_a_counted_dead_letter(
    fleet: Fleet,
) -> None:
    """k1 reporting as k2 on its own topic is kept as a dead letter, never as k2's report."""
    forged = SyncRequest(
        facility_id="B", device_id="k2", sent_at=datetime.now(UTC), reason=SyncReason.CONNECT
    ).model_dump_json()
    k1 = mqtt_client(fleet.broker.port, "B.k1", fleet.broker.passwords["B.k1"], "B.k1")
    try:
        k1.publish("welfare/v1/B/k1/sync", forged, qos=1).wait_for_publish(10)
    finally:
        k1.disconnect()
        k1.loop_stop()
    count = "SELECT count(*) FROM dead_letters WHERE reason = 'topic_mismatch'"
    wait_until(lambda: sql_scalar(fleet.url, count) == 1, what="the dead letter")
    metric = "SELECT value FROM ingest_metrics WHERE name = 'dead_letter.topic_mismatch'"
    assert sql_scalar(fleet.url, metric) == 1
    reports = "SELECT count(*) FROM device_sync_reports WHERE device_id = 'k2'"
    assert sql_scalar(fleet.url, reports) == 0
