"""Wire a kiosk's hardware to its edge agent from settings (environment WELFARE_HW_*)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.models import ProgramKind
from edge_agent.models import TapResult, Verdict
from hardware.feedback import Signal
from hardware.hub import Debouncer, ReaderHub
from hardware.printer import KoreanMode, MealTicket, TicketPrinter
from hardware.readers import CredentialReader

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

_LOG = logging.getLogger(__name__)


class HardwareSettings(BaseSettings):
    """Which devices this kiosk has; unset means absent. Defaults match firmware_config/."""

    model_config = SettingsConfigDict(env_prefix="WELFARE_HW_")

    card_wedge: str | None = "/dev/input/welfare-card"
    card_serial: str | None = None
    card_serial_baud: int = 9600
    nfc: str | None = None  # nfcpy path, e.g. "usb" or "usb:054c:06c3"
    printer: str | None = None  # open_printer spec, e.g. "usb:04b8:0202"
    printer_korean: KoreanMode = "image"
    printer_width_px: int = 512
    gpio: bool = False
    buzzer_pin: int = 17
    green_pin: int = 27
    red_pin: int = 22
    debounce_s: float = 2.0


def build_readers(settings: HardwareSettings) -> list[CredentialReader]:
    """The configured card and NFC readers (imports each driver only when it is used)."""
    readers: list[CredentialReader] = []
    if settings.card_wedge:
        from hardware.keyboard_wedge import KeyboardWedgeReader

        readers.append(KeyboardWedgeReader("card-usb", path=settings.card_wedge))
    if settings.card_serial:
        from hardware.serial_reader import SerialCardReader

        readers.append(
            SerialCardReader(
                "card-serial", url=settings.card_serial, baudrate=settings.card_serial_baud
            )
        )
    if settings.nfc:
        from hardware.nfc_reader import NfcReader

        readers.append(NfcReader("nfc", path=settings.nfc))
    return readers


def build_signal(settings: HardwareSettings) -> Signal:
    """GPIO buzzer and LEDs when configured, otherwise the simulator."""
    if settings.gpio:
        from hardware.feedback import GpioSignal

        return GpioSignal(
            buzzer_pin=settings.buzzer_pin, green_pin=settings.green_pin, red_pin=settings.red_pin
        )
    from hardware.feedback import SimulatedSignal

    return SimulatedSignal()


def build_printer(settings: HardwareSettings) -> TicketPrinter | None:
    """The ticket printer when configured."""
    if not settings.printer:
        return None
    from hardware.printer import EscposTicketPrinter, open_printer

    return EscposTicketPrinter(
        open_printer(settings.printer),
        korean=settings.printer_korean,
        width_px=settings.printer_width_px,
    )


class TicketOnTap:
    """Agent listener: print the number ticket of every accepted meal check-in."""

    def __init__(self, agent: EdgeAgent, printer: TicketPrinter, *, name: str = "printer") -> None:
        """Print on `printer` for `agent`'s taps; report the printer's health as `name`."""
        self.agent = agent
        self.printer = printer
        self.name = name
        self.pending: set[asyncio.Future[None]] = set()
        # One worker: tickets come out in the order of the taps, never interleaved.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ticket-printer")

    def __call__(self, result: TapResult) -> None:
        """Queue the ticket; the tap is already recorded and never waits for paper."""
        if result.verdict is not Verdict.ACCEPTED or result.program_kind is not ProgramKind.MEAL:
            return
        if result.ticket_no is None:
            return
        ticket = MealTicket(
            number=result.ticket_no,
            facility_name=self.agent.settings.facility_name,
            program_name=result.program_name or "",
            issued_at=self.agent.local_now(),
            display_name=result.display_name,
        )
        # USB printing takes 0.1-0.5 s: a worker thread keeps the next tap instant.
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._print, ticket)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)

    def _print(self, ticket: MealTicket) -> None:
        """Print one ticket; a failure is logged and shown in health, never raised."""
        try:
            self.printer.print_meal_ticket(ticket)
        except Exception:
            _LOG.exception("ticket %d could not be printed", ticket.number)
        self.agent.set_reader_state(self.name, self.printer.state())

    async def drain(self) -> None:
        """Wait for tickets still printing."""
        if self.pending:
            await asyncio.wait(set(self.pending))


async def run_hardware(agent: EdgeAgent, settings: HardwareSettings | None = None) -> None:
    """Attach the signal and printer to the agent and read every reader until cancelled."""
    settings = settings or HardwareSettings()
    signal = build_signal(settings)
    signal.attach(agent)
    agent.set_reader_state("buzzer", signal.state())
    printer = build_printer(settings)
    if printer is not None:
        agent.add_listener(TicketOnTap(agent, printer))
        agent.set_reader_state("printer", printer.state())
    hub = ReaderHub(agent, debounce=Debouncer(settings.debounce_s))
    await hub.run(build_readers(settings))
