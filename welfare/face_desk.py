"""The desk's face describer: the center's enrolment photos -> descriptors, in memory only.

The center's own code (ingest_api) holds no face model; this composition-root module joins the
kiosk side's encoder (hardware/face, the `face` extra) to the center's enrolment API by passing
`describe_photo` to `create_app(face_describer=...)`. A photo is decoded from the request's
bytes into memory, described, and dropped: it is never written to disk or database.
"""

from __future__ import annotations

import argparse
import functools
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from hardware.face.encoder import DlibFaceEncoder
from ingest_api.registry.face import DescribedFace

# Desk photos larger than this are scaled down first: detection time grows with the pixels.
MAX_SIDE_PX = 1024
MAX_PIXELS = 40_000_000


@functools.cache
def _encoder() -> DlibFaceEncoder:
    """One encoder per process (loading dlib's models takes a moment)."""
    return DlibFaceEncoder()


def describe_photo(photo: bytes) -> list[DescribedFace]:
    """Every face in a JPEG/PNG photo, largest first; ValueError if it is not an image."""
    try:
        with Image.open(io.BytesIO(photo)) as opened:
            if opened.format not in ("JPEG", "PNG"):
                raise ValueError(f"not a JPEG or PNG photo ({opened.format})")
            # A few compressed bytes can claim a huge picture: refuse before decoding it.
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError("photo too large")
            opened.draft("RGB", (MAX_SIDE_PX, MAX_SIDE_PX))  # JPEG: decode at reduced size
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `welfare face serve`: the center's service with face enrolment at the desk."""
    face = sub.add_parser("face", help="face match at the center (docs/face.md)")
    cmds = face.add_subparsers(dest="face_command", required=True)
    run = cmds.add_parser(
        "serve",
        help="`welfare ingest run` with desk enrolment (the `face` extra computes descriptors "
        "from the posted photos in memory; no photo is kept)",
    )
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--no-consume", action="store_true", help="serve the API only")
    run.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    """`welfare face serve`."""
    from ingest_api.cli import serve

    return serve(args, face_describer=describe_photo)
