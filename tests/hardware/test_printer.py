"""Tickets on python-escpos's Dummy printer: the ESC/POS bytes a real printer would get."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from escpos.printer import Dummy
from PIL import Image

from broker.const import DEFAULT_TIMEZONE
from hardware.printer import (
    ESC_R_KOREA,
    FS_KANJI_OFF,
    FS_KANJI_ON,
    EscposTicketPrinter,
    MealTicket,
    VisitorSlip,
    open_printer,
)

LOCAL = ZoneInfo(DEFAULT_TIMEZONE)
AT = datetime(2026, 11, 23, 12, 1, tzinfo=LOCAL)
TICKET = MealTicket(17, "B복지관", "경로식당 점심", AT, "김*자")
SLIP = VisitorSlip("V-B-20261123-0001", "B복지관", AT)
GS_V0 = b"\x1dv0"


def rasters(data: bytes) -> list[Image.Image]:
    """Decode every GS v 0 raster image in an ESC/POS stream."""
    images = []
    start = data.find(GS_V0)
    while start != -1:
        header = data[start + 4 : start + 8]
        width_bytes = header[0] | header[1] << 8
        height = header[2] | header[3] << 8
        body = data[start + 8 : start + 8 + width_bytes * height]
        # ESC/POS rasters are 1 = black; PIL's mode '1' raw data is 1 = white.
        inverted = bytes(b ^ 0xFF for b in body)
        images.append(Image.frombytes("1", (width_bytes * 8, height), inverted))
        start = data.find(GS_V0, start + 8 + len(body))
    return images


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    """Bounding box of the black pixels."""
    box = Image.eval(image.convert("L"), lambda v: 255 - v).getbbox()
    assert box is not None, "the image has no ink"
    return box


def printed(document: MealTicket | VisitorSlip, **kw: object) -> bytes:
    """The bytes of one document on a fresh Dummy printer (an 80 mm TM-T88 profile)."""
    dummy = Dummy(profile="TM-T88V")
    printer = EscposTicketPrinter(dummy, **kw)  # type: ignore[arg-type]
    if isinstance(document, MealTicket):
        printer.print_meal_ticket(document)
    else:
        printer.print_visitor_slip(document)
    output: bytes = dummy.output
    return output


def test_meal_ticket_as_images_prints_hangul_as_centred_rasters() -> None:
    """Korean lines are 512-dot rasters with centred ink; the number is huge text; then a cut."""
    data = printed(TICKET)
    assert data.startswith(b"\x1b@")  # ESC @: initialise
    assert b"\x1d!\x55" in data  # GS ! 0x55: characters 6x wide and 6x tall
    assert b"17\n" in data
    assert data.endswith(b"\x1dV\x00")  # GS V 0: full cut
    images = rasters(data)
    assert len(images) == 4  # facility, "식사 번호표", program, name
    for image in images:
        assert image.width == 512
        left, _, right, _ = ink_box(image)
        assert abs((left + right) / 2 - 256) < 12, "lines are centred on the paper"
    # Hangul never goes out as text bytes the printer would garble
    assert "식사".encode("euc_kr") not in data
    assert "식사".encode() not in data


def test_meal_ticket_in_euc_kr_uses_double_byte_mode() -> None:
    """On Korean-firmware printers Hangul is KS X 1001 text inside FS & ... FS ."""
    data = printed(TICKET, korean="euc-kr")
    title = ESC_R_KOREA + FS_KANJI_ON + "식사 번호표".encode("euc_kr") + FS_KANJI_OFF
    assert title in data
    assert ESC_R_KOREA + FS_KANJI_ON + "김*자 님".encode("euc_kr") + FS_KANJI_OFF in data
    assert rasters(data) == []
    assert b"17\n" in data


def test_syllable_outside_ks_x_1001_falls_back_to_an_image() -> None:
    """'똠' has no EUC-KR code: that one line is printed as an image, the rest as text."""
    data = printed(MealTicket(3, "B복지관", "경로식당 점심", AT, "똠*순"), korean="euc-kr")
    assert len(rasters(data)) == 1
    assert "경로식당 점심".encode("euc_kr") in data


def test_visitor_slip_has_the_code_as_text_and_code128() -> None:
    """Staff scan the slip on the next visit: CODE128 set B carries exactly the code."""
    data = printed(SLIP)
    code = SLIP.visitor_code.encode()
    assert b"\x1b!\x30" + b"\x1bE\x01" + b"\x1ba\x01" in data  # ESC ! 0x30: double size, bold
    assert code + b"\n" in data
    # GS k 73 n {B code: CODE128, n = length of '{B' + code
    assert b"\x1dkI" + bytes([len(code) + 2]) + b"{B" + code in data
    assert len(rasters(data)) == 3  # facility, "개인식별코드", reminder
    assert data.endswith(b"\x1dV\x00")


class BrokenPrinter(Dummy):  # type: ignore[misc]
    """A printer whose connection fails (paper door open, cable out)."""

    def _raw(self, msg: bytes) -> None:
        """Fail like a USB write to an unplugged printer."""
        raise OSError(19, "No such device")


def test_print_failure_shows_in_health_and_recovers() -> None:
    """A failed print raises to the caller and marks the printer disconnected until it works."""
    broken = EscposTicketPrinter(BrokenPrinter(profile="TM-T88V"))
    with pytest.raises(OSError, match="No such device"):
        broken.print_meal_ticket(TICKET)
    assert broken.state().connected is False
    assert "No such device" in (broken.state().detail or "")
    broken.printer = Dummy(profile="TM-T88V")
    broken.print_meal_ticket(TICKET)
    assert broken.state().connected is True


def test_open_printer_specs() -> None:
    """The dummy spec gives the library's Dummy; unknown kinds are refused."""
    assert isinstance(open_printer("dummy"), Dummy)
    with pytest.raises(ValueError, match="unknown printer spec"):
        open_printer("bluetooth:AA:BB")


def test_concurrent_prints_do_not_interleave() -> None:
    """Tickets printed from several threads at once come out whole, one after the other."""
    dummy = Dummy(profile="TM-T88V")
    printer = EscposTicketPrinter(dummy, korean="euc-kr")
    tickets = [MealTicket(n, "B복지관", "경로식당 점심", AT) for n in range(1, 9)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(printer.print_meal_ticket, tickets))
    documents = dummy.output.split(b"\x1dV\x00")[:-1]
    assert len(documents) == 8
    numbers = [re.findall(rb"\x1d!U(?:\x1b[Ea]\x01|\x1bt\x00)*(\d+)\n", d) for d in documents]
    assert sorted(int(n) for [n] in numbers) == list(range(1, 9))
    assert all(d.startswith(b"\x1b@") and d.count(b"\x1b@") == 1 for d in documents)
