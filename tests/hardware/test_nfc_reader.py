"""NFC through nfcpy's own UDP test transport: a second nfcpy frontend emulates the card."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import threading
import time
from collections.abc import Iterator

import nfc
import nfc.clf
import pytest

from broker.models import ReaderState
from broker.vocabulary import Method, Outcome
from edge_agent.agent import EdgeAgent
from edge_agent.devices import ReaderHub
from hardware.nfc_reader import NfcReader, uid_of
from tests.edge_agent.meal_hall import FELICA_IDM, NFC_UID, wait_for

PUPI = "E5DD3DC9"


def free_udp_port() -> int:
    """A UDP port nobody listens on (the emulated card binds it, the reader sends to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def type_a_card(uid: str) -> nfc.clf.LocalTarget:
    """An ISO 14443 A card (MIFARE Ultralight-like) with a 7-byte UID."""
    return nfc.clf.LocalTarget(
        "106A",
        sens_res=bytearray.fromhex("4400"),
        sdd_res=bytearray.fromhex(uid),
        sel_res=bytearray.fromhex("00"),
    )


def felica_card(idm: str) -> nfc.clf.LocalTarget:
    """A FeliCa card: IDm, PMm and system code in the SENSF_RES."""
    return nfc.clf.LocalTarget("212F", sensf_res=bytearray.fromhex("01" + idm + "FF" * 8 + "0003"))


def type_b_card(pupi: str) -> nfc.clf.LocalTarget:
    """An ISO 14443 B card answering SENSB_REQ with its PUPI."""
    return nfc.clf.LocalTarget(
        "106B", sensb_res=bytearray.fromhex("50" + pupi + "0000001100818" + "5")
    )


def wait_until_bound(port: int, *, within_s: float = 5.0) -> None:
    """Wait until the emulated card's socket holds `port` (then the reader's polls reach it)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))  # noqa: S104 - nfcpy's udp listener binds all
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return
                raise
        time.sleep(0.01)
    raise AssertionError(f"the emulated card never listened on port {port}")


@contextlib.contextmanager
def card_in_field(path: str, target: nfc.clf.LocalTarget) -> Iterator[None]:
    """Hold an emulated card in front of the reader at `path` until the block ends."""
    stop = threading.Event()

    def emulate() -> None:
        """Answer the reader's polls as the card until told to stop."""
        with nfc.ContactlessFrontend(path) as card:
            while not stop.is_set():
                # One long listen answers poll after poll; re-listening more often would
                # leave gaps with the port closed, in which the reader's packets are lost.
                with contextlib.suppress(nfc.clf.CommunicationError):
                    card.listen(target, 1.0)
                card.device.mute()  # release the port so the next listen can bind it

    thread = threading.Thread(target=emulate, name="nfc-card", daemon=True)
    thread.start()
    wait_until_bound(int(path.rsplit(":", 1)[1]))
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.parametrize(
    ("target", "technology", "expected"),
    [
        (type_a_card(NFC_UID), "106A", NFC_UID),
        (felica_card(FELICA_IDM), "212F", FELICA_IDM),
        (type_b_card(PUPI), "106B", PUPI),
    ],
    ids=["iso14443a", "felica", "iso14443b"],
)
def test_sense_reads_the_uid(target: nfc.clf.LocalTarget, technology: str, expected: str) -> None:
    """Each technology's identifier is read from the anti-collision answer."""
    path = f"udp:127.0.0.1:{free_udp_port()}"
    reader = NfcReader(path=path, technologies=[technology])
    with card_in_field(path, target), nfc.ContactlessFrontend(path) as clf:
        uids = {reader.sense_once(clf) for _ in range(3)} - {None}
    assert uids == {expected}


def test_uid_of_a_target_without_identifier_is_none() -> None:
    """A target with no anti-collision data (e.g. a P2P device) gives no identifier."""
    assert uid_of(nfc.clf.RemoteTarget("106A")) is None


async def test_card_lying_on_the_reader_makes_one_attendance(agent: EdgeAgent) -> None:
    """Sensed on every poll for a while, the UID still makes exactly one event (method NFC)."""
    path = f"udp:127.0.0.1:{free_udp_port()}"
    hub = ReaderHub(agent)
    reader = NfcReader(path=path, technologies=["106A"], interval_s=0.05)
    polls: list[str | None] = []
    original = reader.sense_once

    def counting_sense(clf: nfc.ContactlessFrontend) -> str | None:
        """Sense as usual and remember what each poll saw."""
        uid = original(clf)
        polls.append(uid)
        return uid

    reader.sense_once = counting_sense  # type: ignore[method-assign]
    with card_in_field(path, type_a_card(NFC_UID)):
        task = asyncio.create_task(hub.run([reader]))
        await wait_for(lambda: polls.count(NFC_UID) >= 3, what="three reads of the card")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    events = await agent.store.all_events()
    assert [(e.member_ref, e.method, e.outcome) for e in events] == [
        ("M2", Method.NFC, Outcome.ACCEPTED)
    ]
    assert hub.states["nfc"].kind == "nfc"
    assert hub.states["nfc"].connected


async def test_missing_reader_is_reported_disconnected(agent: EdgeAgent) -> None:
    """A reader that is not plugged in shows up as disconnected in the device health."""
    hub = ReaderHub(agent)
    reader = NfcReader(path="tty:welfare-test-absent:pn532", retry_s=0.05)
    task = asyncio.create_task(hub.run([reader]))
    await wait_for(lambda: "nfc" in hub.states, what="the reader's state")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    state = (await agent.health()).readers["nfc"]
    assert not state.connected
    assert (state.detail or "").startswith("not found")


async def test_unsupported_technology_is_reported_not_silent(agent: EdgeAgent) -> None:
    """A reader asked for a technology its driver cannot poll shows an error in health."""
    hub = ReaderHub(agent)
    # nfcpy's UDP device cannot sense active-mode P2P targets: a single such target raises.
    reader = NfcReader(path=f"udp:127.0.0.1:{free_udp_port()}", technologies=["106A"])
    original = reader.sense_once

    def unsupported(clf: nfc.ContactlessFrontend) -> str | None:
        """Poll an active P2P target, which the UDP driver refuses."""
        atr = bytearray.fromhex("D4000102030405060708091000000030")
        clf.sense(nfc.clf.RemoteTarget("106A", atr_req=atr))
        return original(clf)

    reader.sense_once = unsupported  # type: ignore[method-assign]
    task = asyncio.create_task(hub.run([reader]))
    await wait_for(
        lambda: not hub.states.get("nfc", ReaderState(kind="nfc", connected=True)).connected,
        what="the error in health",
    )
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert "does not support" in (hub.states["nfc"].detail or "")
