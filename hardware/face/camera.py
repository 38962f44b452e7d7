"""Cameras for face match: any V4L2 webcam or the Pi camera through OpenCV, and a simulator."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from broker.models import ReaderState
from hardware.face.encoder import RgbImage


class Camera(ABC):
    """Something that hands over one RGB frame on request."""

    @abstractmethod
    def capture(self) -> RgbImage | None:
        """One frame, RGB, or None when the camera gave nothing."""

    @abstractmethod
    def state(self) -> ReaderState:
        """The camera's health as the agent reports it."""

    def close(self) -> None:  # noqa: B027 - most cameras hold nothing to release
        """Release the camera."""


class OpenCvCamera(Camera):
    """A camera opened with OpenCV (`/dev/video0` = index 0; Pi camera via libcamera's V4L2)."""

    def __init__(self, device: int | str = 0, *, width: int = 640, height: int = 480) -> None:
        """Open `device` at the given resolution (640x480 is plenty for a face at 0.5-1 m)."""
        import cv2  # the `face` extra (opencv-python-headless)

        self._cv2: Any = cv2
        self.device = device
        self._cap: Any = cv2.VideoCapture(device)
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._failed = False

    def capture(self) -> RgbImage | None:
        """Grab a frame and convert OpenCV's BGR to the RGB face_recognition expects."""
        ok, frame = self._cap.read()
        self._failed = not ok
        if not ok:
            return None
        rgb: RgbImage = self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)
        return rgb

    def state(self) -> ReaderState:
        """Connected while frames arrive."""
        opened = bool(self._cap.isOpened()) and not self._failed
        return ReaderState(kind="camera", connected=opened, detail=str(self.device))

    def close(self) -> None:
        """Release the device."""
        self._cap.release()


class StillCamera(Camera):
    """A simulated camera that shows prepared frames in turn (tests, demo)."""

    def __init__(self, frames: Sequence[RgbImage] = ()) -> None:
        """Show `frames` one after the other, then nothing."""
        self.frames = list(frames)

    def show(self, frame: RgbImage) -> None:
        """Put a frame in front of the simulated camera."""
        self.frames.append(frame)

    def capture(self) -> RgbImage | None:
        """The next prepared frame, if any."""
        return self.frames.pop(0) if self.frames else None

    def state(self) -> ReaderState:
        """Always connected."""
        return ReaderState(kind="camera", connected=True, detail="simulator")


class ImageFileCamera(Camera):
    """A still-image camera: the picture in a file, as if held in front of the kiosk.

    For machines without a camera (a demo, a test bench): whatever image the file holds is the
    frame; replacing the file changes what the camera sees; no file means nobody in front.
    """

    def __init__(self, path: Path | str) -> None:
        """Show the image at `path` (PNG or JPEG)."""
        self.path = Path(path)
        self._cache: tuple[float, RgbImage] | None = None

    def capture(self) -> RgbImage | None:
        """The file's image as RGB (re-read only when the file changed)."""
        import numpy as np
        from PIL import Image  # the `face` extra

        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._cache = None
            return None
        if self._cache is None or self._cache[0] != mtime:
            with Image.open(self.path) as image:
                self._cache = (mtime, np.asarray(image.convert("RGB"), dtype=np.uint8))
        return self._cache[1]

    def state(self) -> ReaderState:
        """Always connected (a simulator)."""
        return ReaderState(kind="camera", connected=True, detail=f"image {self.path.name}"[:200])


def open_camera(spec: str) -> Camera:
    """The camera a kiosk's settings name: "image:<path>" a still image, else OpenCV's device."""
    if spec.startswith("image:"):
        return ImageFileCamera(spec.removeprefix("image:"))
    return OpenCvCamera(int(spec) if spec.isdigit() else spec)
