"""One-off visitors at the kiosk: city-unique codes, counted under the visitor program."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
from escpos.printer import Dummy

from broker.ids import uuid7
from broker.models import DeviceConfig
from broker.vocabulary import Gender, Outcome
from edge_agent.devices import TicketOnTap
from hardware.printer import EscposTicketPrinter
from ingest_api.registry.visitors import set_visitor_program, visitor_program
from tests.conftest import IngestFactory
from tests.helpers import count_by_rules
from tests.meal_hall.hall import (
    CENTER,
    FACILITY,
    LUNCH,
    drained,
    register_hall,
    running_hall,
    wait_for,
)

VISIT = "B-VISIT"


def _register_visitor_program(url: str) -> None:
    """The facility's one-off visitor program, counted by the attendance rule."""
    register_hall(url, extra=(VISIT, "일시 방문 상담", "정보제공"))
    with psycopg.connect(url) as conn:
        set_visitor_program(conn, facility_id=FACILITY, program_id=VISIT)


async def test_kiosk_visitors_appear_in_the_figures_and_a_returning_visitor_keeps_the_code(
    tmp_path: Path, ingest_factory: IngestFactory, database_url: str
) -> None:
    """Two kiosks register a visitor each the same day (two codes, both kept), a slip prints;
    one visitor comes back the next day with the slip: 2 persons, 3 visits."""
    _register_visitor_program(database_url)
    with psycopg.connect(database_url) as conn:
        under = visitor_program(conn, facility_id=FACILITY)
    async with running_hall(tmp_path) as hall:
        ingest_factory(hall.city)
        for device, agent in hall.kiosks.items():
            await agent.apply_config(
                DeviceConfig(
                    facility_id=FACILITY,
                    device_id=device,
                    facility_name=CENTER.name,
                    issued_at=LUNCH,
                    visitor_program_id=under,
                )
            )
        k1, k2 = hall.kiosks["meal-1"], hall.kiosks["meal-2"]
        dummy = Dummy(profile="TM-T88V")
        slips = TicketOnTap(k1, EscposTicketPrinter(dummy))
        k1.add_visitor_listener(slips.visitor)
        first = await k1.register_visitor(
            gender=Gender.FEMALE, age_band="75-79", neighbourhood="중앙동", purpose="식사 문의"
        )
        second = await k2.register_visitor(
            gender=Gender.MALE, age_band="65-69", neighbourhood="남산동", purpose="상담"
        )
        await slips.drain()
        assert first.visitor_code != second.visitor_code
        assert first.visitor_code.encode() in dummy.output  # the code, as text and barcode
        # The next day the first visitor's slip goes under meal-2's scanner.
        hall.clocks["meal-2"].at = LUNCH + timedelta(days=1)
        back = await k2.tap(first.visitor_code)
        assert back.outcome is Outcome.ACCEPTED
        assert back.program_id == VISIT
        await wait_for(lambda: drained(hall), within=90, what="every event confirmed")

    with psycopg.connect(database_url) as conn:
        codes = {r[0] for r in conn.execute("SELECT visitor_code FROM visitors")}
    assert codes == {first.visitor_code, second.visitor_code}
    assert count_by_rules(database_url)[(FACILITY, VISIT)] == (2, 3)


def test_a_visitor_code_arriving_twice_with_other_data_is_kept_for_staff(
    database_url: str,
) -> None:
    """The registry's trigger no longer drops a second visitor under a code silently."""
    register_hall(database_url)
    code = "V-B-20261123-0001"  # a code of the old form, issued by two kiosks alike
    with psycopg.connect(database_url) as conn:
        for device, gender in (("meal-1", "F"), ("meal-2", "M"), ("meal-2", "M")):
            conn.execute(
                "INSERT INTO attendance_events (event_id, occurred_at, facility_id, device_id,"
                " service_date, member_ref, method, outcome, visitor) VALUES (%s, %s, 'B', %s,"
                " %s, %s, 'staff', 'accepted', %s::jsonb)",
                (
                    uuid7(LUNCH),
                    LUNCH,
                    device,
                    LUNCH.date(),
                    code,
                    f'{{"visitor_code": "{code}", "gender": "{gender}", "age_band": "75-79",'
                    f' "neighbourhood": "중앙동", "purpose": "상담"}}',
                ),
            )
        kept = conn.execute("SELECT gender FROM visitors WHERE visitor_code = %s", (code,))
        conflicts = conn.execute(
            "SELECT device_id, visitor->>'gender' FROM visitor_code_conflicts"
        ).fetchall()
        assert kept.fetchall() == [("F",)]
    assert conflicts == [("meal-2", "M"), ("meal-2", "M")]
