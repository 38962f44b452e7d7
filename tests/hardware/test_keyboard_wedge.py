"""Keyboard-wedge RFID readers: key decoding, exclusive grab, unplug/replug, one tap per card."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import evdev
import pytest
from evdev import ecodes

from broker.vocabulary import Method, Outcome
from edge_agent.agent import EdgeAgent
from edge_agent.devices import ReaderHub
from hardware.keyboard_wedge import KeyboardWedgeReader, KeyDecoder, find_input_device
from tests.edge_agent.meal_hall import WEDGE_CARD, RecordingHub, wait_for

_SHIFTED = {":": ecodes.KEY_SEMICOLON, "_": ecodes.KEY_MINUS}


def keystrokes(
    text: str, *, start: float = 1000.0, step: float = 0.008, end: int = ecodes.KEY_ENTER
) -> list[evdev.InputEvent]:
    """The events a wedge reader emits when it types `text` and a terminator key."""
    events: list[evdev.InputEvent] = []
    at = start

    def key(code: int, value: int) -> None:
        """One key event and its SYN_REPORT, then advance the clock."""
        nonlocal at
        sec, usec = int(at), round((at - int(at)) * 1_000_000)
        events.append(evdev.InputEvent(sec, usec, ecodes.EV_KEY, code, value))
        events.append(evdev.InputEvent(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0))
        at += step

    for char in text:
        shift = char.isupper() or char in _SHIFTED
        code = _SHIFTED.get(char) or getattr(ecodes, f"KEY_{char.upper()}")
        if shift:
            key(ecodes.KEY_LEFTSHIFT, 1)
        key(code, 1)
        key(code, 0)
        if shift:
            key(ecodes.KEY_LEFTSHIFT, 0)
    key(end, 1)
    key(end, 0)
    return events


def decode_all(decoder: KeyDecoder, events: list[evdev.InputEvent]) -> list[str]:
    """Every number the decoder produces from `events`."""
    return [n for e in events if (n := decoder.feed(e)) is not None]


def test_decoder_reads_a_typed_number_at_enter() -> None:
    """Digits up to Enter make one number; key-up and SYN events add nothing."""
    assert decode_all(KeyDecoder(), keystrokes(WEDGE_CARD)) == [WEDGE_CARD]


def test_decoder_handles_shift_hex_and_tab() -> None:
    """Hex readers type letters (with shift) and colons; some end with Tab instead of Enter."""
    events = keystrokes("04:A2:fF", end=ecodes.KEY_TAB)
    assert decode_all(KeyDecoder(), events) == ["04:A2:fF"]


def test_decoder_discards_keys_typed_slowly_before_a_card() -> None:
    """A person pressing '9' on a keyboard before a card must not prefix the card number."""
    person = [
        evdev.InputEvent(990, 0, ecodes.EV_KEY, ecodes.KEY_9, 1),
        evdev.InputEvent(990, 50_000, ecodes.EV_KEY, ecodes.KEY_9, 0),
    ]
    assert decode_all(KeyDecoder(), person + keystrokes(WEDGE_CARD)) == [WEDGE_CARD]


def test_decoder_ignores_a_lone_enter_and_keypad_digits_count() -> None:
    """Enter with nothing typed is not a card; keypad digits are digits."""
    lone = keystrokes("")
    keypad = [
        evdev.InputEvent(2000, i * 1000, ecodes.EV_KEY, getattr(ecodes, f"KEY_KP{d}"), 1)
        for i, d in enumerate("42")
    ] + [evdev.InputEvent(2000, 9000, ecodes.EV_KEY, ecodes.KEY_KPENTER, 1)]
    assert decode_all(KeyDecoder(), lone + keypad) == ["42"]


class SyntheticDevice:
    """An input device that replays prepared events, then reports itself unplugged."""

    def __init__(self, events: list[evdev.InputEvent], *, name: str = "RFID Reader") -> None:
        """Replay `events`."""
        self.name = name
        self.events = events
        self.grabbed = False
        self.closed = False

    def grab(self) -> None:
        """Take the device exclusively."""
        self.grabbed = True

    def ungrab(self) -> None:
        """Release it."""
        self.grabbed = False

    def close(self) -> None:
        """Close it."""
        self.closed = True

    async def async_read_loop(self) -> AsyncIterator[evdev.InputEvent]:
        """Yield the events, then fail as evdev does when the USB device is pulled out."""
        for event in self.events:
            assert self.grabbed, "the reader must grab the device before reading"
            yield event
            await asyncio.sleep(0)
        raise OSError(errno.ENODEV, "No such device")


async def test_wedge_reader_taps_once_and_reports_unplug_and_replug(agent: EdgeAgent) -> None:
    """A card typed twice (double read) makes one event; unplug and replug reach health."""
    first = SyntheticDevice(keystrokes(WEDGE_CARD) + keystrokes(WEDGE_CARD, start=1000.5))
    second = SyntheticDevice([])
    plugged: list[SyntheticDevice | None] = [first, None, None, second]

    def opener() -> SyntheticDevice | None:
        """The next state of the USB port: a device, or nothing plugged in."""
        return plugged.pop(0) if plugged else None

    hub = RecordingHub(agent)
    reader = KeyboardWedgeReader("card-usb", opener=opener, retry_s=0.01)
    task = asyncio.create_task(hub.run([reader]))
    await wait_for(lambda: not plugged and len(hub.history) >= 4, what="unplug and replug")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    events = await agent.store.all_events()
    assert [(e.member_ref, e.method, e.outcome) for e in events] == [
        ("M1", Method.CARD, Outcome.ACCEPTED)
    ]
    # connected, unplugged, (not found while away is not repeated), connected again, unplugged
    assert [s.connected for s in hub.history[:4]] == [True, False, True, False]
    assert first.closed
    assert not first.grabbed
    health = await agent.health()
    assert health.readers["card-usb"].kind == "card"


def test_wedge_reader_needs_a_way_to_find_the_device() -> None:
    """A reader configured with nothing to find it by is a configuration error."""
    with pytest.raises(ValueError, match="path, device name or USB id"):
        KeyboardWedgeReader("card-usb")


@pytest.mark.skipif(
    not os.path.exists("/dev/uinput"),
    reason="/dev/uinput is absent here (no uinput module in this sandbox): a virtual "
    "keyboard cannot be created; the decoding and reader loop are tested above instead",
)
async def test_wedge_reader_through_a_real_uinput_keyboard(agent: EdgeAgent) -> None:
    """A virtual USB keyboard types a card number; the grabbed reader turns it into one event."""
    keys = [getattr(ecodes, f"KEY_{d}") for d in "0123456789"] + [ecodes.KEY_ENTER]
    with evdev.UInput({ecodes.EV_KEY: keys}, name="welfare-test-wedge") as keyboard:
        await asyncio.sleep(0.3)  # udev creates the event node
        hub = ReaderHub(agent)
        reader = KeyboardWedgeReader("card-usb", device_name="welfare-test-wedge")
        task = asyncio.create_task(hub.run([reader]))
        await wait_for(lambda: "card-usb" in hub.states, what="the reader to open the device")
        for event in keystrokes(WEDGE_CARD):
            if event.type == ecodes.EV_KEY:
                keyboard.write(ecodes.EV_KEY, event.code, event.value)
                keyboard.syn()
        await wait_for(lambda: len(hub.results) == 1, what="the tap")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    events = await agent.store.all_events()
    assert [(e.member_ref, e.method) for e in events] == [("M1", Method.CARD)]


def test_find_input_device_by_absent_path_is_none(tmp_path: Path) -> None:
    """An unplugged reader's symlink is simply absent; that is not an error."""
    assert find_input_device(path=str(tmp_path / "welfare-card")) is None


def test_find_input_device_without_permission_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node the kiosk may not open (no udev rule) is an error staff must see, not 'absent'."""

    def denied(path: str) -> None:
        """Open as evdev does for a node owned by root with mode 0600."""
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(evdev, "InputDevice", denied)
    with pytest.raises(PermissionError):
        find_input_device(path="/dev/input/welfare-card")
