"""The desk's face describer: the center's enrolment photos -> descriptors, in memory only.

The center's own code (ingest_api) holds no face model; this composition-root module joins the
kiosk side's encoder (hardware/face, the `face` extra) to the center's enrolment API by passing
`describe_photo` to `create_app(face_describer=...)`. A photo is decoded from the request's
bytes into memory, described, and dropped: it is never written to disk or database.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from hardware.face.encoder import DlibFaceEncoder
from ingest_api.registry.face import DescribedFace

# Desk photos larger than this are scaled down first: detection time grows with the pixels.
MAX_SIDE_PX = 1024


@functools.cache
def _encoder() -> DlibFaceEncoder:
    """One encoder per process (loading dlib's models takes a moment)."""
    return DlibFaceEncoder()


def describe_photo(photo: bytes) -> list[DescribedFace]:
    """Every face in a JPEG/PNG photo, largest first; ValueError if it is not an image."""
    try:
        with Image.open(io.BytesIO(photo)) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError("not a JPEG or PNG photo") from exc
    if max(image.size) > MAX_SIDE_PX:
        image.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX))
    pixels = np.asarray(image, dtype=np.uint8)
    return [
        DescribedFace(
            descriptor=np.asarray(face.encoding, dtype="<f8").tobytes(),
            height_px=face.box[2] - face.box[0],
        )
        for face in _encoder().faces(pixels)
    ]
