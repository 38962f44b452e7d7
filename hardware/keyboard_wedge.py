"""USB RFID readers that type the card number like a keyboard, read through evdev.

The device is grabbed exclusively, so the number never lands in the kiosk's UI or any
other window; only this reader sees it. Readers are found by a udev symlink, a path or
their USB vendor:product id (see firmware_config/99-welfare-readers.rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import evdev
from evdev import ecodes

from broker.vocabulary import Method
from hardware.readers import CredentialReader, ReaderSink

_LOG = logging.getLogger(__name__)

# Keys a reader may type, unshifted and shifted; letters come from readers set to hex output.
_KEYMAP: dict[int, tuple[str, str]] = {
    **{getattr(ecodes, f"KEY_{d}"): (d, ")!@#$%^&*("[int(d)]) for d in "0123456789"},
    **{getattr(ecodes, f"KEY_KP{d}"): (d, d) for d in "0123456789"},
    **{getattr(ecodes, f"KEY_{c}"): (c.lower(), c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    ecodes.KEY_MINUS: ("-", "_"),
    ecodes.KEY_KPMINUS: ("-", "-"),
    ecodes.KEY_SEMICOLON: (";", ":"),
    ecodes.KEY_SPACE: (" ", " "),
    ecodes.KEY_DOT: (".", ">"),
}
_SHIFT = {ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT}
# Readers end a number with Enter (the default of nearly all) or Tab (a configurable option).
_TERMINATORS = {ecodes.KEY_ENTER, ecodes.KEY_KPENTER, ecodes.KEY_TAB}
_KEY_UP, _KEY_DOWN = 0, 1  # value 2 (autorepeat) is ignored: readers never hold a key


class KeyDecoder:
    """Turn a stream of key events into card numbers, one per terminator key."""

    def __init__(self, *, max_gap_s: float = 0.3, max_len: int = 64) -> None:
        """Discard a partial number after a pause of `max_gap_s` (a person typing, not a reader)."""
        self.max_gap_s = max_gap_s
        self.max_len = max_len
        self._buffer: list[str] = []
        self._shift = False
        self._last_at: float | None = None

    def feed(self, event: evdev.InputEvent) -> str | None:
        """Take one input event; return the number when its terminator arrives."""
        if event.type != ecodes.EV_KEY:
            return None
        if event.code in _SHIFT:
            self._shift = event.value != _KEY_UP
            return None
        if event.value != _KEY_DOWN:
            return None
        at = event.timestamp()
        if self._last_at is not None and at - self._last_at > self.max_gap_s:
            # Readers type a whole number within a few tens of ms; a long pause means the
            # earlier keys were someone pressing buttons, so they must not prefix the card.
            self._buffer.clear()
        self._last_at = at
        if event.code in _TERMINATORS:
            text = "".join(self._buffer)
            self._buffer.clear()
            return text or None
        chars = _KEYMAP.get(event.code)
        if chars is not None and len(self._buffer) < self.max_len:
            self._buffer.append(chars[1] if self._shift else chars[0])
        return None


class InputDeviceLike(Protocol):
    """The part of `evdev.InputDevice` the reader uses."""

    name: str

    def grab(self) -> None:
        """Take the device exclusively."""

    def ungrab(self) -> None:
        """Release the exclusive grab."""

    def close(self) -> None:
        """Close the device."""

    def async_read_loop(self) -> AsyncIterator[evdev.InputEvent]:
        """Yield input events as they arrive."""


Opener = Callable[[], InputDeviceLike | None]


def find_input_device(
    *, path: str | None = None, name: str | None = None, usb_id: tuple[int, int] | None = None
) -> InputDeviceLike | None:
    """Open the reader by path, or the first input device whose name or USB id matches."""
    if path is not None:
        # Absent is normal (unplugged); PermissionError propagates so health shows the
        # missing udev rule instead of a misleading "not found".
        try:
            found: evdev.InputDevice[str] = evdev.InputDevice(path)
            return found
        except FileNotFoundError:
            return None
    for candidate in evdev.list_devices():
        try:
            device: evdev.InputDevice[str] = evdev.InputDevice(candidate)
        except OSError:
            continue
        if (name is not None and name.lower() in device.name.lower()) or (
            usb_id is not None and (device.info.vendor, device.info.product) == usb_id
        ):
            return device
        device.close()
    return None


class KeyboardWedgeReader(CredentialReader):
    """A USB 'keyboard wedge' RFID reader, grabbed so nobody else receives its keys."""

    def __init__(
        self,
        name: str = "card-usb",
        *,
        path: str | None = None,
        device_name: str | None = None,
        usb_id: tuple[int, int] | None = None,
        grab: bool = True,
        retry_s: float = 2.0,
        decoder: KeyDecoder | None = None,
        opener: Opener | None = None,
    ) -> None:
        """Find the device by `path`, `device_name` (substring) or `usb_id` (vendor, product)."""
        super().__init__(name, retry_s=retry_s)
        if opener is None and path is None and device_name is None and usb_id is None:
            raise ValueError("give the reader's path, device name or USB id")
        self.grab = grab
        self.decoder = decoder or KeyDecoder()
        self._open: Opener = opener or (
            lambda: find_input_device(path=path, name=device_name, usb_id=usb_id)
        )

    async def run(self, sink: ReaderSink) -> None:
        """Read cards until cancelled; report the reader lost and found as it is unplugged."""
        reported: bool | None = None
        while True:
            device = await asyncio.to_thread(self._open)
            if device is None:
                if reported is not False:
                    sink.reader_state(self.name, self.state(connected=False, detail="not found"))
                    reported = False
                await asyncio.sleep(self.retry_s)
                continue
            try:
                if self.grab:
                    device.grab()
                sink.reader_state(self.name, self.state(connected=True, detail=device.name))
                reported = True
                async for event in device.async_read_loop():
                    number = self.decoder.feed(event)
                    if number is not None:
                        await sink.credential(self.name, number, Method.CARD)
            except OSError as exc:
                # ENODEV: unplugged. EBUSY: another program holds the grab (and so would see
                # the card numbers): refuse to read rather than share them.
                detail = "unplugged" if exc.errno == errno.ENODEV else f"error: {exc.strerror}"
                sink.reader_state(self.name, self.state(connected=False, detail=detail))
                reported = False
            finally:
                with contextlib.suppress(OSError):
                    if self.grab:
                        device.ungrab()
                with contextlib.suppress(OSError):
                    device.close()
            await asyncio.sleep(self.retry_s)
