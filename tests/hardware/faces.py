"""Real faces that ship in scikit-image (no download), as the face tests of both layers use them.

- `skimage.data.astronaut()`: a portrait of astronaut Eileen Collins (public domain, NASA);
  flipped, darkened and shrunk copies stand for the same person seen again at the kiosk.
- `skimage.data.lfw_subset()`: 100 real faces from Labeled Faces in the Wild (25x25 grey,
  upscaled here) stand for the other members and for strangers.

Needs the `face` extra: import it after `pytest.importorskip("face_recognition")`.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from hardware.face.crypto import TemplateCipher, generate_key
from hardware.face.encoder import DlibFaceEncoder, RgbImage
from hardware.face.enrol import enrol_member
from hardware.face.matcher import FaceMatcher
from hardware.face.store import FaceConsent, FaceTemplateStore

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


@functools.cache
def variant_encoding(name: str) -> np.ndarray | None:
    """The descriptor of the largest face in one variant, None if no face was found."""
    face = ENCODER.largest(variants()[name])
    return None if face is None else face.encoding


def consented_store(tmp_path: Path) -> FaceTemplateStore:
    """An encrypted template store in which M4 (the astronaut) has consented."""
    faces = FaceTemplateStore(tmp_path / "faces.sqlite3", TemplateCipher(generate_key()))
    faces.record_consent(FaceConsent("M4", "FC-0004", AT, recorded_by="staff-07"))
    return faces


def enrolled_matcher(store: FaceTemplateStore) -> FaceMatcher:
    """The astronaut enrolled as M4 among 12 other real faces."""
    matcher = FaceMatcher()
    for i in range(12):
        ref = f"L{i:02d}"
        store.record_consent(FaceConsent(ref, f"FC-{ref}", AT, recorded_by="staff-07"))
        store.enrol(ref, lfw_encoding(i * 2), at=AT)
    enrol_member(store, None, ENCODER, "M4", [astronaut()], at=AT)
    matcher.load(store.templates())
    return matcher
