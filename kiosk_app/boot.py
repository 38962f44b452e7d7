"""Configure Kivy before it is imported: no argv parsing, window size, kiosk behaviour."""

from __future__ import annotations

import os
import sys

from kiosk_app.settings import KioskSettings


def prepare_kivy(settings: KioskSettings) -> None:
    """Set Kivy's environment and config; must run before `kiosk_app.app` is imported."""
    if "kivy.core.window" in sys.modules:
        raise RuntimeError("prepare_kivy() must run before the Kivy window is created")
    # The kiosk has its own command line; Kivy must not parse it.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    # Sizes are specified in screen pixels; a fixed density keeps them so on every screen.
    os.environ.setdefault("KIVY_METRICS_DENSITY", "1")
    from kivy.config import Config

    Config.set("graphics", "width", str(settings.width))
    Config.set("graphics", "height", str(settings.height))
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "fullscreen", "auto" if settings.fullscreen else "0")
    # A member leaning on a keyboard must not close the kiosk.
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "keyboard_mode", "system")
