"""Colours and sizes of the kiosk, chosen for older eyes and hands (see docs/kiosk.md)."""

from __future__ import annotations

import math
from typing import Final

# Sizes are in pixels of the configured screen (Kivy density 1): the issue states them in px.
MESSAGE_PX: Final = 56  # every message a member reads: at least 48 px
HEADLINE_PX: Final = 84
NAME_PX: Final = 140  # the member's name: at least 100 px
TICKET_PX: Final = 220  # the meal ticket number: at least 100 px
IDLE_PROMPT_PX: Final = 120
STAFF_TEXT_PX: Final = 48  # staff screens use the same floor as members' messages
BADGE_PX: Final = 44  # the offline badge is for staff only: small next to the rest, yet >= 7.25 mm
MIN_MEMBER_TEXT_PX: Final = 48
MIN_NAME_PX: Final = 100

# A 10.1-inch 1280x800 touch screen (the Raspberry Pi kiosk) has about 150 dots per inch.
DEFAULT_DPI: Final = 150.0
MIN_TARGET_CM: Final = 2.0
WINDOW_SIZE: Final = (1280, 800)

# Seconds a screen stays before returning to idle by itself. Decision screens wait long
# enough for a slow reader (WCAG 2.2.1 asks for at least 20 s or a way to extend).
SUCCESS_S: Final = 6.0
ALREADY_S: Final = 12.0
REFUSED_S: Final = 15.0
CHOOSE_S: Final = 60.0
STAFF_IDLE_S: Final = 120.0

# Palette as hex RGB. Each foreground/background pair below is checked >= 7:1 in the tests.
WHITE: Final = "#FFFFFF"
BLACK: Final = "#000000"
YELLOW: Final = "#FFE066"
IDLE_BG: Final = "#0B1E3F"  # deep navy
SUCCESS_BG: Final = "#0A4A1E"  # deep green
ALREADY_BG: Final = "#FFD23F"  # amber, with black text
REFUSED_BG: Final = "#7A0A0A"  # deep red
STAFF_BG: Final = "#1F1F1F"
BUTTON_BG: Final = "#FFFFFF"
BUTTON_FG: Final = "#000000"
PRIMARY_BG: Final = "#FFE066"
PRIMARY_FG: Final = "#000000"
TOGGLE_OFF_BG: Final = "#3A3A3A"
TOGGLE_OFF_FG: Final = "#FFFFFF"
BADGE_BG: Final = "#000000"
BADGE_FG: Final = "#FFE066"

# (foreground, background, where): every text colour on its background.
TEXT_PAIRS: Final = (
    (WHITE, IDLE_BG, "idle text"),
    (YELLOW, IDLE_BG, "idle service line"),
    (WHITE, SUCCESS_BG, "success text"),
    (YELLOW, SUCCESS_BG, "ticket number"),
    (BLACK, ALREADY_BG, "already-served text"),
    (WHITE, REFUSED_BG, "refusal text"),
    (WHITE, STAFF_BG, "staff text"),
    (BUTTON_FG, BUTTON_BG, "buttons"),
    (PRIMARY_FG, PRIMARY_BG, "primary buttons, selected choices"),
    (TOGGLE_OFF_FG, TOGGLE_OFF_BG, "unselected choices"),
    (BADGE_FG, BADGE_BG, "offline badge"),
)


def rgba(hex_rgb: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """Kivy colour (0..1 floats) of a '#RRGGBB' string."""
    value = hex_rgb.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b, alpha)


def relative_luminance(hex_rgb: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def channel(c: float) -> float:
        """Linearise one sRGB channel."""
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b, _ = rgba(hex_rgb)
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(fg: str, bg: str) -> float:
    """WCAG contrast ratio (1..21) between two colours."""
    a, b = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def cm_to_px(cm: float, dpi: float) -> int:
    """Pixels covering `cm` centimetres on a screen of `dpi` dots per inch (rounded up)."""
    return math.ceil(cm / 2.54 * dpi)


# The smallest touch target in px at the default DPI; the app recomputes it from settings.
TARGET_PX: Final = cm_to_px(MIN_TARGET_CM, DEFAULT_DPI)
