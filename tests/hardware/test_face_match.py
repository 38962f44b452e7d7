"""Face match on real faces that ship in scikit-image (no download): enrol, identify, withdraw.

- `skimage.data.astronaut()`: a portrait of astronaut Eileen Collins (public domain, NASA);
  flipped, darkened and shrunk copies stand for the same person seen again at the kiosk.
- `skimage.data.lfw_subset()`: 100 real faces from Labeled Faces in the Wild (25x25 grey,
  upscaled here) stand for the other members and for strangers.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")
from PIL import Image
from skimage import data

from broker.models import Method, Outcome
from edge_agent.agent import EdgeAgent
from edge_agent.models import Verdict
from hardware.face.camera import StillCamera
from hardware.face.crypto import TemplateCipher, generate_key
from hardware.face.encoder import DlibFaceEncoder, RgbImage
from hardware.face.identify import FaceIdentifier, enrol_member, withdraw_member
from hardware.face.matcher import DEFAULT_TOLERANCE, FaceMatch, FaceMatcher
from hardware.face.store import ConsentRequiredError, FaceConsent, FaceTemplateStore

AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
ENCODER = DlibFaceEncoder()


def astronaut() -> RgbImage:
    """The astronaut portrait (512x512 RGB)."""
    image: RgbImage = data.astronaut()  # type: ignore[no-untyped-call]
    return image


@functools.cache
def variants() -> dict[str, RgbImage]:
    """The same person as a kiosk camera might see her on another day."""
    original = astronaut()
    return {
        "mirrored": np.ascontiguousarray(original[:, ::-1]),
        "dim light": (original * 0.55).astype(np.uint8),
        "further away": np.asarray(Image.fromarray(original).resize((320, 320))),
    }


def lfw_face(index: int) -> RgbImage:
    """One Labeled-Faces-in-the-Wild face, upscaled to 150x150 RGB."""
    grey = (data.lfw_subset()[index] * 255).astype(np.uint8)  # type: ignore[no-untyped-call]
    big = Image.fromarray(grey).resize((150, 150), Image.Resampling.BICUBIC)
    return np.stack([np.asarray(big)] * 3, axis=-1)


@functools.cache
def lfw_encoding(index: int) -> np.ndarray:
    """The descriptor of an LFW face (the face fills the crop, so no detection is needed)."""
    [face] = ENCODER.describe(lfw_face(index), [(8, 142, 142, 8)])
    return face.encoding


@pytest.fixture
def store(tmp_path: Path) -> FaceTemplateStore:
    """An encrypted template store in which M4 (the astronaut) has consented."""
    faces = FaceTemplateStore(tmp_path / "faces.sqlite3", TemplateCipher(generate_key()))
    faces.record_consent(FaceConsent("M4", "FC-0004", AT, recorded_by="staff-07"))
    return faces


@pytest.fixture
def matcher(store: FaceTemplateStore) -> FaceMatcher:
    """The astronaut enrolled as M4 among 12 other real faces."""
    matcher = FaceMatcher()
    for i in range(12):
        ref = f"L{i:02d}"
        store.record_consent(FaceConsent(ref, f"FC-{ref}", AT, recorded_by="staff-07"))
        store.enrol(ref, lfw_encoding(i * 2), at=AT)
    enrol_member(store, None, ENCODER, "M4", [astronaut()], at=AT)
    matcher.load(store.templates())
    return matcher


@functools.cache
def variant_encoding(name: str) -> np.ndarray | None:
    """The descriptor of the largest face in one variant, None if no face was found."""
    face = ENCODER.largest(variants()[name])
    return None if face is None else face.encoding


def test_same_person_in_other_conditions_is_the_best_match(matcher: FaceMatcher) -> None:
    """Mirrored, dim and smaller photos of the enrolled member all match her, clearly."""
    for name in variants():
        encoding = variant_encoding(name)
        assert encoding is not None, f"no face found when {name}"
        found = matcher.match(encoding)
        assert found is not None, f"not matched when {name}"
        assert found.member_ref == "M4", name
        assert found.distance < 0.3, name
        assert found.runner_up_distance is not None
        assert found.runner_up_distance > 0.6


def test_strangers_are_not_matched(matcher: FaceMatcher) -> None:
    """Faces of people never enrolled are further than the tolerance from everyone."""
    for index in range(61, 100, 8):  # odd indexes: none of them enrolled
        found = matcher.best(lfw_encoding(index))
        assert found is not None
        assert found.distance > DEFAULT_TOLERANCE, index
        assert not found.matched


def test_tolerance_is_tunable(matcher: FaceMatcher) -> None:
    """A stricter tolerance turns the dim-light photo from a match into a miss."""
    encoding = variant_encoding("dim light")
    assert encoding is not None
    found = matcher.best(encoding)
    assert found is not None
    assert found.matched
    assert matcher.match(encoding, tolerance=found.distance - 0.01) is None


async def test_identification_records_one_face_attendance(
    agent: EdgeAgent, store: FaceTemplateStore, matcher: FaceMatcher
) -> None:
    """Her face checks her in (method face); a stranger and an empty frame record nothing."""
    camera = StillCamera(
        [
            variants()["mirrored"],
            lfw_face(99),  # a stranger
            data.coffee(),  # type: ignore[no-untyped-call]  # no face at all
        ]
    )
    identifier = FaceIdentifier(agent, camera, ENCODER, matcher)
    hit = await identifier.attempt()
    stranger = await identifier.attempt()
    nobody = await identifier.attempt()

    assert hit.result is not None
    assert hit.result.verdict is Verdict.ACCEPTED
    assert hit.match is not None
    assert hit.match.member_ref == "M4"
    assert stranger.face_seen
    assert stranger.result is None
    assert not nobody.face_seen
    assert nobody.result is None
    events = await agent.store.all_events()
    assert [(e.member_ref, e.method, e.outcome) for e in events] == [
        ("M4", Method.FACE, Outcome.ACCEPTED)
    ]
    assert (await agent.health()).readers["camera"].kind == "camera"


async def test_confirmation_can_veto(agent: EdgeAgent, matcher: FaceMatcher) -> None:
    """When the kiosk asks 'is this you?' and gets no, nothing is recorded."""
    asked: list[FaceMatch] = []

    async def say_no(match: FaceMatch) -> bool:
        """The member (or staff) answers no."""
        asked.append(match)
        return False

    camera = StillCamera([variants()["mirrored"]])
    attempt = await FaceIdentifier(agent, camera, ENCODER, matcher, confirm=say_no).attempt()
    assert attempt.result is None
    assert [m.member_ref for m in asked] == ["M4"]
    assert await agent.store.all_events() == []


async def test_withdrawn_consent_stops_matching_at_once(
    agent: EdgeAgent, store: FaceTemplateStore, matcher: FaceMatcher
) -> None:
    """After withdrawal her face is neither stored nor matched; the card still works."""
    assert withdraw_member(store, matcher, "M4", at=AT)
    assert not store.has_template("M4")
    camera = StillCamera([variants()["mirrored"]])
    attempt = await FaceIdentifier(agent, camera, ENCODER, matcher).attempt()
    assert attempt.result is None
    assert attempt.match is None or attempt.match.member_ref != "M4"
    assert await agent.store.all_events() == []


def test_no_descriptor_is_computed_without_consent(store: FaceTemplateStore) -> None:
    """Enrolment refuses before looking at the photo of a member without consent."""

    class Spy(DlibFaceEncoder):
        """An encoder that notes whether it was asked to look at a photo."""

        looked = False

        def faces(self, image: RgbImage) -> list:  # type: ignore[type-arg]
            """Note the call, then detect as usual."""
            Spy.looked = True
            return super().faces(image)

    with pytest.raises(ConsentRequiredError):
        enrol_member(store, None, Spy(), "M9", [astronaut()], at=AT)
    assert not Spy.looked
    assert not store.has_template("M9")
