"""A Korean voice for every outcome, from espeak-ng (Debian package `espeak-ng`, its Korean
voice included; nothing downloaded at run time).

The kiosk says what it shows: "김 수 님, 맛있게 드세요. 번호표 57번". Staff set the volume and
the speed; in earphone mode the voice goes only to the earphone jack (a senior with poor
hearing, or a name not to be announced to the queue). Speech is synthesised to a cached WAV
file off the UI thread and played by `aplay`; a kiosk without espeak-ng or audio stays silent
and keeps working — the screen and the tones say the same.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kiosk_app.texts import Presentation

_LOG = logging.getLogger(__name__)
VOICE = "ko"
CACHE_DIR = Path.home() / ".cache" / "welfare-kiosk"


class VoiceSettings(BaseModel):
    """What staff set (WELFARE_KIOSK_VOICE__*): on/off, volume, speed, earphone mode."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # espeak-ng's amplitude: 0-200, 100 is its normal loudness.
    volume: int = Field(default=120, ge=0, le=200)
    # Words per minute: seniors follow 130-150 better than espeak's default 175.
    speed: int = Field(default=140, ge=80, le=300)
    earphone: bool = False
    # ALSA device of the earphone jack (a Raspberry Pi's 3.5 mm jack is card 'Headphones').
    earphone_device: str = "plughw:CARD=Headphones"
    speaker_device: str = "default"


def spoken(shown: Presentation) -> str:
    """The sentence for one outcome: the name, the headline, the ticket, what to do next."""
    parts: list[str] = []
    if shown.name:
        # A masked name is read without its mask ("김*수" -> "김 수"): a star is not a sound.
        parts.append(shown.name.replace("*", " ").replace("  ", " ") + ",")
    parts.append(shown.headline.rstrip(".") + ".")
    if shown.ticket:
        parts.append(f"번호표 {shown.ticket}번.")
    elif shown.screen in ("refused", "already", "full") and shown.detail:
        parts.append(shown.detail.split(" · ")[-1].rstrip(".?") + ".")
    # Times are read the Korean way: 12:30 -> 12시 30분.
    return _CLOCK.sub(_read_clock, " ".join(parts))


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


def _read_clock(match: re.Match[str]) -> str:
    """'12:30' as said aloud: '12시 30분' ('12시' on the hour)."""
    hour, minute = int(match[1]), int(match[2])
    return f"{hour}시 {minute}분" if minute else f"{hour}시"


def espeak() -> str | None:
    """The espeak-ng program, if installed."""
    return shutil.which("espeak-ng")


def synthesize(text: str, out: Path, *, volume: int, speed: int) -> Path:
    """Write `text` spoken in Korean to the WAV file `out` (raises if espeak-ng fails)."""
    program = espeak()
    if program is None:
        raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [program, "-v", VOICE, "-a", str(volume), "-s", str(speed), "-w", str(out), "--", text],
        check=True,
        capture_output=True,
        timeout=20,
    )
    return out


@dataclass
class Voice:
    """Speaks outcomes; records what it said, so tests can check one sentence per outcome."""

    settings: VoiceSettings = field(default_factory=VoiceSettings)
    directory: Path = CACHE_DIR
    said: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wav_for(self, text: str) -> Path:
        """The cached recording of `text` at the current volume and speed (made when missing)."""
        s = self.settings
        key = hashlib.sha256(f"{s.volume}|{s.speed}|{text}".encode()).hexdigest()[:16]
        path = self.directory / "voice" / f"{key}.wav"
        if not path.exists():
            synthesize(text, path.with_suffix(".tmp.wav"), volume=s.volume, speed=s.speed)
            path.with_suffix(".tmp.wav").replace(path)
        return path

    def say(self, shown: Presentation) -> None:
        """Speak an outcome in the background; never blocks or breaks the screen."""
        text = spoken(shown)
        self.said.append(text)
        if not self.settings.enabled or espeak() is None:
            return
        threading.Thread(target=self._speak, args=(text,), daemon=True).start()

    def _speak(self, text: str) -> None:
        """Synthesise (cached) and play on the speaker, or only on the earphone."""
        device = (
            self.settings.earphone_device
            if self.settings.earphone
            else self.settings.speaker_device
        )
        player = shutil.which("aplay")
        try:
            with self._lock:  # one sentence at a time, in order
                wav = self.wav_for(text)
                if player is not None:
                    subprocess.run([player, "-q", "-D", device, str(wav)], check=False, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            _LOG.warning("voice failed: %s", exc)
