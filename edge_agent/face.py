"""Face identification at the kiosk: camera -> descriptor -> 1:N match -> the agent's decision.

The drivers (camera, encoder, matcher, the encrypted template store, enrolment) are in
hardware/face/ and need the `face` extra; this module only drives them, so it imports them for
type checking only and works with whatever instances the caller built.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.vocabulary import Method

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent
    from edge_agent.models import TapResult
    from hardware.config import HardwareSettings
    from hardware.face.camera import Camera
    from hardware.face.crypto import FaceVector
    from hardware.face.encoder import FaceEncoder, RgbImage
    from hardware.face.matcher import FaceMatch, FaceMatcher

_LOG = logging.getLogger(__name__)

# The kiosk asking "is this you?" (member or staff); False records nothing.
Confirm = Callable[["FaceMatch"], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class FaceAttempt:
    """What one look at the camera gave: the match considered and the tap result, if any."""

    match: FaceMatch | None
    result: TapResult | None
    face_seen: bool


class FaceIdentifier:
    """Camera -> descriptor -> 1:N match -> `agent.identify(..., method=FACE)`."""

    def __init__(
        self,
        agent: EdgeAgent,
        camera: Camera,
        encoder: FaceEncoder,
        matcher: FaceMatcher,
        *,
        confirm: Confirm | None = None,
        name: str = "camera",
    ) -> None:
        """Identify through `agent`; `confirm` (the UI asking "is this you?") may veto."""
        self.agent = agent
        self.camera = camera
        self.encoder = encoder
        self.matcher = matcher
        self.confirm = confirm
        self.name = name

    async def capture(self) -> RgbImage | None:
        """One frame from the camera (in a thread: a USB camera may block); its health kept."""
        frame = await asyncio.to_thread(self.camera.capture)
        self.agent.set_reader_state(self.name, self.camera.state())
        return frame

    async def attempt(self) -> FaceAttempt:
        """Look once; record an attendance only for a clear match (a miss records nothing)."""
        frame = await self.capture()
        if frame is None:
            return FaceAttempt(match=None, result=None, face_seen=False)
        # dlib is CPU-bound for ~0.1-1 s: keep it off the event loop so taps stay instant.
        face = await asyncio.to_thread(self.encoder.largest, frame)
        if face is None:
            return FaceAttempt(match=None, result=None, face_seen=False)
        return await self.decide(face.encoding)

    async def decide(self, encoding: FaceVector) -> FaceAttempt:
        """Match a face's descriptor; confirm; record only a confirmed, clear match."""
        found = self.matcher.best(encoding)
        # An unmatched face is not a tap: no event, nothing stored; the card still works.
        if found is None or not found.matched:
            return FaceAttempt(match=found, result=None, face_seen=True)
        if self.confirm is not None and not await self.confirm(found):
            return FaceAttempt(match=found, result=None, face_seen=True)
        result = await self.agent.identify(found.member_ref, method=Method.FACE)
        return FaceAttempt(match=found, result=result, face_seen=True)


# -- templates from the roster ---------------------------------------------------------------


class RosterFaces:
    """Keeps the matcher equal to the sealed templates of the roster the kiosk holds.

    The center sends each consenting member's template sealed under the facility's face key
    (broker/face.py) inside the roster; a withdrawal, a deletion or a status change reaches the
    kiosk as a roster update without it. `refresh()` (before every look) reloads the matcher
    whenever the roster or the keys changed, so a withdrawn template is not matched again
    after the update that removed it. A template that does not open is dropped, never used,
    and reported in the heartbeat (`face_unreadable`).
    """

    def __init__(self, agent: EdgeAgent, matcher: FaceMatcher) -> None:
        """Fill `matcher` from `agent`'s roster."""
        self.agent = agent
        self.matcher = matcher
        self._loaded: tuple[str | None, tuple[bytes, ...]] | None = None

    async def refresh(self) -> bool:
        """Reload when the roster or the keys changed since the last load; whether it did."""
        keys = tuple(await self.agent.credential_keys())
        state = (await self.agent.store.roster_hash(), keys)
        if state == self._loaded:
            return False
        await self.reload(keys)
        self._loaded = state
        return True

    async def reload(self, keys: tuple[bytes, ...]) -> None:
        """Open every template of the roster with the facility's keys; drop those that fail."""
        import numpy as np  # the `face` extra

        from broker.face import TemplateUnreadable, face_key, from_text, open_sealed
        from broker.keys import key_id

        by_id = {key_id(k): k for k in keys}
        opened: list[tuple[str, Any]] = []
        unreadable: list[str] = []
        for member_ref, kid, sealed in await self.agent.store.face_templates():
            key = by_id.get(kid)
            try:
                if key is None:
                    raise TemplateUnreadable(f"no key {kid} on this kiosk")
                plain = open_sealed(face_key(key), member_ref, from_text(sealed))
            except TemplateUnreadable as exc:
                _LOG.warning("face template of %s dropped: %s", member_ref, exc)
                unreadable.append(member_ref)
                continue
            opened.append((member_ref, np.frombuffer(plain, dtype="<f8").astype(np.float64)))
        self.matcher.load(opened)
        self.agent.face_templates = len(opened)
        self.agent.face_unreadable = unreadable


# -- looking only when someone is there ------------------------------------------------------


class Presence:
    """Whether someone stands in front of the camera: the picture changed since the last look.

    Compares a small grey thumbnail of each frame with the previous one (a few hundred pixels,
    microseconds), so the expensive face detection runs only when something moved. The first
    frame counts as a change.
    """

    def __init__(self, *, threshold: float = 6.0, step: int = 16) -> None:
        """Mean absolute change (0-255) of the thumbnail above `threshold` is presence."""
        self.threshold = threshold
        self.step = step
        self._last: Any = None

    def changed(self, frame: RgbImage) -> bool:
        """Whether `frame` differs enough from the previous one."""
        import numpy as np  # the `face` extra

        small = frame[:: self.step, :: self.step].mean(axis=2, dtype=np.float32)
        last, self._last = self._last, small
        if last is None or last.shape != small.shape:
            return True
        return float(np.abs(small - last).mean()) >= self.threshold


class FaceWatcher:
    """The kiosk's face loop: look when someone is there, match 1:N, ask, then record.

    Since there is no liveness check, a match records nothing until the person at the kiosk
    answers "yes" to "김*수 님이 맞으세요?" (`confirm`, the kiosk UI through the link); "no", no
    answer in time, or no screen to ask on records nothing. The card readers run alongside.
    """

    def __init__(
        self,
        agent: EdgeAgent,
        camera: Camera,
        encoder: FaceEncoder,
        matcher: FaceMatcher,
        *,
        confirm: Confirm,
        min_face_px: int = 80,
        interval_s: float = 0.25,
        repeat_after_s: float = 10.0,
    ) -> None:
        """Watch `camera` for `agent`; faces smaller than `min_face_px` are passers-by."""
        self.faces = RosterFaces(agent, matcher)
        self.presence = Presence()
        self.identifier = FaceIdentifier(
            agent, camera, encoder, matcher, confirm=self._confirm_once
        )
        self._confirm = confirm
        self.min_face_px = min_face_px
        self.interval_s = interval_s
        self.repeat_after_s = repeat_after_s
        self._asked: dict[str, float] = {}
        self.looks = 0

    async def _confirm_once(self, match: FaceMatch) -> bool:
        """Ask once per person per `repeat_after_s` (someone still standing is not re-asked)."""
        now = time.monotonic()
        if now - self._asked.get(match.member_ref, -1e9) < self.repeat_after_s:
            return False
        self._asked[match.member_ref] = now
        return await self._confirm(match)

    async def look(self) -> FaceAttempt | None:
        """One look; None when nobody stands in front (no change, or only a small face)."""
        await self.faces.refresh()
        ident = self.identifier
        frame = await ident.capture()
        if frame is None or not self.presence.changed(frame):
            return None
        self.looks += 1
        face = await asyncio.to_thread(ident.encoder.largest, frame)
        if face is None:
            return FaceAttempt(match=None, result=None, face_seen=False)
        top, _right, bottom, _left = face.box
        if bottom - top < self.min_face_px:
            return None  # someone passing behind, not at the kiosk
        return await ident.decide(face.encoding)

    async def run(self) -> None:
        """Look every `interval_s` until cancelled; a failing look is logged, never fatal."""
        while True:
            try:
                await self.look()
            except Exception:
                _LOG.exception("face look failed")
            await asyncio.sleep(self.interval_s)


async def run_face(agent: EdgeAgent, settings: HardwareSettings, *, confirm: Confirm) -> None:
    """`welfare edge run` with face enabled: open the camera and watch until cancelled."""
    from hardware.face.camera import open_camera  # the `face` extra
    from hardware.face.encoder import DlibFaceEncoder
    from hardware.face.matcher import FaceMatcher

    camera = open_camera(settings.camera)
    agent.set_reader_state("camera", camera.state())
    watcher = FaceWatcher(
        agent,
        camera,
        DlibFaceEncoder(),
        FaceMatcher(),
        confirm=confirm,
        min_face_px=settings.face_min_px,
    )
    try:
        await watcher.run()
    finally:
        camera.close()
