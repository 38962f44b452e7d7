"""Staff override of "already served": a reason is asked for and recorded, up to the center."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from broker.vocabulary import Method, Outcome
from tests.conftest import IngestFactory
from tests.meal_hall.hall import DAY, MEAL, drained, register_hall, running_hall, wait_for


async def test_an_override_needs_a_reason_and_the_center_keeps_it(
    tmp_path: Path, ingest_factory: IngestFactory, database_url: str
) -> None:
    """Served at one kiosk, refused at the other, let in by staff with a reason: the second
    serve is the staff's decision, recorded with its reason, and not flagged as a double."""
    register_hall(database_url)
    async with running_hall(tmp_path) as hall:
        ingest_factory(hall.city)
        k1, k2 = hall.kiosks["meal-1"], hall.kiosks["meal-2"]
        member = hall.eaters()[0]
        first = await k1.tap(member.card_uid)
        await wait_for(
            lambda: k2.store.served_ticket(member.member_ref, MEAL, DAY), what="the peer serve"
        )
        assert (await k2.tap(member.card_uid)).outcome is Outcome.ALREADY_SERVED
        with pytest.raises(ValueError, match="reason"):
            await k2.check_in(member.member_ref, MEAL, method=Method.STAFF, override=True)
        let_in = await k2.check_in(
            member.member_ref, MEAL, method=Method.STAFF, override=True, reason="번호표 분실"
        )
        assert let_in.outcome is Outcome.ACCEPTED
        assert let_in.ticket_no is not None  # a new ticket (numbering: test_tickets_and_capacity)
        assert first.ticket_no is not None
        await wait_for(lambda: drained(hall), within=90, what="every event confirmed")

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT device_id, method, override_reason FROM attendance_events"
            " WHERE member_ref = %s AND outcome = 'accepted' ORDER BY device_id",
            (member.member_ref,),
        ).fetchall()
        flagged = conn.execute("SELECT count(*) FROM double_serves").fetchone()
    assert rows == [("meal-1", "card", None), ("meal-2", "staff", "번호표 분실")]
    assert flagged == (0,)
