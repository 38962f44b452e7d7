"""The decision at a tap, and that it is on disk before the kiosk answers."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from broker.vocabulary import Gender, Method, Outcome
from edge_agent.agent import EdgeAgent
from tests.edge_agent.conftest import CARDS, FakeClock


async def test_meal_tap_is_accepted_with_numbered_tickets(agent: EdgeAgent) -> None:
    """Each member gets the next ticket of the sitting; the name is masked by default."""
    first = await agent.tap(CARDS["meal"])
    assert first.outcome is Outcome.ACCEPTED
    assert first.ticket_no == 1
    assert first.display_name == "김*자"
    assert first.program_name == "경로식당 점심"
    visitor = await agent.register_visitor(
        gender=Gender.FEMALE, age_band="75-79", neighbourhood="행복동", purpose="상담"
    )
    assert visitor.visitor_code.startswith("V-B-k1-20261120-")  # its device: unique in the city


async def test_second_tap_same_day_is_already_served_without_new_ticket(
    agent: EdgeAgent,
) -> None:
    """One meal per member per service: the repeat shows the first ticket, issues none."""
    first = await agent.tap(CARDS["meal"])
    again = await agent.tap(" 04:a1:b2:c3 ")  # same card, as another reader types it
    assert again.outcome is Outcome.ALREADY_SERVED
    assert again.ticket_no == first.ticket_no
    events = await agent.store.all_events()
    assert [e.outcome for e in events] == [Outcome.ACCEPTED, Outcome.ALREADY_SERVED]
    assert await agent.store.served_count(events[0].service_date) == {"MEAL": 1}


async def test_staff_override_gives_a_second_ticket(agent: EdgeAgent) -> None:
    """Staff can override 'already served'."""
    await agent.tap(CARDS["meal"])
    result = await agent.check_in(
        "M1", "MEAL", method=Method.STAFF, override=True, reason="번호표 분실"
    )
    assert result.outcome is Outcome.ACCEPTED
    assert result.ticket_no == 2


@pytest.mark.parametrize(
    ("card", "outcome"),
    [
        ("DEADBEEF", Outcome.UNKNOWN_CREDENTIAL),
        ("not a card!", Outcome.UNKNOWN_CREDENTIAL),
        (CARDS["moved"], Outcome.INACTIVE_MEMBER),
        (CARDS["not_enrolled"], Outcome.NOT_ENROLLED),
    ],
)
async def test_refusals_are_recorded_for_staff(
    agent: EdgeAgent, card: str, outcome: Outcome
) -> None:
    """A refused tap tells the member to see staff and leaves an event for them."""
    result = await agent.tap(card)
    assert result.outcome is outcome
    assert result.ticket_no is None
    [event] = await agent.store.all_events()
    assert event.outcome is outcome
    assert event.event_id == result.event_id


async def test_no_service_outside_the_schedule(agent: EdgeAgent, clock: FakeClock) -> None:
    """At 3 a.m. nothing is on."""
    clock.at = clock.at - timedelta(hours=9)
    assert (await agent.tap(CARDS["meal"])).outcome is Outcome.NO_SERVICE


async def test_member_in_two_classes_chooses(agent: EdgeAgent) -> None:
    """Two classes on now: no event until the member picks one."""
    result = await agent.tap(CARDS["two_classes"])
    assert result.outcome is None
    assert result.needs_choice
    assert {c.program_id for c in result.choices} == {"SING", "PAINT"}
    assert await agent.store.all_events() == []
    chosen = await agent.check_in("M2", "PAINT")
    assert chosen.outcome is Outcome.ACCEPTED
    assert chosen.ticket_no is None  # classes have no number tickets
    assert (await agent.check_in("M2", "PAINT")).outcome is Outcome.ALREADY_SERVED


async def test_event_is_committed_before_the_answer(agent: EdgeAgent) -> None:
    """Another connection (another process after a crash) sees the event at once."""
    result = await agent.tap(CARDS["meal"])
    with sqlite3.connect(agent.settings.database) as other:
        rows = other.execute("SELECT event_id FROM outbox").fetchall()
    assert rows == [(str(result.event_id),)]


async def test_events_survive_a_restart_and_ids_are_time_ordered(
    agent: EdgeAgent, clock: FakeClock
) -> None:
    """Reopening the store finds every unconfirmed event, in order."""
    ids = []
    for card in (CARDS["meal"], "DEADBEEF", CARDS["moved"]):
        ids.append((await agent.tap(card)).event_id)
        clock.at += timedelta(seconds=1)
    async with EdgeAgent(agent.settings, clock=clock) as again:
        stored = await again.store.all_events()
        stats = await again.store.stats()
    assert [e.event_id for e in stored] == ids == sorted(ids)  # type: ignore[type-var]
    assert stats.pending == 3


async def test_listener_failure_never_loses_the_record(agent: EdgeAgent) -> None:
    """A crashing view does not undo the tap."""
    seen: list[object] = []

    def broken(_result: object) -> None:
        """A view that crashes on every result."""
        raise RuntimeError("UI crashed")

    agent.add_listener(broken)
    agent.add_listener(seen.append)
    result = await agent.tap(CARDS["meal"])
    assert result.outcome is Outcome.ACCEPTED
    assert seen == [result]
    assert len(await agent.store.all_events()) == 1


async def test_roster_for_another_device_is_refused(agent: EdgeAgent) -> None:
    """A kiosk only takes its own roster."""
    from tests.edge_agent.conftest import make_roster

    with pytest.raises(ValueError, match="not B/k1"):
        await agent.load_roster(make_roster(device_id="other"))
