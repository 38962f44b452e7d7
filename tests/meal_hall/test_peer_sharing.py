"""The hall decides as one: peer sharing through the center broker, bridged to the city."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path

import psycopg

from broker.ids import uuid7
from broker.models import PeerServe
from broker.vocabulary import Outcome
from edge_agent.link import LinkClient, LinkServer
from ingest_api.figures import rollup
from ingest_api.figures.engine import Period, compute
from tests.conftest import IngestFactory
from tests.helpers import count_by_rules, mqtt_client
from tests.meal_hall.hall import (
    DAY,
    FACILITY,
    LUNCH,
    MEAL,
    drained,
    register_hall,
    running_hall,
    wait_for,
)


def _accepted(url: str, member_ref: str) -> list[tuple[str, int | None]]:
    """(device, ticket) of the member's accepted events in the central database."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id, ticket_no FROM attendance_events WHERE member_ref = %s"
            " AND outcome = 'accepted' ORDER BY device_id",
            (member_ref,),
        ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


async def test_city_link_cut_one_member_tapping_both_kiosks_gets_one_meal_and_one_ticket(
    tmp_path: Path, ingest_factory: IngestFactory, database_url: str
) -> None:
    """The center's internet is down: the kiosks still share, the member is served once."""
    register_hall(database_url)
    async with running_hall(tmp_path) as hall:
        ingest_factory(hall.city)
        hall.city_link.set_down(True)
        # The second kiosk's clock is 25 minutes ahead: nothing here compares kiosk times.
        hall.clocks["meal-2"].at = LUNCH + timedelta(minutes=25)
        one, other = hall.eaters()[:2]
        k1, k2 = hall.kiosks["meal-1"], hall.kiosks["meal-2"]

        first = await k1.tap(one.card_uid)
        assert first.outcome is Outcome.ACCEPTED
        assert first.ticket_no is not None
        await wait_for(
            lambda: k2.store.served_ticket(one.member_ref, MEAL, DAY),
            within=10,
            what="the serve reaching the other kiosk",
        )
        second = await k2.tap(one.card_uid)
        assert second.outcome is Outcome.ALREADY_SERVED
        assert second.ticket_no == first.ticket_no  # one meal, one ticket
        third = await k2.tap(other.card_uid)
        assert third.outcome is Outcome.ACCEPTED
        await wait_for(lambda: k1.peers.applied["applied"] == 1, what="meal-2's serve at meal-1")
        assert k2.peers.applied["applied"] == 1

        # Nothing left the kiosks for good while the city was unreachable.
        assert (await k1.store.stats()).pending == 1
        hall.city_link.set_down(False)
        await wait_for(lambda: drained(hall), within=90, what="every event confirmed")

    assert _accepted(database_url, one.member_ref) == [("meal-1", first.ticket_no)]
    figures = count_by_rules(database_url)
    assert figures[(FACILITY, MEAL)] == (2, 2)


async def test_kiosks_apart_serve_twice_one_flagged_and_the_figures_count_one(
    tmp_path: Path, ingest_factory: IngestFactory, database_url: str
) -> None:
    """The kiosks cannot reach each other: each decides alone; both serves are kept, one is
    flagged for staff (at the center and on the kiosks) and the figures count one visit."""
    register_hall(database_url)
    async with running_hall(tmp_path) as hall:
        ingest_factory(hall.city)
        for link in hall.links.values():
            link.set_down(True)
        await wait_for(lambda: not any(a.online for a in hall.kiosks.values()), what="kiosks apart")
        one = hall.eaters()[0]
        results = [await a.tap(one.card_uid) for a in hall.kiosks.values()]
        assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
        for link in hall.links.values():
            link.set_down(False)
        await wait_for(lambda: drained(hall), within=90, what="every event confirmed")
        # The serves queued while apart reach the other kiosk: each sees the double serve,
        # and its staff screen's counts say so.
        for device, agent in hall.kiosks.items():
            await wait_for(
                partial(agent.store.served_conflicts, DAY),
                within=20,
                what=f"{device} noting the double serve",
            )
            async with LinkServer(agent, tmp_path / f"{device}.sock"):
                view = LinkClient(tmp_path / f"{device}.sock", on_tap=lambda _r: None)
                reader = asyncio.get_running_loop().create_task(view.run())
                await view.wait_connected()
                _day, counts = await view.counts()
                await view.close()
                await asyncio.wait_for(reader, 5)
            assert [(c.program_id, c.double_serves) for c in counts] == [(MEAL, 1)]

    assert len(_accepted(database_url, one.member_ref)) == 2  # both recorded, none lost
    with psycopg.connect(database_url) as conn:
        flagged = conn.execute(
            "SELECT member_ref, program_id FROM double_serves WHERE facility_id = %s",
            (FACILITY,),
        ).fetchall()
    assert flagged == [(one.member_ref, MEAL)]
    assert count_by_rules(database_url)[(FACILITY, MEAL)] == (1, 1)
    # The figures engine, by the program's counting rule, agrees: one person, one visit.
    with psycopg.connect(database_url) as conn:
        rollup.refresh(conn)
        month = Period.months("m", DAY.replace(day=1), DAY.replace(day=1))
        rows = compute(conn, periods=[month], dims=["program"])
    assert [(r.unique_persons, r.person_visits) for r in rows] == [(1, 1)]


async def test_peer_messages_that_do_not_validate_or_speak_for_another_are_ignored_and_counted(
    tmp_path: Path,
) -> None:
    """Invalid, another facility's, another device's (in the payload or by the ACL): ignored."""
    async with running_hall(tmp_path) as hall:
        k2 = hall.kiosks["meal-2"]
        member = hall.eaters()[0].member_ref
        user = "B.meal-1"
        rogue = mqtt_client(hall.center.port, user, hall.center.passwords[user], "rogue")

        def serve(**kw: object) -> bytes:
            """A peer message of meal-1 with fields replaced."""
            values: dict[str, object] = {
                "facility_id": FACILITY,
                "device_id": "meal-1",
                "event_id": uuid7(LUNCH),
                "program_id": MEAL,
                "member_ref": member,
                "service_date": DAY,
                "ticket_no": 7,
            }
            values.update(kw)
            return PeerServe.model_validate(values).model_dump_json().encode()

        own = "welfare/v1/B/meal-1/peer"
        try:
            # A valid serve first: once it is applied, meal-2's subscription is surely active.
            rogue.publish(own, serve(member_ref="B-M99998"), qos=1).wait_for_publish(5)
            await wait_for(lambda: k2.peers.applied["applied"] == 1, what="the first valid one")
            rogue.publish(own, b'{"not": "a serve"}', qos=1).wait_for_publish(5)
            rogue.publish(own, serve(facility_id="E"), qos=1).wait_for_publish(5)
            rogue.publish(own, serve(device_id="meal-9"), qos=1).wait_for_publish(5)
            # Speaking on another kiosk's topic: the broker's ACL drops it.
            rogue.publish("welfare/v1/B/meal-2/peer", serve(device_id="meal-2"), qos=1)
            rogue.publish("welfare/v1/E/meal-1/peer", serve(facility_id="E"), qos=1)
            await wait_for(lambda: sum(k2.peers.ignored.values()) >= 3, what="3 ignored")
            # A valid one after them, so the ACL-dropped ones had their chance to arrive.
            rogue.publish(own, serve(member_ref="B-M99999"), qos=1).wait_for_publish(5)
            await wait_for(lambda: k2.peers.applied["applied"] == 2, what="the last valid one")
        finally:
            rogue.loop_stop()
            rogue.disconnect()
        assert dict(k2.peers.ignored) == {"invalid": 1, "other_facility": 1, "wrong_device": 1}
        assert await k2.store.served_ticket(member, MEAL, DAY) is None
        metric = k2.metrics.registry.get_sample_value(
            "welfare_edge_peer_ignored_total", {"reason": "other_facility"}
        )
        assert metric == 1
