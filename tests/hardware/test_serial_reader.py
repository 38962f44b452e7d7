"""Serial card readers: text lines and EM4100 frames, through pyserial's loop:// port."""

from __future__ import annotations

import asyncio
import contextlib
from functools import reduce
from operator import xor

import serial

from broker.vocabulary import Method, Outcome
from edge_agent.agent import EdgeAgent
from edge_agent.devices import ReaderHub
from hardware.serial_reader import SerialCardReader, SerialFrameDecoder, em4100_number
from tests.edge_agent.meal_hall import WEDGE_CARD, wait_for

# An EM4100 tag whose last four bytes are 0x00BC614E = 12345678, the card of member M1.
TAG_HEX = "1A00BC614E"


def em4100_frame(data_hex: str, *, checksum: int | None = None) -> bytes:
    """The frame an RDM6300-style module sends for a tag."""
    value = reduce(xor, bytes.fromhex(data_hex)) if checksum is None else checksum
    return b"\x02" + data_hex.encode() + f"{value:02X}".encode() + b"\x03"


def test_em4100_number_is_the_printed_card_number() -> None:
    """The serial module and a keyboard-wedge reader report the same card the same way."""
    assert em4100_number(TAG_HEX) == WEDGE_CARD


def test_decoder_splits_lines_and_frames_across_chunks() -> None:
    """Numbers split over reads, CR LF endings and frames mixed with lines all come out once."""
    decoder = SerialFrameDecoder()
    stream = b"04A1B2C3\r\n" + em4100_frame(TAG_HEX) + b"DEADBEEF\n"
    out: list[str] = []
    for i in range(0, len(stream), 3):
        out += decoder.feed(stream[i : i + 3])
    assert out == ["04A1B2C3", WEDGE_CARD, "DEADBEEF"]


def test_decoder_drops_corrupt_frames() -> None:
    """A bad checksum or a missing ETX is a misread, not a card."""
    decoder = SerialFrameDecoder()
    bad_sum = em4100_frame(TAG_HEX, checksum=0)
    no_etx = em4100_frame(TAG_HEX)[:-1] + b"X"
    assert decoder.feed(bad_sum + no_etx) == []
    assert decoder.feed(em4100_frame(TAG_HEX)) == [WEDGE_CARD]


async def test_serial_reader_taps_once_and_reports_a_lost_port(agent: EdgeAgent) -> None:
    """A module repeating the frame while the card is held makes one event; unplug is reported."""
    port = serial.serial_for_url("loop://", timeout=0.05)
    opened: list[serial.SerialBase] = [port]

    def opener() -> serial.SerialBase:
        """The loop port once; afterwards the adapter is gone."""
        if not opened:
            raise serial.SerialException("could not open port /dev/ttyUSB0")
        return opened.pop()

    hub = ReaderHub(agent)
    reader = SerialCardReader("card-serial", opener=opener, retry_s=0.05)
    task = asyncio.create_task(hub.run([reader]))
    await wait_for(lambda: "card-serial" in hub.states, what="the port to open")
    port.write(em4100_frame(TAG_HEX) * 3)  # modules resend while the card stays in the field
    await wait_for(lambda: len(hub.results) == 1, what="the tap")
    port.close()  # pulled out: the next read fails
    await wait_for(lambda: not hub.states["card-serial"].connected, what="the unplug")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    events = await agent.store.all_events()
    assert [(e.member_ref, e.method, e.outcome) for e in events] == [
        ("M1", Method.CARD, Outcome.ACCEPTED)
    ]
    assert (hub.states["card-serial"].detail or "").startswith(("unplugged", "not found"))
