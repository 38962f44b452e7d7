"""Register a Korean font as Kivy's default: the bundled Roboto has no Hangul."""

from __future__ import annotations

from pathlib import Path


class FontMissingError(RuntimeError):
    """The configured Korean font files are not installed."""


def register_korean_font(regular: Path, bold: Path) -> None:
    """Make the Nanum font the default for every label; fail with the fix if it is absent."""
    missing = [str(p) for p in (regular, bold) if not p.is_file()]
    if missing:
        raise FontMissingError(
            "Korean font not found: " + ", ".join(missing) + ". Install it with "
            "'apt-get install fonts-nanum' or set WELFARE_KIOSK_FONT_REGULAR/_BOLD."
        )
    from kivy.core.text import DEFAULT_FONT, LabelBase

    LabelBase.register(DEFAULT_FONT, str(regular), None, str(bold), None)
