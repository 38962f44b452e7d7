"""Meal-hall number tickets and visitor ID slips on ESC/POS receipt printers (python-escpos).

Korean is printed one of two ways, chosen per printer:
- `image` (default, works on every ESC/POS printer): Hangul lines are rendered with a Korean
  font (NanumGothic, Debian's fonts-nanum) and sent as a raster image (GS v 0);
- `euc-kr`: for printers with Korean firmware (Korean-market Epson TM, Bixolon SRP), the text
  is sent in double-byte mode (FS &) as KS X 1001 / EUC-KR bytes, which is faster and sharper.
  A syllable outside KS X 1001 (a rare name) falls back to an image for that line.
Digits (the ticket number, the visitor code) are always sent as text, in large print.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from escpos.escpos import Escpos
from PIL import Image, ImageDraw, ImageFont

from broker.models import ReaderState
from hardware.config import KoreanMode

_LOG = logging.getLogger(__name__)

FONT_DIRS = (Path("/usr/share/fonts/truetype/nanum"), Path("/usr/share/fonts/nanum"))
FONT_FILES = ("NanumGothicBold.ttf", "NanumGothic.ttf", "NanumBarunGothicBold.ttf")
# ESC/POS double-byte (Korean/Kanji) mode on and off, and the Korea international set.
FS_KANJI_ON = b"\x1c\x26"
FS_KANJI_OFF = b"\x1c\x2e"
ESC_R_KOREA = b"\x1b\x52\x0d"
DEFAULT_WIDTH_PX = 512  # 80 mm paper at 180 dpi (TM-T88); 576 for 203 dpi printers


@dataclass(frozen=True, slots=True)
class MealTicket:
    """A meal-hall number ticket."""

    number: int
    facility_name: str
    program_name: str
    issued_at: datetime
    display_name: str | None = None  # already masked as the facility configures


@dataclass(frozen=True, slots=True)
class VisitorSlip:
    """A one-off visitor's personal ID code (개인식별코드), to bring on the next visit."""

    visitor_code: str
    facility_name: str
    issued_at: datetime


class TicketPrinter(ABC):
    """Something that prints tickets and slips."""

    @abstractmethod
    def print_meal_ticket(self, ticket: MealTicket) -> None:
        """Print one meal number ticket."""

    @abstractmethod
    def print_visitor_slip(self, slip: VisitorSlip) -> None:
        """Print one visitor ID slip."""

    @abstractmethod
    def state(self) -> ReaderState:
        """The printer's health as the agent reports it."""


def ks_x_1001(text: str) -> bytes | None:
    """The text in EUC-KR as printers know it, or None if a character has no 2-byte code.

    Python's codec spells the 8,822 syllables missing from KS X 1001 as 8-byte jamo
    sequences (KS X 1001 annex 3), which no receipt printer understands.
    """
    out = bytearray()
    for char in text:
        try:
            code = char.encode("euc_kr")
        except UnicodeEncodeError:
            return None
        if len(code) > 2:
            return None
        out += code
    return bytes(out)


def code128_fits(code: str, width_px: int) -> bool:
    """Whether a CODE128 set-B symbol of `code` fits the paper at 2 dots a module.

    11 modules a character plus start, check and stop (35) and quiet zones of 10 each side:
    `V-B-20261123-0001` (17 characters) needs 484 dots, a device-named code of 24 needs 638.
    """
    return (11 * len(code) + 35 + 20) * 2 <= width_px


def find_korean_font() -> Path:
    """The installed Korean TrueType font used for Hangul rendered as an image."""
    for folder in FONT_DIRS:
        for name in FONT_FILES:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError("no Korean font found: install Debian's fonts-nanum")


class KoreanRenderer:
    """Render lines of Korean text as 1-bit images the width of the paper."""

    def __init__(self, *, width_px: int = DEFAULT_WIDTH_PX, font_path: Path | None = None) -> None:
        """Use `font_path` (NanumGothic by default) on paper `width_px` dots wide."""
        self.width_px = width_px
        self.font_path = font_path or find_korean_font()

    def render(self, text: str, *, size: int = 32) -> Image.Image:
        """One centred line of text as a black-on-white 1-bit image."""
        font = ImageFont.truetype(str(self.font_path), size)
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        height = int(bottom - top) + size // 4
        image = Image.new("1", (self.width_px, height), 1)
        draw = ImageDraw.Draw(image)
        x = max(0, (self.width_px - (right - left)) // 2 - left)
        draw.text((x, size // 8 - top), text, font=font, fill=0)
        return image


class EscposTicketPrinter(TicketPrinter):
    """Tickets on any python-escpos printer: USB, serial, network, file or `Dummy`."""

    def __init__(
        self,
        printer: Escpos,
        *,
        korean: KoreanMode = "image",
        width_px: int = DEFAULT_WIDTH_PX,
        font_path: Path | None = None,
        name: str = "printer",
    ) -> None:
        """Print on `printer`, sending Korean as `korean` ('image' or 'euc-kr')."""
        self.printer = printer
        self.korean: KoreanMode = korean
        self.name = name
        self.renderer = KoreanRenderer(width_px=width_px, font_path=font_path)
        self._last_error: str | None = None
        # One document at a time: two documents' commands interleaved would print garbage.
        self._lock = threading.Lock()

    def print_meal_ticket(self, ticket: MealTicket) -> None:
        """Facility, '식사 번호표', the number in the largest print, program, name, time."""
        self._run(ticket)

    def print_visitor_slip(self, slip: VisitorSlip) -> None:
        """Facility, '개인식별코드', the code large and as a barcode, a reminder, the date."""
        self._run(slip)

    def state(self) -> ReaderState:
        """Connected until a print fails; the failure is shown to operators."""
        return ReaderState(
            kind="printer", connected=self._last_error is None, detail=self._last_error
        )

    def _run(self, document: MealTicket | VisitorSlip) -> None:
        """Print one document; remember a failure for health and re-raise it to the caller."""
        with self._lock:
            self._run_locked(document)

    def _run_locked(self, document: MealTicket | VisitorSlip) -> None:
        """Print one document while holding the printer."""
        try:
            if isinstance(document, MealTicket):
                self._meal_ticket(document)
            else:
                self._visitor_slip(document)
            self._last_error = None
        except Exception as exc:
            self._last_error = f"print failed: {exc}"[:200]
            raise

    def _meal_ticket(self, ticket: MealTicket) -> None:
        """The ESC/POS commands of a meal ticket."""
        p = self.printer
        p.hw("INIT")
        self._korean_line(ticket.facility_name, size=28)
        self._korean_line("식사 번호표", size=40, bold=True)
        p.set(align="center", bold=True, custom_size=True, width=6, height=6)
        p.text(f"{ticket.number}\n")
        p.set(align="center", bold=False, normal_textsize=True)
        self._korean_line(ticket.program_name, size=28)
        if ticket.display_name:
            self._korean_line(f"{ticket.display_name} 님", size=32)
        p.text(f"{ticket.issued_at:%Y-%m-%d %H:%M}\n")
        p.cut()

    def _visitor_slip(self, slip: VisitorSlip) -> None:
        """The ESC/POS commands of a visitor slip."""
        p = self.printer
        p.hw("INIT")
        self._korean_line(slip.facility_name, size=28)
        self._korean_line("개인식별코드", size=40, bold=True)
        # Double width only if the code still fits one line (font A: 12 dots a character).
        wide = len(slip.visitor_code) * 24 <= self.renderer.width_px
        p.set(align="center", bold=True, double_width=wide, double_height=True)
        p.text(f"{slip.visitor_code}\n")
        p.set(align="center", bold=False, normal_textsize=True)
        # Staff and kiosk scanners read the code back: CODE128 set B ('{B') when its bars fit
        # the paper at 2 dots a module, else a QR code (a device-named code is too long).
        with contextlib.redirect_stdout(io.StringIO()):  # escpos prints a notice on stdout
            if code128_fits(slip.visitor_code, self.renderer.width_px):
                p.barcode(
                    "{B" + slip.visitor_code, "CODE128", function_type="B", height=64, width=2
                )
            else:
                p.qr(slip.visitor_code, size=6, native=True)
        self._korean_line("다음 방문 때 이 종이를 보여 주세요", size=24)
        p.text(f"{slip.issued_at:%Y-%m-%d}\n")
        p.cut()

    def _korean_line(self, text: str, *, size: int, bold: bool = False) -> None:
        """One centred line of (Korean) text, as EUC-KR text or as an image."""
        p = self.printer
        if self.korean == "euc-kr":
            encoded = ks_x_1001(text)
            if encoded is None:
                _LOG.info("line not printable in EUC-KR; printing it as an image")
            else:
                p.set(align="center", bold=bold, double_width=size >= 40, double_height=size >= 40)
                p._raw(ESC_R_KOREA + FS_KANJI_ON + encoded + FS_KANJI_OFF + b"\n")
                p.set(align="center", bold=False, normal_textsize=True)
                return
        p.image(self.renderer.render(text, size=size), impl="bitImageRaster")


def open_printer(spec: str, *, profile: str = "TM-T88V") -> Escpos:
    """Open a printer from a one-line spec, as kiosk settings and the CLI give it.

    `dummy`, `usb:VID:PID` (hex), `serial:/dev/ttyUSB0[:baud]`, `network:HOST[:PORT]`,
    `file:/dev/usb/lp0`.
    """
    from escpos import printer as escpos_printer

    kind, _, rest = spec.partition(":")
    if kind == "dummy":
        return escpos_printer.Dummy(profile=profile)
    if kind == "usb":
        vid, _, pid = rest.partition(":")
        return escpos_printer.Usb(int(vid, 16), int(pid, 16), profile=profile)
    if kind == "serial":
        device, _, baud = rest.partition(":")
        return escpos_printer.Serial(devfile=device, baudrate=int(baud or 19200), profile=profile)
    if kind == "network":
        host, _, port = rest.partition(":")
        return escpos_printer.Network(host, port=int(port or 9100), profile=profile)
    if kind == "file":
        return escpos_printer.File(devfile=rest, profile=profile)
    raise ValueError(f"unknown printer spec {spec!r}: use dummy, usb:, serial:, network: or file:")
