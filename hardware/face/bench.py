"""Benchmark of face match: enrol, decrypt-and-load and 1:N match for N enrolled templates.

Templates are synthetic 128-d vectors with the spread of real dlib descriptors (match time
does not depend on whose faces they are); the one real face (scikit-image's astronaut photo)
is enrolled among them and must be found again. Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from broker.face import ENCODING_SIZE
from hardware.face.crypto import FaceVector, TemplateCipher, generate_key
from hardware.face.matcher import FaceMatcher
from hardware.face.store import FaceConsent, FaceTemplateStore

# Per-dimension spread giving the ~0.8 distance typical between different people's descriptors.
_SPREAD = 0.8 / np.sqrt(2 * ENCODING_SIZE)


@dataclass(frozen=True, slots=True)
class BenchRow:
    """Timings for one size of enrolment."""

    enrolled: int
    enrol_s: float
    load_s: float
    match_median_ms: float
    match_p95_ms: float
    correct: int
    probes: int


def _probe(base: FaceVector, rng: np.random.Generator) -> FaceVector:
    """The same face seen again: the template plus camera noise (distance about 0.2)."""
    noisy: FaceVector = base + rng.normal(0.0, 0.2 / np.sqrt(ENCODING_SIZE), ENCODING_SIZE)
    return noisy


def bench_size(n: int, *, probes: int, real_face: FaceVector | None, seed: int = 7) -> BenchRow:
    """Enrol `n` templates in a fresh encrypted store, load them and time `probes` matches."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0.0, _SPREAD, size=(n, ENCODING_SIZE))
    if real_face is not None:
        vectors[n // 2] = real_face
    refs = [f"M{i:06d}" for i in range(n)]
    at = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = FaceTemplateStore(Path(folder) / "faces.sqlite3", TemplateCipher(generate_key()))
        with store:
            for ref in refs:
                store.record_consent(FaceConsent(ref, f"C-{ref}", at, "bench"))
            started = time.perf_counter()
            store.enrol_many(list(zip(refs, vectors, strict=True)), at=at)
            enrol_s = time.perf_counter() - started
            matcher = FaceMatcher()
            started = time.perf_counter()
            matcher.load(store.templates())
            load_s = time.perf_counter() - started
    times: list[float] = []
    correct = 0
    targets = rng.integers(0, n, size=probes)
    if real_face is not None:
        targets[0] = n // 2
    for index in targets:
        probe = _probe(vectors[index], rng)
        started = time.perf_counter()
        found = matcher.match(probe)
        times.append((time.perf_counter() - started) * 1000)
        correct += found is not None and found.member_ref == refs[index]
    times.sort()
    return BenchRow(
        enrolled=n,
        enrol_s=enrol_s,
        load_s=load_s,
        match_median_ms=statistics.median(times),
        match_p95_ms=times[max(0, int(len(times) * 0.95) - 1)],
        correct=correct,
        probes=probes,
    )


def real_face_encoding() -> tuple[FaceVector | None, float | None]:
    """The astronaut's descriptor and the time one frame takes to encode (None without dlib)."""
    try:
        from skimage import data

        from hardware.face.encoder import DlibFaceEncoder
    except ImportError:
        return None, None
    encoder = DlibFaceEncoder()
    image = data.astronaut()  # type: ignore[no-untyped-call]
    timings = []
    face = None
    for _ in range(3):
        started = time.perf_counter()
        face = encoder.largest(image)
        timings.append(time.perf_counter() - started)
    return (face.encoding if face else None), min(timings)


def run(
    sizes: Sequence[int] = (1_000, 10_000),
    *,
    probes: int = 200,
    out: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Run the benchmark for each size and print the table."""
    real_face, encode_s = real_face_encoding()
    if encode_s is not None:
        out(f"encode one 512x512 frame (HOG detect + ResNet descriptor): {encode_s * 1000:.0f} ms")
    else:
        out("face_recognition not installed: frame encoding not measured")
    out(f"{'enrolled':>9} {'enrol s':>8} {'load s':>7} {'match p50 ms':>13} {'p95 ms':>7} correct")
    rows = []
    for n in sizes:
        row = bench_size(n, probes=probes, real_face=real_face)
        rows.append(row)
        out(
            f"{row.enrolled:>9} {row.enrol_s:>8.2f} {row.load_s:>7.2f} "
            f"{row.match_median_ms:>13.3f} {row.match_p95_ms:>7.3f} {row.correct}/{row.probes}"
        )
    return rows
