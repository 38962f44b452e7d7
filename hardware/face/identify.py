"""Face enrolment with consent, and identification at the kiosk through the edge agent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from broker.models import Method
from hardware.face.camera import Camera
from hardware.face.encoder import FaceEncoder, RgbImage
from hardware.face.matcher import FaceMatch, FaceMatcher
from hardware.face.store import ConsentRequiredError, FaceTemplateStore

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent
    from edge_agent.models import TapResult

Confirm = Callable[[FaceMatch], Awaitable[bool]]


class NoFaceError(ValueError):
    """None of the enrolment photos showed a usable face."""


def enrol_member(
    store: FaceTemplateStore,
    matcher: FaceMatcher | None,
    encoder: FaceEncoder,
    member_ref: str,
    images: Sequence[RgbImage],
    *,
    at: datetime,
) -> int:
    """Enrol from one or more photos (their mean descriptor); returns the photos used.

    The consent is checked before any photo is analysed, so no descriptor of a member
    without consent is ever computed.
    """
    consent = store.consent(member_ref)
    if consent is None or not consent.active:
        raise ConsentRequiredError(f"no active face consent on record for {member_ref!r}")
    encodings = [face.encoding for image in images if (face := encoder.largest(image))]
    if not encodings:
        raise NoFaceError("no face found in the enrolment photos")
    template = np.mean(np.vstack(encodings), axis=0)
    store.enrol(member_ref, template, at=at)
    if matcher is not None:
        matcher.add(member_ref, template)
    return len(encodings)


def withdraw_member(
    store: FaceTemplateStore, matcher: FaceMatcher | None, member_ref: str, *, at: datetime
) -> bool:
    """Consent withdrawn: delete the template on disk and from memory at once."""
    deleted = store.withdraw(member_ref, at=at)
    if matcher is not None:
        matcher.remove(member_ref)
    return deleted


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
