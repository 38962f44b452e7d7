"""Face identification at the kiosk: camera -> descriptor -> 1:N match -> the agent's decision.

The drivers (camera, encoder, matcher, the encrypted template store, enrolment) are in
hardware/face/ and need the `face` extra; this module only drives them, so it imports them for
type checking only and works with whatever instances the caller built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.vocabulary import Method

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent
    from edge_agent.models import TapResult
    from hardware.face.camera import Camera
    from hardware.face.encoder import FaceEncoder
    from hardware.face.matcher import FaceMatch, FaceMatcher

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

    async def attempt(self) -> FaceAttempt:
        """Look once; record an attendance only for a clear match (a miss records nothing)."""
        frame = await asyncio.to_thread(self.camera.capture)
        self.agent.set_reader_state(self.name, self.camera.state())
        if frame is None:
            return FaceAttempt(match=None, result=None, face_seen=False)
        # dlib is CPU-bound for ~0.1-1 s: keep it off the event loop so taps stay instant.
        face = await asyncio.to_thread(self.encoder.largest, frame)
        if face is None:
            return FaceAttempt(match=None, result=None, face_seen=False)
        found = self.matcher.best(face.encoding)
        # An unmatched face is not a tap: no event, nothing stored; the card still works.
        if found is None or not found.matched:
            return FaceAttempt(match=found, result=None, face_seen=True)
        if self.confirm is not None and not await self.confirm(found):
            return FaceAttempt(match=found, result=None, face_seen=True)
        result = await self.agent.identify(found.member_ref, method=Method.FACE)
        return FaceAttempt(match=found, result=result, face_seen=True)
