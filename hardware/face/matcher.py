"""1:N face match: the closest enrolled template, its distance, and whether it is close enough.

Distances are Euclidean between dlib's 128-d face descriptors, as `face_recognition`
computes them. The default tolerance is stricter than face_recognition's 0.6; docs/face.md
explains why (Korean population, 1:N search, a false match is worse than a miss).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from broker.face import ENCODING_SIZE
from hardware.face.crypto import FaceVector

DEFAULT_TOLERANCE = 0.45
# When the runner-up is nearly as close as the best, the face is ambiguous between two
# members; refusing costs a card tap, guessing could record the wrong person.
DEFAULT_MARGIN = 0.04


@dataclass(frozen=True, slots=True)
class FaceMatch:
    """The closest enrolled member, how close, and whether it counts as a match."""

    member_ref: str
    distance: float
    matched: bool
    runner_up_distance: float | None = None


class FaceMatcher:
    """Enrolled templates held in memory as one matrix, searched in one vectorised step."""

    def __init__(
        self, *, tolerance: float = DEFAULT_TOLERANCE, margin: float = DEFAULT_MARGIN
    ) -> None:
        """Match at `tolerance` or closer, and only with `margin` to the runner-up."""
        self.tolerance = tolerance
        self.margin = margin
        self._refs: list[str] = []
        self._matrix: npt.NDArray[np.float32] = np.empty((0, ENCODING_SIZE), dtype=np.float32)
        self._sq_norms: npt.NDArray[np.float32] = np.empty(0, dtype=np.float32)

    def __len__(self) -> int:
        """How many members are enrolled."""
        return len(self._refs)

    def load(self, templates: Iterable[tuple[str, FaceVector]]) -> None:
        """Replace every template (at start, or after a sync from the center)."""
        refs: list[str] = []
        rows: list[FaceVector] = []
        for ref, vector in templates:
            refs.append(ref)
            rows.append(np.asarray(vector, dtype=np.float64))
        self._set(refs, np.vstack(rows) if rows else np.empty((0, ENCODING_SIZE)))

    def add(self, member_ref: str, encoding: FaceVector) -> None:
        """Enrol or replace one member."""
        self.remove(member_ref)
        vector = np.asarray(encoding, dtype=np.float64).reshape(1, ENCODING_SIZE)
        self._set([*self._refs, member_ref], np.vstack([self._matrix, vector]))

    def remove(self, member_ref: str) -> bool:
        """Forget one member (consent withdrawn); True if they were enrolled."""
        if member_ref not in self._refs:
            return False
        index = self._refs.index(member_ref)
        refs = self._refs[:index] + self._refs[index + 1 :]
        self._set(refs, np.delete(self._matrix, index, axis=0))
        return True

    def _set(self, refs: list[str], matrix: FaceVector) -> None:
        """Install templates (float32: half the memory, ample precision for distances)."""
        self._refs = refs
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._sq_norms = np.einsum("ij,ij->i", self._matrix, self._matrix)

    def distances(self, encoding: FaceVector) -> FaceVector:
        """Distance from `encoding` to every enrolled template, in enrolment order."""
        probe = np.asarray(encoding, dtype=np.float32)
        # |a-b|² = |a|² - 2a·b + |b|²: one pass over the matrix instead of N subtractions.
        # einsum, not `@`: a multi-threaded BLAS matrix-vector product gains nothing at this
        # size and stalls for tens of ms when the kiosk's cores are busy (camera, UI, dlib).
        squared = self._sq_norms - 2.0 * np.einsum("ij,j->i", self._matrix, probe)
        squared += np.float32(probe @ probe)
        result: FaceVector = np.sqrt(np.maximum(squared, 0.0)).astype(np.float64)
        return result

    def best(self, encoding: FaceVector, *, tolerance: float | None = None) -> FaceMatch | None:
        """The closest member and whether it matches; None when nobody is enrolled."""
        if not self._refs:
            return None
        limit = self.tolerance if tolerance is None else tolerance
        distances = self.distances(encoding)
        if len(distances) > 1:
            two = np.argpartition(distances, 1)[:2]
            first, second = sorted(two.tolist(), key=lambda i: float(distances[i]))
            runner_up: float | None = float(distances[second])
        else:
            first, runner_up = 0, None
        distance = float(distances[first])
        clear = runner_up is None or runner_up - distance >= self.margin
        return FaceMatch(
            member_ref=self._refs[first],
            distance=distance,
            matched=distance <= limit and clear,
            runner_up_distance=runner_up,
        )

    def match(self, encoding: FaceVector, *, tolerance: float | None = None) -> FaceMatch | None:
        """The matching member, or None when nobody is close enough (or it is ambiguous)."""
        found = self.best(encoding, tolerance=tolerance)
        return found if found is not None and found.matched else None
