"""Face: 1:N match over 1,000 and 10,000 enrolled templates, and one frame's encoding.

Calls the hardware team's benchmark (`hardware.face.bench`): synthetic 128-d templates with the
spread of real dlib descriptors, enrolled encrypted, loaded, then matched. The frame encoding is
timed here on a 640×480 frame (the kiosk camera's resolution) holding scikit-image's astronaut.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from welfare.bench.results import Report, Row, ratio

_LOG = logging.getLogger(__name__)
GROUP = "4. Face (kiosk, CPU)"


@dataclass(frozen=True)
class FaceScale:
    """Counts of one run."""

    sizes: tuple[int, ...] = (1_000, 10_000)
    probes: int = 200
    frames: int = 3


QUICK = FaceScale(sizes=(100, 1_000), probes=20, frames=1)


def _encode_640x480(frames: int) -> tuple[float | None, bool]:
    """Best time (s) to encode one 640×480 frame, and whether a face was found."""
    try:
        import numpy as np
        from skimage import data

        from hardware.face.encoder import DlibFaceEncoder
    except ImportError:
        return None, False
    astronaut = data.astronaut()  # type: ignore[no-untyped-call]
    frame = np.zeros((480, 640, 3), dtype=astronaut.dtype)
    frame[:, 64:576] = astronaut[16:496]
    encoder = DlibFaceEncoder()
    best: float | None = None
    found = False
    for _ in range(frames):
        started = time.perf_counter()
        face = encoder.largest(frame)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
        found = face is not None
    return best, found


def run(scale: FaceScale, report: Report) -> None:
    """Measure face matching and encoding and add the rows to `report`."""
    try:
        from hardware.face import bench
    except ImportError as exc:
        for n in scale.sizes:
            report.rows.append(
                Row(
                    GROUP,
                    f"1:N match over {n:,} templates",
                    None,
                    "ms",
                    note=f"not measured: {exc}",
                )
            )
        return
    real_face, _ = bench.real_face_encoding()
    results: dict[int, Any] = {}
    for n in scale.sizes:
        results[n] = bench.bench_size(n, probes=scale.probes, real_face=real_face)
    small = scale.sizes[0]
    report.details["face"] = {
        "scale": scale.__dict__,
        "rows": {str(n): asdict(r) for n, r in results.items()},
    }
    for n in scale.sizes:
        r = results[n]
        is_target = n == 10_000
        report.rows.append(
            Row(
                GROUP,
                f"1:N match over {n:,} templates (median)",
                r.match_median_ms,
                "ms",
                f"{small:,} templates" if n != small else None,
                results[small].match_median_ms if n != small else None,
                ratio(r.match_median_ms, results[small].match_median_ms) if n != small else None,
                "≤ 20 ms" if is_target else None,
                r.match_p95_ms <= 20 if is_target else None,
                f"p95 {r.match_p95_ms:.3f} ms; {r.correct}/{r.probes} probes found; "
                f"load of the encrypted store {r.load_s:.2f} s",
            )
        )
    encode_s, found = _encode_640x480(scale.frames)
    report.rows.append(
        Row(
            GROUP,
            "encode one 640×480 frame (HOG detection + ResNet descriptor)",
            None if encode_s is None else encode_s * 1000,
            "ms",
            note="not measured: face_recognition/dlib not installed"
            if encode_s is None
            else f"best of {scale.frames}; face found: {'yes' if found else 'no'}",
        )
    )
