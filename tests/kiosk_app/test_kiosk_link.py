"""The local link between the edge agent and its views (no window needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from broker.ids import uuid7
from broker.vocabulary import Gender, Method, Outcome, ProgramKind
from edge_agent.link import (
    LinkClient,
    LinkError,
    LinkStatus,
    tap_result_from_json,
    tap_result_to_json,
)
from edge_agent.models import ProgramChoice, TapResult
from kiosk_app import demo


def run(body: Callable[[demo.DemoAgent], Awaitable[None]], tmp_path: Path) -> None:
    """Run `body` against a demo agent serving the link in `tmp_path`."""

    async def main() -> None:
        """Start the agent and the link, run the body."""
        async with demo.demo_agent(tmp_path) as agent:
            await body(agent)

    asyncio.run(main())


async def connected(
    agent: demo.DemoAgent, taps: list[TapResult], statuses: list[LinkStatus] | None = None
) -> tuple[LinkClient, asyncio.Task[None]]:
    """A subscribed view client collecting pushes."""
    client = LinkClient(
        agent.socket,
        on_tap=taps.append,
        on_status=(statuses.append if statuses is not None else None),
    )
    task = asyncio.get_running_loop().create_task(client.run())
    await client.wait_connected()
    return client, task


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait up to 5 s for a condition."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def stop(client: LinkClient, task: asyncio.Task[None]) -> None:
    """Close a client and its reader task."""
    await client.close()
    await asyncio.wait_for(task, 5)


def test_tap_result_round_trips_through_json() -> None:
    """Every field of a tap result survives the wire, a pending choice as much as an outcome."""
    choice = TapResult(
        outcome=None,
        method=Method.NFC,
        member_ref="M004",
        display_name="최*자",
        choices=(
            ProgramChoice("SONG", "노래교실", "2층 강당"),
            ProgramChoice("PHONE", "스마트폰", None),
        ),
    )
    accepted = TapResult(
        outcome=Outcome.ACCEPTED,
        method=Method.CARD,
        event_id=uuid7(),
        member_ref="M001",
        display_name="김*수",
        program_id="MEAL",
        program_name="경로식당 점심",
        program_kind=ProgramKind.MEAL,
        ticket_no=12,
    )
    for result in (choice, accepted):
        assert tap_result_from_json(json.loads(json.dumps(tap_result_to_json(result)))) == result
    assert tap_result_to_json(choice)["outcome"] is None


def test_tap_is_pushed_to_subscribers_after_it_is_recorded(tmp_path: Path) -> None:
    """A tap (from a reader) reaches the view, and the event is already on disk."""

    async def body(agent: demo.DemoAgent) -> None:
        """Tap through a second client standing in for the reader."""
        taps: list[TapResult] = []
        view, view_task = await connected(agent, taps)
        reader = LinkClient(agent.socket, subscribe=False)
        reader_task = asyncio.get_running_loop().create_task(reader.run())
        await reader.wait_connected()
        reply = await reader.tap(demo.CARD_MEAL)
        await until(lambda: len(taps) == 1, "the push")
        assert taps[0] == reply
        assert reply.outcome is Outcome.ACCEPTED
        assert reply.ticket_no == 1
        events = await agent.agent.store.all_events()
        assert [str(e.event_id) for e in events] == [str(reply.event_id)]
        await stop(reader, reader_task)
        await stop(view, view_task)

    run(body, tmp_path)


def test_status_reports_service_on_now_and_online_changes(tmp_path: Path) -> None:
    """Subscribing yields the status; going offline is pushed."""

    async def body(agent: demo.DemoAgent) -> None:
        """Flip the agent's online flag and watch the pushes."""
        statuses: list[LinkStatus] = []
        view, task = await connected(agent, [], statuses)
        await until(lambda: bool(statuses), "first status")
        first = statuses[-1]
        assert first.facility_name == demo.FACILITY_NAME
        assert first.local_time == "12:05"
        assert first.local_date == "2026-11-23"
        assert {s.program_id for s in first.on_now} == {demo.MEAL, demo.SONG, demo.PHONE}
        assert first.online
        agent.agent.online = False
        await until(lambda: not statuses[-1].online, "offline push")
        await stop(view, task)

    run(body, tmp_path)


def test_choose_override_visitor_and_counts(tmp_path: Path) -> None:
    """The staff and member commands a view sends, each answered after the record."""

    async def body(agent: demo.DemoAgent) -> None:
        """Walk a member through choice, an already-served override and a visitor."""
        taps: list[TapResult] = []
        view, task = await connected(agent, taps)
        choice = await view.tap(demo.CARD_TWO_CLASSES)
        assert choice.outcome is None
        assert choice.needs_choice
        assert {c.program_id for c in choice.choices} == {demo.SONG, demo.PHONE}
        chosen = await view.choose("M004", demo.SONG, method=Method.CARD)
        assert chosen.outcome is Outcome.ACCEPTED
        assert chosen.program_id == demo.SONG
        await view.tap(demo.CARD_MEAL)
        again = await view.tap(demo.CARD_MEAL)
        assert again.outcome is Outcome.ALREADY_SERVED
        override = await view.override("M001", demo.MEAL, "번호표 분실")
        assert override.outcome is Outcome.ACCEPTED
        assert override.ticket_no == 2
        assert override.method is Method.STAFF
        info = await view.register_visitor(
            gender=Gender.FEMALE, age_band="80-84", neighbourhood="신흥동", purpose="상담"
        )
        assert info.visitor_code == "V-B-kiosk-1-20261123-0001"
        day, counts = await view.counts()
        assert day == "2026-11-23"
        assert {c.program_id: c.count for c in counts} == {
            demo.MEAL: 1,
            demo.SONG: 1,
            demo.PHONE: 0,
        }
        # Staff see the seats left of the meal sitting (capacity 300, one served); classes none.
        assert {c.program_id: c.seats_left for c in counts} == {
            demo.MEAL: 299,
            demo.SONG: None,
            demo.PHONE: None,
        }
        await until(lambda: len(taps) == 5, "five pushes")
        with pytest.raises(LinkError, match="unknown op"):
            await view.request("format_disk")
        with pytest.raises(LinkError, match="LookupError"):
            await view.choose("NOBODY", demo.SONG, method=Method.CARD)
        await stop(view, task)

    run(body, tmp_path)


def test_a_view_that_dies_loses_nothing(tmp_path: Path) -> None:
    """Taps go on being recorded while no view is connected; a new view just resumes."""

    async def body(agent: demo.DemoAgent) -> None:
        """Kill the view's connection mid-stream, tap, reconnect."""
        taps: list[TapResult] = []
        view, task = await connected(agent, taps)
        await view.tap(demo.CARD_MEAL)
        await until(lambda: len(taps) == 1, "first push")
        task.cancel()  # the UI process crashes: its socket goes away without a goodbye
        await asyncio.gather(task, return_exceptions=True)
        for card in (demo.CARD_MEAL_2, demo.CARD_UNKNOWN, demo.CARD_INACTIVE):
            await agent.agent.tap(card)  # the reader keeps working through the agent
        events = await agent.agent.store.all_events()
        assert [e.outcome for e in events] == [
            Outcome.ACCEPTED,
            Outcome.ACCEPTED,
            Outcome.UNKNOWN_CREDENTIAL,
            Outcome.INACTIVE_MEMBER,
        ]
        later: list[TapResult] = []
        view2, task2 = await connected(agent, later)
        await view2.tap(demo.CARD_ONE_CLASS)
        await until(lambda: len(later) == 1, "push to the new view")
        await stop(view2, task2)
        await view.close()

    run(body, tmp_path)


def test_view_reconnects_after_the_agent_restarts_its_link(tmp_path: Path) -> None:
    """The view waits and reconnects by itself; pushes resume."""

    async def body(agent: demo.DemoAgent) -> None:
        """Stop and restart the link server under a connected view."""
        taps: list[TapResult] = []
        ups: list[bool] = []
        view = LinkClient(agent.socket, on_tap=taps.append, on_connection=ups.append, retry_s=0.05)
        task = asyncio.get_running_loop().create_task(view.run())
        await view.wait_connected()
        await agent.server.__aexit__(None, None, None)
        await until(lambda: not view.connected, "link down")
        with pytest.raises(LinkError):
            await view.tap(demo.CARD_MEAL)
        await agent.server.__aenter__()
        await view.wait_connected()
        await until(lambda: ups[-3:] == [True, False, True], "reconnect callbacks")
        await asyncio.sleep(0.1)  # the subscription is a request of its own
        await agent.agent.tap(demo.CARD_MEAL)
        await until(lambda: len(taps) == 1, "push after reconnect")
        await stop(view, task)

    run(body, tmp_path)
