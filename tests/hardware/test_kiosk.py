"""Kiosk wiring: settings to devices, and a meal ticket printed for each accepted check-in."""

from __future__ import annotations

import re

import pytest
from escpos.printer import Dummy

from broker.models import Method
from edge_agent.agent import EdgeAgent
from hardware.keyboard_wedge import KeyboardWedgeReader
from hardware.kiosk import HardwareSettings, TicketOnTap, build_printer, build_readers
from hardware.nfc_reader import NfcReader
from hardware.printer import EscposTicketPrinter
from hardware.serial_reader import SerialCardReader
from tests.hardware.conftest import NFC_UID, WEDGE_CARD


def test_settings_from_the_environment_build_the_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    """WELFARE_HW_* variables choose the readers; an unset one is absent."""
    monkeypatch.setenv("WELFARE_HW_CARD_SERIAL", "/dev/welfare-rfid-serial")
    monkeypatch.setenv("WELFARE_HW_NFC", "usb:054c:06c3")
    readers = build_readers(HardwareSettings())
    assert [type(r) for r in readers] == [KeyboardWedgeReader, SerialCardReader, NfcReader]
    assert [r.name for r in readers] == ["card-usb", "card-serial", "nfc"]
    monkeypatch.setenv("WELFARE_HW_CARD_WEDGE", "")
    monkeypatch.delenv("WELFARE_HW_CARD_SERIAL")
    assert [r.name for r in build_readers(HardwareSettings())] == ["nfc"]
    assert build_printer(HardwareSettings()) is None


async def test_accepted_meal_tap_prints_its_ticket_number(agent: EdgeAgent) -> None:
    """Two members check in: tickets 1 and 2 are printed; a repeat tap prints nothing."""
    printer = build_printer(HardwareSettings(printer="dummy"))
    assert isinstance(printer, EscposTicketPrinter)
    listener = TicketOnTap(agent, printer)
    agent.add_listener(listener)
    await agent.tap(WEDGE_CARD, method=Method.CARD)
    await agent.tap(NFC_UID, method=Method.NFC)
    await agent.tap(WEDGE_CARD, method=Method.CARD)  # already served: no second ticket
    await listener.drain()
    assert isinstance(printer.printer, Dummy)
    output: bytes = printer.printer.output
    assert output.count(b"\x1dV\x00") == 2
    # the numbers in 6x6 print (GS ! 0x55), after the bold/align/code-page settings
    assert re.findall(rb"\x1d!U(?:\x1b[Ea]\x01|\x1bt\x00)*(\d+)\n", output) == [b"1", b"2"]
    assert (await agent.health()).readers["printer"].connected
