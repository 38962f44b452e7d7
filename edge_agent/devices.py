"""The agent wires its kiosk's drivers: readers feed taps, the buzzer and printer follow results.

The drivers in hardware/ know nothing of the agent. This module is the one place that joins
them: `ReaderHub` is the readers' `ReaderSink` (normalise, debounce, `agent.tap`), `SignalOnTap`
and `TicketOnTap` turn tap results into device operations, and `run_hardware` builds all of it
from the agent's settings (`EdgeSettings.hardware`, environment WELFARE_HARDWARE__*).

Driver libraries (evdev, pyserial, nfcpy, gpiozero, python-escpos) come with the `hardware`
extra; the agent imports this module only when it runs hardware.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from broker.hashing import normalize_credential
from broker.models import ReaderState, VisitorInfo
from broker.vocabulary import Method, Outcome, ProgramKind
from edge_agent.models import TapResult
from hardware.config import HardwareSettings
from hardware.debounce import Debouncer
from hardware.feedback import Signal, SignalKind
from hardware.printer import MealTicket, TicketPrinter, VisitorSlip
from hardware.readers import CredentialReader, run_readers

if TYPE_CHECKING:
    from collections.abc import Iterable

    from edge_agent.agent import EdgeAgent

_LOG = logging.getLogger(__name__)


# -- readers -> agent ------------------------------------------------------------------------


class ReaderHub:
    """The readers' sink: one tap per card presentation, health per reader, to the agent."""

    def __init__(self, agent: EdgeAgent, *, debounce: Debouncer | None = None) -> None:
        """Deliver to `agent`, suppressing repeats with `debounce` (2 s window by default)."""
        self.agent = agent
        self.debounce = debounce or Debouncer()
        self.results: list[TapResult] = []
        self.states: dict[str, ReaderState] = {}
        self._lock = asyncio.Lock()

    async def credential(self, reader: str, raw: str, method: Method) -> None:
        """Normalise, debounce and tap; a garbled read is logged and dropped, not refused."""
        try:
            identifier = normalize_credential(raw)
        except ValueError:
            # A half-read card or a stray key press is noise, not a person at the kiosk:
            # recording it as an 'unknown card' would mislead staff reading refusals.
            _LOG.warning("reader %s produced an unreadable identifier (%d chars)", reader, len(raw))
            return
        # One lock: two readers seeing the same phone at once must still make one tap.
        async with self._lock:
            if not self.debounce.accept(identifier):
                _LOG.debug("reader %s: repeat read suppressed", reader)
                return
            result = await self.agent.tap(identifier, method=method)
        self.results.append(result)

    def reader_state(self, reader: str, state: ReaderState) -> None:
        """Pass a health change to the agent, which reports it in the next health message."""
        if self.states.get(reader) != state:
            _LOG.info("reader %s: %s", reader, "connected" if state.connected else "disconnected")
        self.states[reader] = state
        self.agent.set_reader_state(reader, state)

    async def run(self, readers: Iterable[CredentialReader]) -> None:
        """Run every reader until cancelled; one failing reader never stops the others."""
        await run_readers(readers, self)


# -- tap results -> buzzer, LEDs, printer ------------------------------------------------------


def signal_kind(result: TapResult) -> SignalKind:
    """The buzzer/LED signal for a tap result."""
    if result.needs_choice:
        return SignalKind.CHOOSE
    if result.outcome is Outcome.ACCEPTED:
        return SignalKind.ACCEPTED
    if result.outcome is Outcome.ALREADY_SERVED:
        return SignalKind.ALREADY_SERVED
    return SignalKind.REFUSED


class SignalOnTap:
    """Agent listener: the buzzer and LEDs follow every tap result."""

    def __init__(self, signal: Signal) -> None:
        """Signal on `signal`."""
        self.signal = signal

    def __call__(self, result: TapResult) -> None:
        """Show the result's signal; the pattern plays in the background."""
        self.signal.show(signal_kind(result))


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
        if result.outcome is not Outcome.ACCEPTED or result.program_kind is not ProgramKind.MEAL:
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

    def visitor(self, info: VisitorInfo) -> None:
        """Queue a new visitor's slip: the code as text and barcode, for their next visit."""
        slip = VisitorSlip(
            info.visitor_code, self.agent.settings.facility_name, self.agent.local_now()
        )
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._print, slip)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)

    def _print(self, document: MealTicket | VisitorSlip) -> None:
        """Print one ticket or slip; a failure is logged and shown in health, never raised."""
        try:
            if isinstance(document, MealTicket):
                self.printer.print_meal_ticket(document)
            else:
                self.printer.print_visitor_slip(document)
        except Exception:
            _LOG.exception("%r could not be printed", document)
        self.agent.set_reader_state(self.name, self.printer.state())

    async def drain(self) -> None:
        """Wait for tickets still printing."""
        if self.pending:
            await asyncio.wait(set(self.pending))


# -- settings -> devices -----------------------------------------------------------------------


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


async def run_hardware(agent: EdgeAgent, settings: HardwareSettings) -> None:
    """Attach the signal and printer to the agent and read every reader until cancelled."""
    signal = build_signal(settings)
    agent.add_listener(SignalOnTap(signal))
    agent.set_reader_state("buzzer", signal.state())
    printer = build_printer(settings)
    if printer is not None:
        on_tap = TicketOnTap(agent, printer)
        agent.add_listener(on_tap)
        agent.add_visitor_listener(on_tap.visitor)
        agent.set_reader_state("printer", printer.state())
    hub = ReaderHub(agent, debounce=Debouncer(settings.debounce_s))
    readers = build_readers(settings)
    if not readers:
        # A kiosk whose reader is not configured yet still publishes what it holds, sends its
        # heartbeat and takes its roster; it must not exit (systemd would restart it forever).
        _LOG.warning("no card or NFC reader is configured (WELFARE_HARDWARE__*): no taps")
        await asyncio.Event().wait()
    await hub.run(readers)
