"""Tickets unique in a sitting across the hall's kiosks, and sittings that fill at capacity."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import time
from functools import partial
from pathlib import Path

import psycopg

from broker.models import DeviceConfig, Roster, Sitting
from broker.vocabulary import Outcome
from edge_agent.agent import EdgeAgent
from ingest_api.registry.sync import ticket_numbering
from tests.meal_hall.hall import (
    CENTER,
    DAY,
    FACILITY,
    KIOSKS,
    LUNCH,
    MEAL,
    Hall,
    register_hall,
    running_hall,
    wait_for,
)
from welfare.sample.centers import Person


async def _configure(hall: Hall, database_url: str) -> None:
    """Each kiosk gets the ticket numbering the center's fleet sync gives it."""
    with psycopg.connect(database_url) as conn:
        for device in KIOSKS:
            conn.execute(
                "INSERT INTO devices (facility_id, device_id) VALUES (%s, %s)", (FACILITY, device)
            )
        numbering = {d: ticket_numbering(conn, facility_id=FACILITY, device_id=d) for d in KIOSKS}
    for device, agent in hall.kiosks.items():
        await agent.apply_config(
            DeviceConfig(
                facility_id=FACILITY,
                device_id=device,
                facility_name=CENTER.name,
                issued_at=LUNCH,
                tickets=numbering[device],
            )
        )


async def test_a_lunch_rush_of_300_members_at_two_kiosks_repeats_no_ticket_number(
    tmp_path: Path, database_url: str
) -> None:
    """300 members split over two kiosks, half the rush with the kiosks cut from each other,
    some coming back to the other kiosk: every ticket number of the sitting is issued once."""
    register_hall(database_url)
    async with running_hall(tmp_path) as hall:
        await _configure(hall, database_url)
        rng = random.Random(14)
        members = rng.sample(hall.eaters(), 300)
        queues: dict[str, list[Person]] = {d: [] for d in KIOSKS}
        for member in members:
            queues[rng.choice(KIOSKS)].append(member)

        async def serve(device: str, people: list[Person]) -> None:
            """Members tap one kiosk, one after another."""
            for person in people:
                await hall.kiosks[device].tap(person.card_uid)

        async def rush(part: slice) -> None:
            """Both kiosks serve their share of the queue at once."""
            await asyncio.gather(*(serve(d, q[part]) for d, q in queues.items()))

        await rush(slice(0, 75))
        # The first part was shared while the kiosks could talk: wait until each knows every
        # serve of it (the last ones may still be on their way) before cutting them apart.
        first = sum(len(q[:75]) for q in queues.values())

        async def shared() -> bool:
            """Whether both kiosks hold every serve of the first part in their served log."""
            counts = [await a.store.served_count(DAY) for a in hall.kiosks.values()]
            return all(c.get(MEAL, 0) >= first for c in counts)

        await wait_for(shared, what="the first part's serves shared by both kiosks")
        for link in hall.links.values():
            link.set_down(True)
        await rush(slice(75, None))
        # Some come back and tap the other kiosk: served there again if they were served while
        # the kiosks were apart; "already served" if the serve was shared.
        back = {d: rng.sample(q[75:], 10) + rng.sample(q[:75], 5) for d, q in queues.items()}
        await asyncio.gather(
            *(serve(other, back[d]) for d, other in zip(KIOSKS, reversed(KIOSKS), strict=True))
        )
        events = [e for agent in hall.kiosks.values() for e in await agent.store.all_events()]
    accepted = [e for e in events if e.outcome is Outcome.ACCEPTED]
    assert len([e for e in events if e.outcome is Outcome.ALREADY_SERVED]) == 10
    tickets = [e.ticket_no for e in accepted]
    assert None not in tickets
    assert len(tickets) == len(set(tickets))  # no number twice in the sitting
    assert {e.member_ref for e in accepted} == {m.member_ref for m in members}
    assert len(accepted) == 300 + 20  # the second serves while apart: recorded, own numbers


def _two_sittings(capacity: int) -> Callable[[Roster], Roster]:
    """A roster change: today's lunch in two sittings of `capacity` seats."""

    def change(roster: Roster) -> Roster:
        """The sample roster with two sittings today."""
        sittings = [
            Sitting(
                program_id=MEAL, on=DAY, starts=time(11, 30), ends=time(12, 15), capacity=capacity
            ),
            Sitting(
                program_id=MEAL, on=DAY, starts=time(12, 15), ends=time(13, 0), capacity=capacity
            ),
        ]
        return roster.model_copy(update={"sittings": sittings, "sittings_until": DAY})

    return change


async def test_a_sitting_fills_at_its_capacity_and_offers_a_ticket_for_the_next(
    tmp_path: Path,
) -> None:
    """Five seats, served at either kiosk: the sixth member hears it is full and takes a
    ticket for the 12:15 sitting; staff see the seats left at both kiosks."""
    async with running_hall(tmp_path, roster=_two_sittings(5)) as hall:
        people = hall.eaters()[:7]
        for i, person in enumerate(people[:5]):
            kiosk = hall.kiosks[KIOSKS[i % 2]]
            assert (await kiosk.tap(person.card_uid)).outcome is Outcome.ACCEPTED
            for agent in hall.kiosks.values():
                await wait_for(partial(_left_is, agent, 4 - i), what="the seats left")
        full = await hall.kiosks["meal-2"].tap(people[5].card_uid)
        assert full.outcome is Outcome.SITTING_FULL
        assert full.ticket_no is None
        assert full.next_sitting == time(12, 15)
        later = await hall.kiosks["meal-2"].take_next_sitting(
            people[5].member_ref, MEAL, time(12, 15)
        )
        assert later.outcome is Outcome.ACCEPTED
        assert later.sitting == time(12, 15)
        assert later.ticket_no is not None
        assert await hall.kiosks["meal-1"].seats_left() == {MEAL: 0}
        health = await hall.kiosks["meal-1"].health()
        assert health.seats_left == {MEAL: 0}


async def _left_is(agent: EdgeAgent, left: int) -> bool:
    """Whether a kiosk counts `left` seats in the sitting on now."""
    return await agent.seats_left() == {MEAL: left}
