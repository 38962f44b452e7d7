"""The agent wiring its drivers: readers to taps, tap results to buzzer, LEDs and tickets."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from escpos.printer import Dummy
from gpiozero.pins.mock import MockFactory

from broker.vocabulary import Method, Outcome
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from edge_agent.devices import (
    ReaderHub,
    SignalOnTap,
    TicketOnTap,
    build_printer,
    build_readers,
    build_signal,
    run_hardware,
    signal_kind,
)
from edge_agent.models import ProgramChoice, TapResult
from hardware.config import HardwareSettings
from hardware.feedback import GpioSignal, SignalKind, SignalTiming, SimulatedSignal
from hardware.keyboard_wedge import KeyboardWedgeReader
from hardware.nfc_reader import NfcReader
from hardware.printer import EscposTicketPrinter
from hardware.readers import ReaderSink, SimulatedCardReader
from hardware.serial_reader import SerialCardReader
from tests.edge_agent.meal_hall import KEY, NFC_UID, WEDGE_CARD, RecordingHub, wait_for

FAST = SignalTiming(beep_s=0.01, gap_s=0.01, led_s=0.02)


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the hub's task and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- readers -> taps (the hub) ---------------------------------------------------------------


async def test_simulated_reader_card_makes_one_attendance(meal_agent: EdgeAgent) -> None:
    """Two quick reads of one card, a garbled read and an unplug: one event, health reported."""
    hub = ReaderHub(meal_agent)
    reader = SimulatedCardReader("desk")
    task = asyncio.create_task(hub.run([reader]))
    reader.present(WEDGE_CARD)
    reader.present(f" {WEDGE_CARD}\n")  # the same card, typed again with whitespace
    reader.present("?!")  # noise from a half-read card
    await reader.drain()
    reader.unplug()
    await reader.drain()
    reader.present(NFC_UID)  # presented while unplugged: never read
    await reader.drain()
    await stop(task)

    events = await meal_agent.store.all_events()
    assert [(e.member_ref, e.outcome, e.method) for e in events] == [
        ("M1", Outcome.ACCEPTED, Method.CARD)
    ]
    assert events[0].ticket_no == 1
    assert [r.outcome for r in hub.results] == [Outcome.ACCEPTED]
    health = await meal_agent.health()
    assert health.readers["desk"].connected is False
    assert health.readers["desk"].kind == "card"


async def test_two_readers_seeing_one_card_make_one_tap(meal_agent: EdgeAgent) -> None:
    """A phone held between two readers is one tap, not two."""
    hub = ReaderHub(meal_agent)
    first, second = SimulatedCardReader("a"), SimulatedCardReader("b")
    task = asyncio.create_task(hub.run([first, second]))
    first.present(NFC_UID)
    second.present(NFC_UID.lower())
    await first.drain()
    await second.drain()
    await wait_for(lambda: len(hub.states) == 2, what="both readers reporting")
    await stop(task)
    assert len(await meal_agent.store.all_events()) == 1


async def test_unknown_card_is_recorded_as_refusal(meal_agent: EdgeAgent) -> None:
    """A valid but unknown card is a refusal the staff can see (unlike noise)."""
    hub = ReaderHub(meal_agent)
    await hub.credential("desk", "DEADBEEF", Method.CARD)
    events = await meal_agent.store.all_events()
    assert [e.outcome for e in events] == [Outcome.UNKNOWN_CREDENTIAL]
    assert events[0].member_ref is None


async def test_simulated_nfc_reader_taps_with_method_nfc(meal_agent: EdgeAgent) -> None:
    """A simulated NFC reader reports kind 'nfc' and taps with method NFC."""
    hub = ReaderHub(meal_agent)
    reader = SimulatedCardReader("phone", kind="nfc", method=Method.NFC)
    task = asyncio.create_task(hub.run([reader]))
    reader.present(NFC_UID)
    await reader.drain()
    await stop(task)
    [event] = await meal_agent.store.all_events()
    assert (event.member_ref, event.method) == ("M2", Method.NFC)
    assert hub.states["phone"].kind == "nfc"


class ExplodingReader(SimulatedCardReader):
    """A reader whose driver fails once with an unexpected error, then works."""

    def __init__(self) -> None:
        """Fail on the first run only."""
        super().__init__("flaky")
        self.retry_s = 0.01
        self.runs = 0

    async def run(self, sink: ReaderSink) -> None:
        """Crash the first time."""
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("driver bug")
        await super().run(sink)


async def test_crashed_reader_is_reported_and_restarted(meal_agent: EdgeAgent) -> None:
    """An unexpected error shows in health and the reader comes back by itself."""
    hub = RecordingHub(meal_agent)
    reader = ExplodingReader()
    task = asyncio.create_task(hub.run([reader]))
    await wait_for(lambda: reader.runs == 2, what="the restart")
    reader.present(WEDGE_CARD)
    await reader.drain()
    await stop(task)
    assert len(await meal_agent.store.all_events()) == 1
    assert [(s.connected, s.detail) for s in hub.history] == [
        (False, "error: driver bug"),
        (True, "simulator"),
    ]


# -- tap results -> buzzer and LEDs --------------------------------------------------------------


def rises(pins: MockFactory, number: int) -> int:
    """How many times the pin went high."""
    return sum(1 for s in pins.pin(number).states if s.state is True)


def test_every_refusal_sounds_like_a_refusal() -> None:
    """Unknown card, inactive member, not enrolled and no service all map to 'refused'."""
    refusals = [
        Outcome.UNKNOWN_CREDENTIAL,
        Outcome.INACTIVE_MEMBER,
        Outcome.NOT_ENROLLED,
        Outcome.NO_SERVICE,
    ]
    kinds = {signal_kind(TapResult(outcome=o, method=Method.CARD)) for o in refusals}
    assert kinds == {SignalKind.REFUSED}


def test_every_tap_result_has_its_signal() -> None:
    """Accepted, already served and a class to choose each have their own signal."""
    choose = TapResult(outcome=None, method=Method.CARD, choices=(ProgramChoice("A", "a", None),))
    assert signal_kind(choose) is SignalKind.CHOOSE
    assert signal_kind(TapResult(Outcome.ACCEPTED, Method.CARD)) is SignalKind.ACCEPTED
    served = TapResult(Outcome.ALREADY_SERVED, Method.NFC)
    assert signal_kind(served) is SignalKind.ALREADY_SERVED


async def test_attached_signal_follows_the_agent(meal_agent: EdgeAgent) -> None:
    """Tapping the same card twice at the meal hall: one beep, then two (already served)."""
    pins = MockFactory()
    gpio = GpioSignal(timing=FAST, pin_factory=pins, background=False)
    simulated = SimulatedSignal()
    meal_agent.add_listener(SignalOnTap(gpio))
    meal_agent.add_listener(SignalOnTap(simulated))
    await meal_agent.tap(WEDGE_CARD, method=Method.CARD)
    await meal_agent.tap(WEDGE_CARD, method=Method.CARD)
    assert simulated.shown == [SignalKind.ACCEPTED, SignalKind.ALREADY_SERVED]
    assert rises(pins, 17) == 3
    assert rises(pins, 27) == 1
    assert gpio.state().connected
    gpio.close()
    assert not gpio.state().connected


# -- settings -> devices, tickets ----------------------------------------------------------------


def test_settings_from_the_environment_build_the_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    """WELFARE_HARDWARE__* variables choose the readers; an unset one is absent."""
    monkeypatch.setenv("WELFARE_FACILITY_ID", "B")
    monkeypatch.setenv("WELFARE_DEVICE_ID", "kiosk-1")
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", KEY)
    monkeypatch.setenv("WELFARE_HARDWARE__CARD_SERIAL", "/dev/welfare-rfid-serial")
    monkeypatch.setenv("WELFARE_HARDWARE__NFC", "usb:054c:06c3")
    readers = build_readers(EdgeSettings().hardware)
    assert [type(r) for r in readers] == [KeyboardWedgeReader, SerialCardReader, NfcReader]
    assert [r.name for r in readers] == ["card-usb", "card-serial", "nfc"]
    monkeypatch.setenv("WELFARE_HARDWARE__CARD_WEDGE", "")
    monkeypatch.delenv("WELFARE_HARDWARE__CARD_SERIAL")
    hardware = EdgeSettings().hardware
    assert [r.name for r in build_readers(hardware)] == ["nfc"]
    assert build_printer(hardware) is None
    assert isinstance(build_signal(hardware), SimulatedSignal)


async def test_accepted_meal_tap_prints_its_ticket_number(meal_agent: EdgeAgent) -> None:
    """Two members check in: tickets 1 and 2 are printed; a repeat tap prints nothing."""
    printer = build_printer(HardwareSettings(printer="dummy"))
    assert isinstance(printer, EscposTicketPrinter)
    listener = TicketOnTap(meal_agent, printer)
    meal_agent.add_listener(listener)
    await meal_agent.tap(WEDGE_CARD, method=Method.CARD)
    await meal_agent.tap(NFC_UID, method=Method.NFC)
    await meal_agent.tap(WEDGE_CARD, method=Method.CARD)  # already served: no second ticket
    await listener.drain()
    assert isinstance(printer.printer, Dummy)
    output: bytes = printer.printer.output
    assert output.count(b"\x1dV\x00") == 2
    # the numbers in 6x6 print (GS ! 0x55), after the bold/align/code-page settings
    assert re.findall(rb"\x1d!U(?:\x1b[Ea]\x01|\x1bt\x00)*(\d+)\n", output) == [b"1", b"2"]
    assert (await meal_agent.health()).readers["printer"].connected


async def test_run_hardware_attaches_the_devices_of_the_settings(meal_agent: EdgeAgent) -> None:
    """No readers configured: the buzzer and printer are attached and reported, and it keeps
    running (the agent still publishes and syncs) until cancelled."""
    task = asyncio.create_task(
        run_hardware(meal_agent, HardwareSettings(card_wedge=None, printer="dummy"))
    )
    await asyncio.sleep(0.3)
    assert not task.done()  # no reader is no reason to stop
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    readers = (await meal_agent.health()).readers
    assert readers["buzzer"].connected
    assert readers["printer"].connected
