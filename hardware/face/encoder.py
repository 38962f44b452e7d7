"""Face descriptors from camera frames with face_recognition (dlib's models, shipped in
the face_recognition_models package, so nothing is downloaded at run time)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from hardware.face.crypto import FaceVector

RgbImage = npt.NDArray[np.uint8]
# (top, right, bottom, left) in pixels, as face_recognition gives them.
Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """One face in a frame: where it is and its descriptor."""

    box: Box
    encoding: FaceVector

    @property
    def area(self) -> int:
        """Size of the face box in pixels."""
        top, right, bottom, left = self.box
        return (bottom - top) * (right - left)


class FaceEncoder(ABC):
    """Finds faces in an RGB frame and describes each as a 128-d vector."""

    @abstractmethod
    def faces(self, image: RgbImage) -> list[DetectedFace]:
        """Every face found, largest first."""

    def largest(self, image: RgbImage) -> DetectedFace | None:
        """The face of the person at the kiosk: the largest one (bystanders are smaller)."""
        found = self.faces(image)
        return found[0] if found else None


class DlibFaceEncoder(FaceEncoder):
    """face_recognition's HOG detector and ResNet descriptor (CPU; fine on a Pi 4/5)."""

    def __init__(
        self,
        *,
        upsample: int = 1,
        detector: Literal["hog", "cnn"] = "hog",
        jitters: int = 1,
        landmarks: Literal["small", "large"] = "small",
    ) -> None:
        """Tune detection: more upsampling finds smaller faces but is slower."""
        import face_recognition  # the `face` extra; imported late so the rest works without

        self._fr = face_recognition
        self.upsample = upsample
        self.detector = detector
        self.jitters = jitters
        self.landmarks = landmarks

    def faces(self, image: RgbImage) -> list[DetectedFace]:
        """Detect, then describe every face; largest first."""
        boxes = self._fr.face_locations(
            image, number_of_times_to_upsample=self.upsample, model=self.detector
        )
        return self.describe(image, [tuple(b) for b in boxes])

    def describe(self, image: RgbImage, boxes: list[Box]) -> list[DetectedFace]:
        """Describe faces at known boxes (used when a box comes from elsewhere)."""
        if not boxes:
            return []
        encodings = self._fr.face_encodings(
            image, known_face_locations=boxes, num_jitters=self.jitters, model=self.landmarks
        )
        found = [
            DetectedFace(box=box, encoding=np.asarray(enc, dtype=np.float64))
            for box, enc in zip(boxes, encodings, strict=True)
        ]
        return sorted(found, key=lambda f: f.area, reverse=True)
