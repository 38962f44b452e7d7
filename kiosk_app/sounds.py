"""Distinct sounds per outcome, generated as WAV files in code; missing audio never blocks."""

from __future__ import annotations

import hashlib
import logging
import math
import struct
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LOG = logging.getLogger(__name__)
RATE = 22_050

# (frequency Hz, seconds) notes. Success rises, already-served repeats a middle tone, refusal
# is low and long: different in pitch *and* rhythm so they are told apart with poor hearing.
TUNES: dict[str, list[tuple[float, float]]] = {
    "success": [(523.25, 0.14), (659.25, 0.14), (783.99, 0.30)],
    "already": [(587.33, 0.22), (0.0, 0.10), (587.33, 0.22)],
    "refused": [(220.0, 0.55), (0.0, 0.08), (196.0, 0.55)],
    "choose": [(880.0, 0.12), (0.0, 0.06), (880.0, 0.12)],
    "key": [(1200.0, 0.04)],
}


def write_tune(path: Path, notes: list[tuple[float, float]], *, volume: float = 0.6) -> None:
    """Write a mono 16-bit WAV of sine notes with short fades (no clicks)."""
    frames = bytearray()
    for freq, seconds in notes:
        count = int(RATE * seconds)
        fade = max(1, int(RATE * 0.01))
        for i in range(count):
            env = min(1.0, i / fade, (count - i) / fade)
            sample = volume * env * math.sin(2 * math.pi * freq * i / RATE) if freq else 0.0
            frames += struct.pack("<h", int(sample * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))


def generate(directory: Path) -> dict[str, Path]:
    """Write every tune into `directory` (once) and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, notes in TUNES.items():
        # The tune is in the file name, so a changed tune is never served from an old file.
        digest = hashlib.sha256(repr(notes).encode()).hexdigest()[:8]
        path = directory / f"{name}-{digest}.wav"
        if not path.exists():
            write_tune(path, notes)
        paths[name] = path
    return paths


Loader = Callable[[str], Any]


@dataclass
class SoundBoard:
    """Plays outcome sounds; records every request so tests can check one per outcome."""

    directory: Path | None = None
    enabled: bool = True
    loader: Loader | None = None  # kivy SoundLoader.load; None plays nothing
    requested: list[tuple[str, bool]] = field(default_factory=list)  # (name, audible)
    _sounds: dict[str, Any] = field(default_factory=dict)

    def load(self) -> None:
        """Generate the files and load them; a machine without audio just stays silent."""
        directory = self.directory or Path.home() / ".cache" / "welfare-kiosk" / "sounds"
        for name, path in generate(directory).items():
            if self.loader is None:
                continue
            try:
                sound = self.loader(str(path))
            except Exception as exc:  # any audio backend failure must not stop the kiosk
                _LOG.warning("cannot load sound %s: %s", path, exc)
                sound = None
            if sound is not None:
                self._sounds[name] = sound
        if self.loader is not None and not self._sounds:
            _LOG.warning("no audio output: the kiosk runs silently")

    def play(self, name: str) -> None:
        """Request a sound; silent when muted by staff or with no audio device."""
        audible = self.enabled and name in self._sounds
        self.requested.append((name, audible))
        if not audible:
            return
        sound = self._sounds[name]
        try:
            sound.stop()
            sound.play()
        except Exception as exc:
            _LOG.warning("sound %s failed: %s", name, exc)
