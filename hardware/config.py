"""Which devices a kiosk has (nested in the edge agent's settings as WELFARE_HARDWARE__*)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# How Hangul reaches the ticket printer: rendered as an image, or as EUC-KR text.
KoreanMode = Literal["image", "euc-kr"]


class HardwareSettings(BaseModel):
    """Unset means absent. The defaults match firmware_config/ (udev names, GPIO pins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card_wedge: str | None = "/dev/input/welfare-card"
    card_serial: str | None = None
    card_serial_baud: int = 9600
    nfc: str | None = None  # nfcpy path, e.g. "usb" or "usb:054c:06c3"
    printer: str | None = None  # open_printer spec, e.g. "usb:04b8:0202"
    printer_korean: KoreanMode = "image"
    printer_width_px: int = Field(default=512, ge=128, le=1024)
    gpio: bool = False
    buzzer_pin: int = 17
    green_pin: int = 27
    red_pin: int = 22
    debounce_s: float = Field(default=2.0, ge=0)
    # Face match (docs/face.md): off unless enabled; the camera as hardware.face.camera's
    # open_camera takes it ("0" or "/dev/video0" through OpenCV, "image:/path.png" a still).
    face: bool = False
    camera: str = "0"
    face_min_px: int = Field(default=80, ge=20, le=2000)
