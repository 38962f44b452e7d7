"""Settings of the kiosk UI (environment variables WELFARE_KIOSK_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kiosk_app import theme
from kiosk_app.voice import VoiceSettings


class KioskSettings(BaseSettings):
    """What the view needs; the decision and the record belong to the edge agent."""

    model_config = SettingsConfigDict(env_prefix="WELFARE_KIOSK_", env_nested_delimiter="__")

    link_socket: Path = Path("/run/welfare/edge-link.sock")
    # 'pbkdf2_sha256$...' from `welfare kiosk hash-pin`; unset disables staff mode.
    staff_pin_hash: str | None = None
    dpi: float = Field(default=theme.DEFAULT_DPI, gt=50, le=600)
    width: int = theme.WINDOW_SIZE[0]
    height: int = theme.WINDOW_SIZE[1]
    fullscreen: bool = False
    sound: bool = True
    sound_dir: Path | None = None  # where generated WAV files go; ~/.cache/welfare-kiosk when unset
    # The Korean voice (kiosk_app/voice.py): WELFARE_KIOSK_VOICE__VOLUME, __SPEED, __EARPHONE …
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    # 200% text on the members' screens (KS X 9211 / WCAG 1.4.4); staff switch it on the kiosk.
    large_text: bool = False
    font_regular: Path = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")
    font_bold: Path = Path("/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf")
    neighbourhoods: list[str] = ["중앙동", "신흥동", "영화동", "송죽동", "기타 지역"]
    visit_purposes: list[str] = ["상담", "프로그램 문의", "행사 참여", "후원·봉사", "기타"]
    success_s: float = Field(default=theme.SUCCESS_S, ge=3)
    already_s: float = Field(default=theme.ALREADY_S, ge=5)
    refused_s: float = Field(default=theme.REFUSED_S, ge=5)
    choose_s: float = Field(default=theme.CHOOSE_S, ge=20)
    staff_idle_s: float = Field(default=theme.STAFF_IDLE_S, ge=20)

    @property
    def target_px(self) -> int:
        """The smallest touch target (2 cm) in pixels on this screen."""
        return theme.cm_to_px(theme.MIN_TARGET_CM, self.dpi)
