"""NFC readers through nfcpy: the UID of ISO 14443 A/B cards, FeliCa and phones.

Only the anti-collision identifier is read (NFCID1 for type A, PUPI for type B, IDm for
FeliCa): no tag memory is touched, so any card a member already carries works (transit
cards, bank cards, member cards) and the read is as fast as the reader can poll.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import nfc
import nfc.clf

from broker.vocabulary import Method
from hardware.readers import ReaderKind, ThreadedReader

_LOG = logging.getLogger(__name__)

# 106A: ISO 14443 A (MIFARE, T-money, most phones); 106B: ISO 14443 B (some ID and transit
# cards); 212F: FeliCa. Type B and F are skipped by a reader that cannot poll them.
DEFAULT_TECHNOLOGIES = ("106A", "106B", "212F")


def uid_of(target: Any) -> str | None:
    """The identifier of a sensed target as upper-case hex, or None if it carries none."""
    if getattr(target, "sdd_res", None):
        return bytes(target.sdd_res).hex().upper()  # NFCID1: 4, 7 or 10 bytes
    if getattr(target, "sensb_res", None):
        return bytes(target.sensb_res[1:5]).hex().upper()  # PUPI
    if getattr(target, "sensf_res", None):
        return bytes(target.sensf_res[1:9]).hex().upper()  # IDm
    return None


class NfcReader(ThreadedReader):
    """An nfcpy-supported reader (Sony RC-S380, ACR122U, PN533/PN532 boards, or `udp:`)."""

    kind: ReaderKind = "nfc"
    method = Method.NFC

    def __init__(
        self,
        name: str = "nfc",
        *,
        path: str = "usb",
        technologies: Sequence[str] = DEFAULT_TECHNOLOGIES,
        interval_s: float = 0.1,
        retry_s: float = 2.0,
    ) -> None:
        """Open the reader at nfcpy `path` (`usb`, `usb:054c:06c3`, `tty:S0:pn532`, `udp:…`)."""
        super().__init__(name, retry_s=retry_s)
        self.path = path
        self.technologies = tuple(technologies)
        self.interval_s = interval_s

    def read_blocking(
        self,
        stop: threading.Event,
        deliver: Callable[[str], None],
        report: Callable[[bool, str], None],
    ) -> None:
        """Worker thread: open the reader, sense targets, report the reader lost and found."""
        reported: bool | None = None
        while not stop.is_set():
            try:
                clf = nfc.ContactlessFrontend(self.path)
            except OSError as exc:
                if reported is not False:
                    report(False, f"not found: {exc}"[:200])
                    reported = False
                stop.wait(self.retry_s)
                continue
            report(True, str(clf.device))
            reported = True
            try:
                while not stop.is_set():
                    uid = self.sense_once(clf)
                    if uid is not None:
                        deliver(uid)
                    stop.wait(self.interval_s)
            except OSError as exc:  # the USB reader was pulled out mid-poll
                report(False, f"unplugged: {exc}"[:200])
                reported = False
            finally:
                with contextlib.suppress(Exception):
                    clf.close()
            stop.wait(self.retry_s)

    def sense_once(self, clf: nfc.ContactlessFrontend) -> str | None:
        """One polling round over the configured technologies; the UID found, if any."""
        targets = [nfc.clf.RemoteTarget(brty) for brty in self.technologies]
        target = clf.sense(*targets, iterations=1)
        if target is None:
            return None
        uid = uid_of(target)
        _LOG.debug("sensed %s", target)
        return uid
