"""The desk's face page in a real Chromium: the webcam (Chromium's fake camera playing the
astronaut's portrait, made here from scikit-image's picture) through getUserMedia, consent,
two photos, enrolment, withdrawal — and no photo stored anywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from PIL import Image

from tests.browser import chromium_path, serve
from tests.face.conftest import portrait, seeded_app
from tests.hardware.faces import astronaut
from tests.security_helpers import session_headers
from welfare.services.chromium import HEADLESS_ARGS


def y4m(image: np.ndarray, path: Path, frames: int = 3) -> Path:
    """A Y4M video of a still picture (4:2:0), the fake camera's input format."""
    picture = Image.fromarray(image).resize((640, 480)).convert("YCbCr")
    y, cb, cr = (np.asarray(p) for p in picture.split())
    chroma = [np.asarray(Image.fromarray(c).resize((320, 240))) for c in (cb, cr)]
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            out.write(b"FRAME\n" + y.tobytes() + chroma[0].tobytes() + chroma[1].tobytes())
    return path


def test_enrol_and_withdraw_from_the_desk_page(database_url: str, tmp_path: Path) -> None:
    """Staff record the consent, take two photos with the webcam, enrol, then withdraw."""
    from playwright.sync_api import sync_playwright

    video = y4m(portrait(astronaut()), tmp_path / "desk-camera.y4m")
    app = seeded_app(database_url)
    cookie = session_headers(database_url, "b.staff")["Cookie"].split("=", 1)
    with serve(app) as base, sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                *HEADLESS_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            context = chromium.new_context(locale="ko-KR")
            context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": base}])
            page = context.new_page()
            page.goto(f"{base}/members/B-M1/face")
            assert "B-M1 김*자" in page.inner_text("h1")
            assert "얼굴인식 동의가 없습니다" in page.inner_text("#consent-state")
            page.click("#record-consent")  # no form number: a clear message, nothing sent
            assert page.inner_text("#message") == "동의서 번호를 입력하세요."
            page.fill("#form-id", "얼굴-2026-0117")
            page.click("#record-consent")
            page.wait_for_selector("#message.info")
            page.click("#start-camera")
            page.wait_for_selector("#message:has-text('카메라가 켜졌습니다')")
            page.wait_for_timeout(500)  # a few frames of the fake camera
            page.click("#take-photo")
            page.click("#take-photo")
            assert page.inner_text("#photo-count") == "2장"
            page.click("#enrol")
            page.wait_for_selector("#message:has-text('등록했습니다')", timeout=60_000)
            assert "2장" in page.inner_text("#message")
            with psycopg.connect(database_url) as conn:
                assert conn.execute("SELECT photos FROM face_templates").fetchall() == [(2,)]
            page.on("dialog", lambda dialog: dialog.accept())
            page.click("#withdraw")
            page.wait_for_selector("#message:has-text('철회했습니다')")
        finally:
            chromium.close()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM face_templates").fetchone() == (0,)
        # Nothing of the photos anywhere in the database: no table holds an image.
        binary = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'bytea' AND table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
    assert ("face_templates", "sealed") in binary
