"""The visitor slip as printed: its ESC/POS bytes drawn as paper (docs/screens/visitor_slip.png)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from escpos.printer import Dummy
from PIL import Image

from hardware.escpos_render import UnknownCommandError, render_escpos
from hardware.printer import EscposTicketPrinter, MealTicket, VisitorSlip

AT = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Seoul"))
QR_STORE = b"\x1d(k"
CODE128 = b"\x1dkI"


def _slip(code: str) -> bytes:
    """The bytes of one visitor slip."""
    raw = Dummy(profile="TM-T88V")
    EscposTicketPrinter(raw).print_visitor_slip(VisitorSlip(code, "한마음종합사회복지관", AT))
    output: bytes = raw.output
    return output


def _ink_rows(image: Image.Image) -> int:
    """How many pixel rows carry ink."""
    grey = image.convert("L")
    width, height = grey.size
    data = grey.tobytes()  # one byte a pixel, row after row
    return sum(1 for y in range(height) if min(data[y * width : (y + 1) * width]) < 128)


def test_a_device_named_code_prints_as_a_qr_code_an_older_short_one_as_code128() -> None:
    """A 24-character code's bars would not fit 512 dots at 2 dots a module: QR instead."""
    long_code = _slip("V-B-meal-1-20261123-0001")
    short_code = _slip("V-B-20261123-0001")
    assert QR_STORE + b"\x1b\x001P0V-B-meal-1-20261123-0001" in long_code
    assert CODE128 not in long_code
    assert CODE128 + bytes([19]) + b"{BV-B-20261123-0001" in short_code
    assert QR_STORE not in short_code


def test_the_slip_is_drawn_from_its_bytes_code_and_symbol_included() -> None:
    """The picture is paper-wide, and every part of the slip leaves ink on it."""
    paper = render_escpos(_slip("V-B-meal-1-20261123-0001"))
    assert paper.width == 512 + 2 * 16
    # Facility, title, code, QR (about 150 dots), reminder, date: far more than any one line.
    assert _ink_rows(paper) > 250
    ticket = Dummy(profile="TM-T88V")
    EscposTicketPrinter(ticket).print_meal_ticket(MealTicket(57, "B", "점심", AT, "김*수"))
    digits = render_escpos(ticket.output)
    assert _ink_rows(digits) > 6 * 24  # the number in 6× font-A height


def test_an_unknown_command_is_refused_not_drawn_as_something_else() -> None:
    """A renderer that guessed would show a slip the printer never printed."""
    with pytest.raises(UnknownCommandError):
        render_escpos(b"\x1b@\x1bZhello")
