"""Serial RFID readers (pyserial): line-based readers and the common 125 kHz EM4100 modules.

Two framings are understood, so one reader class covers what centers own:
- text lines: the card number followed by CR and/or LF (most USB-serial desk readers);
- EM4100 frames: STX, 10 hex digits, 2 hex digits of XOR checksum, ETX (RDM6300 and clones).
An EM4100 card is reported as the 10-digit decimal number of its last four bytes: that is what
keyboard-wedge readers type and what is printed on the card, so one card is one member whichever
reader reads it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from functools import reduce
from operator import xor
from typing import Protocol

import serial

from hardware.readers import ThreadedReader

_LOG = logging.getLogger(__name__)

STX, ETX = 0x02, 0x03
_EM4100_FRAME = 14  # STX + 10 data + 2 checksum + ETX
_MAX_LINE = 64


def em4100_number(data_hex: str) -> str:
    """The printed card number of an EM4100 tag: last 32 bits as 10 decimal digits."""
    return f"{int(data_hex[2:], 16):010d}"


class SerialFrameDecoder:
    """Split a reader's byte stream into card numbers (text lines or EM4100 frames)."""

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """Take bytes as they arrive; return every complete card number in them."""
        self._buffer += data
        numbers: list[str] = []
        while self._buffer:
            if self._buffer[0] == STX:
                if len(self._buffer) < _EM4100_FRAME:
                    break  # wait for the rest of the frame
                frame = bytes(self._buffer[:_EM4100_FRAME])
                del self._buffer[:_EM4100_FRAME]
                number = self._em4100(frame)
                if number is not None:
                    numbers.append(number)
                continue
            end = next((i for i, b in enumerate(self._buffer) if b in b"\r\n" or b == STX), None)
            if end is None:
                if len(self._buffer) > _MAX_LINE:
                    self._buffer.clear()  # line noise without a terminator: start over
                break
            line = bytes(self._buffer[:end]).decode("ascii", errors="ignore").strip()
            del self._buffer[: end + (0 if self._buffer[end] == STX else 1)]
            if line:
                numbers.append(line)
        return numbers

    @staticmethod
    def _em4100(frame: bytes) -> str | None:
        """Check an EM4100 frame's terminator and checksum; None for a corrupt read."""
        if frame[-1] != ETX:
            _LOG.debug("EM4100 frame without ETX dropped")
            return None
        try:
            text = frame[1:13].decode("ascii")
            data = bytes.fromhex(text[:10])
            checksum = int(text[10:], 16)
        except ValueError:
            return None
        if reduce(xor, data) != checksum:
            _LOG.debug("EM4100 frame with a bad checksum dropped")
            return None
        return em4100_number(text[:10])


class SerialPortLike(Protocol):
    """The part of `serial.Serial` the reader uses."""

    def read(self, size: int = 1) -> bytes:
        """Read up to `size` bytes (waiting at most the port's timeout)."""

    def close(self) -> None:
        """Close the port."""


PortOpener = Callable[[], SerialPortLike]


class SerialCardReader(ThreadedReader):
    """A card reader on a serial port (USB-serial, UART); reconnects when unplugged."""

    def __init__(
        self,
        name: str = "card-serial",
        *,
        url: str = "/dev/welfare-rfid-serial",
        baudrate: int = 9600,
        retry_s: float = 2.0,
        opener: PortOpener | None = None,
    ) -> None:
        """Open `url` (a device path or any pyserial URL such as `loop://`) at `baudrate`."""
        super().__init__(name, retry_s=retry_s)
        self.url = url
        self._open: PortOpener = opener or (
            lambda: serial.serial_for_url(url, baudrate=baudrate, timeout=0.2)
        )

    def read_blocking(
        self,
        stop: threading.Event,
        deliver: Callable[[str], None],
        report: Callable[[bool, str], None],
    ) -> None:
        """Worker thread: open, read and decode; on a lost port report it and retry."""
        reported: bool | None = None
        while not stop.is_set():
            try:
                port = self._open()
            except (serial.SerialException, OSError) as exc:
                if reported is not False:
                    report(False, f"not found: {exc}"[:200])
                    reported = False
                stop.wait(self.retry_s)
                continue
            report(True, self.url)
            reported = True
            decoder = SerialFrameDecoder()
            try:
                while not stop.is_set():
                    for number in decoder.feed(port.read(64)):
                        deliver(number)
            except (serial.SerialException, OSError) as exc:
                report(False, f"unplugged: {exc}"[:200])
                reported = False
            finally:
                with contextlib.suppress(Exception):
                    port.close()
            stop.wait(self.retry_s)
