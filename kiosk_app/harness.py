"""Drive the real kiosk window: simulated card taps and touches, screenshots, the benchmark.

Used by `welfare kiosk screenshots`, `welfare kiosk bench` and the UI tests. Kivy is imported
only inside functions, after `prepare_kivy`, because it reads its configuration on import.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import time as clock_time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from broker.vocabulary import Method, Outcome, ProgramKind
from edge_agent.link import LinkClient
from edge_agent.models import TapResult
from kiosk_app import demo
from kiosk_app.pin import hash_pin
from kiosk_app.settings import KioskSettings

if TYPE_CHECKING:
    from kiosk_app.app import KioskApp

T = TypeVar("T")


# -- a virtual screen ------------------------------------------------------------------------


@contextlib.contextmanager
def xvfb(size: tuple[int, int] = (1280, 800)) -> Iterator[str]:
    """Start Xvfb on a free display (it picks one itself) and yield ':N'; stop it after."""
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{size[0]}x{size[1]}x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise RuntimeError("Xvfb is not installed: apt-get install xvfb") from exc
    finally:
        os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # Xvfb writes it once the display is ready
        if not number:
            raise RuntimeError(f"Xvfb did not start (exit code {proc.poll()})")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ensure_display() -> contextlib.AbstractContextManager[Any]:
    """Use the current X display, or a private Xvfb when there is none (CI, SSH)."""
    if os.environ.get("DISPLAY"):
        return contextlib.nullcontext()
    return _private_display()


@contextlib.contextmanager
def _private_display() -> Iterator[None]:
    """Set DISPLAY to a fresh Xvfb for the duration."""
    with xvfb() as display:
        os.environ["DISPLAY"] = display
        try:
            yield
        finally:
            os.environ.pop("DISPLAY", None)


# -- driving the app --------------------------------------------------------------------------


async def wait_until(
    predicate: Callable[[], bool], *, within: float = 10.0, what: str = "condition"
) -> None:
    """Poll `predicate` on the app's loop until true, or fail naming what was awaited."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.005)


@dataclass
class Ui:
    """A running kiosk window with its demo agent; acts like a card reader and a finger."""

    app: KioskApp
    agent: demo.DemoAgent
    reader: LinkClient  # a second link client standing in for the reader

    @property
    def screen(self) -> str:
        """Name of the screen on display."""
        return str(self.app.manager.current)

    def texts(self) -> list[str]:
        """Texts visible now."""
        return self.app.visible_texts()

    async def frames(self, count: int = 2) -> None:
        """Let Kivy draw `count` more frames."""
        from kivy.clock import Clock

        start = Clock.frames
        await wait_until(lambda: Clock.frames >= start + count, what=f"{count} frames")

    async def tap(self, card: str) -> TapResult:
        """Tap a card on the reader and wait until the answer is drawn on screen."""
        before = self.app.results_shown
        result = await self.reader.tap(card)
        await wait_until(lambda: self.app.results_rendered > before, what=f"screen for {card}")
        return result

    def button(self, text: str) -> Any:
        """The visible, enabled button with this text on the current screen."""
        from kivy.uix.button import Button

        from kiosk_app.app import is_shown

        for widget in self.app.manager.current_screen.walk():
            if (
                isinstance(widget, Button)
                and widget.text == text
                and is_shown(widget)
                and not widget.disabled
            ):
                return widget
        raise LookupError(f"no button {text!r} on screen {self.screen!r}: {self.texts()}")

    async def press(self, text: str) -> None:
        """Touch a button by its text, as a finger would (down and up at its centre)."""
        from kivy.tests.common import UnitTestTouch

        widget = self.button(text)
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        await self.frames(1)
        touch.touch_up()
        await self.frames(2)

    async def wait_screen(self, name: str, within: float = 10.0) -> None:
        """Wait until `name` is on display and drawn."""
        await wait_until(lambda: self.screen == name, within=within, what=f"screen {name}")
        await self.frames(2)

    async def wait_for(self, predicate: Callable[[], bool], what: str, within: float = 10) -> None:
        """Wait for a condition on the app's loop."""
        await wait_until(predicate, within=within, what=what)

    async def enter_pin(self, pin: str) -> None:
        """Type a PIN on the keypad and confirm."""
        for digit in pin:
            await self.press(digit)
        await self.press("확인")

    async def screenshot(self, path: Path) -> Path:
        """Save the whole window (screen and badge) as a PNG."""
        await self.frames(3)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.app.root.export_to_png(str(path))
        return path


def kiosk_settings(workdir: Path, *, pin: str, **overrides: Any) -> KioskSettings:
    """Settings of a kiosk bound to the demo agent in `workdir`."""
    values: dict[str, Any] = {
        "link_socket": workdir / "link.sock",
        "staff_pin_hash": hash_pin(pin, iterations=20_000),
        "sound_dir": workdir / "sounds",
    }
    values.update(overrides)
    return KioskSettings(**values)


async def run_ui(
    workdir: Path,
    body: Callable[[Ui], Awaitable[T]],
    *,
    pin: str,
    bench_members: int = 0,
    keyboard_cards: dict[str, str] | None = None,
    **overrides: Any,
) -> T:
    """Start the demo agent, the kiosk window and a reader; run `body`; stop everything."""
    from kiosk_app.app import KioskApp

    async with demo.demo_agent(workdir, bench_members=bench_members) as agent:
        app = KioskApp(kiosk_settings(workdir, pin=pin, **overrides), keyboard_cards=keyboard_cards)
        runner = asyncio.get_running_loop().create_task(app.async_run(async_lib="asyncio"))
        reader = LinkClient(agent.socket, subscribe=False)
        reader_task = asyncio.get_running_loop().create_task(reader.run())
        try:
            await wait_until(
                lambda: runner.done() or (app.started and app.link_up and app.status is not None),
                within=60,
                what="the kiosk window and its link",
            )
            if runner.done():
                runner.result()  # re-raise why the app stopped (font, display...)
                raise RuntimeError("the kiosk app stopped during start-up")
            await reader.wait_connected()
            ui = Ui(app, agent, reader)
            await ui.frames(3)
            return await body(ui)
        finally:
            await reader.close()
            reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader_task
            app.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(runner, 30)
            await app.link.close()


# -- screenshots -----------------------------------------------------------------------------

# (file name, what it shows) in the order they are taken.
SCREENS = (
    ("01_idle.png", "대기 화면"),
    ("02_success_meal.png", "식사 확인, 번호표"),
    ("03_already_served.png", "오늘 이미 식사함"),
    ("04_unknown_card.png", "등록되지 않은 카드"),
    ("05_inactive_member.png", "이용 중지 회원"),
    ("06_choose_class.png", "수업 선택"),
    ("07_success_class.png", "수업 출석"),
    ("08_staff_pin.png", "직원 PIN"),
    ("09_staff_menu.png", "직원 메뉴"),
    ("10_visitor_step1.png", "방문자 등록 1/2"),
    ("11_visitor_step2.png", "방문자 등록 2/2"),
    ("12_visitor_code.png", "개인식별코드 발급"),
    ("13_counts.png", "오늘 현황"),
    ("14_offline.png", "오프라인 표시(직원용)"),
    # The hall as one (docs/kiosk.md): a full sitting, the voice settings, 200% text.
    ("20_sitting_full.png", "이번 식사 시간 만석, 다음 시간 번호표 제안"),
    ("21_voice_settings.png", "음성·글자 설정(직원용)"),
    ("22_large_text.png", "큰 글씨 200%"),
)


async def take_screenshots(ui: Ui, out: Path, pin: str) -> list[Path]:
    """Walk every screen and save a PNG of each."""
    shots: list[Path] = []

    async def shot(index: int) -> None:
        """Save screenshot number `index`."""
        shots.append(await ui.screenshot(out / SCREENS[index][0]))

    await shot(0)
    await ui.tap(demo.CARD_MEAL)
    await shot(1)
    await ui.tap(demo.CARD_MEAL)
    await shot(2)
    await ui.tap(demo.CARD_UNKNOWN)
    await shot(3)
    await ui.tap(demo.CARD_INACTIVE)
    await shot(4)
    await ui.tap(demo.CARD_TWO_CLASSES)
    await shot(5)
    await ui.press("노래교실 · 3층 강당")
    await ui.wait_screen("success")
    await shot(6)
    ui.app.go_idle()
    await ui.wait_screen("idle")
    await ui.press("직원")
    await ui.wait_screen("pin")
    for digit in pin[:2]:
        await ui.press(digit)
    await shot(7)
    for digit in pin[2:]:
        await ui.press(digit)
    await ui.press("확인")
    await ui.wait_screen("staff")
    await shot(8)
    await ui.press("방문자 등록\n(개인식별코드 발급)")
    await ui.press("여")
    await ui.press("80-84")
    await shot(9)
    await ui.press("다음")
    await ui.press("신흥동")
    await ui.press("상담")
    await shot(10)
    await ui.press("등록")
    await ui.wait_screen("visitor_code")
    await shot(11)
    await ui.press("직원 메뉴로")
    await ui.press("오늘 현황")
    await ui.wait_screen("counts")
    await shot(12)
    ui.app.go_idle()
    ui.agent.agent.online = False
    await wait_until(lambda: bool(ui.app.badge_text), what="offline badge")
    await shot(13)
    ui.agent.agent.online = True
    await hall_screens(ui, shot)
    return shots


async def hall_screens(ui: Ui, shot: Callable[[int], Awaitable[None]]) -> None:
    """The meal hall's own screens: a full sitting, the voice settings, 200% text."""
    ui.app.on_tap(
        TapResult(
            outcome=Outcome.SITTING_FULL,
            method=Method.CARD,
            member_ref="B-M00002",
            display_name="이*희",
            program_id=demo.MEAL,
            program_name="경로식당 점심",
            program_kind=ProgramKind.MEAL,
            sitting=clock_time(11, 30),
            next_sitting=clock_time(12, 30),
        )
    )
    await ui.wait_screen("full")
    await shot(14)
    ui.app.show_voice()
    ui.app.toggle_large_text()
    await ui.wait_screen("voice")
    await shot(15)
    ui.app.go_idle()
    await ui.wait_screen("idle")
    await ui.tap(demo.CARD_MEAL)  # served before: 'already', in 200% text
    await ui.wait_screen("already")
    await shot(16)
    ui.app.toggle_large_text()


def screenshots(out: Path) -> list[Path]:
    """Render every screen into `out` (the project's own command for docs/screens)."""
    pin = "2580"
    with ensure_display(), tempfile.TemporaryDirectory(prefix="kiosk-shots-") as tmp:
        return asyncio.run(run_ui(Path(tmp), lambda ui: take_screenshots(ui, out, pin), pin=pin))


# -- benchmark --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchResult:
    """Tap-to-success latencies and the record check."""

    taps: int
    recorded: int
    tap_to_screen_ms: list[float]
    decision_ms: list[float]

    def percentile(self, values: list[float], q: float) -> float:
        """The q-th percentile (nearest rank)."""
        ordered = sorted(values)
        index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    def report(self) -> str:
        """Human-readable summary."""
        lat, dec = self.tap_to_screen_ms, self.decision_ms
        return (
            f"taps: {self.taps}  events recorded (accepted): {self.recorded}  "
            f"{'OK' if self.recorded == self.taps else 'MISMATCH'}\n"
            f"tap -> success screen drawn: p50 {self.percentile(lat, 50):.1f} ms  "
            f"p99 {self.percentile(lat, 99):.1f} ms  max {max(lat):.1f} ms  "
            f"mean {statistics.fmean(lat):.1f} ms\n"
            f"tap -> committed result pushed to the view: p50 {self.percentile(dec, 50):.1f} ms  "
            f"p99 {self.percentile(dec, 99):.1f} ms"
        )


async def _bench(ui: Ui, taps: int) -> BenchResult:
    """Tap `taps` different members once each; time each until its success screen is drawn."""
    latencies: list[float] = []
    decisions: list[float] = []
    for i in range(taps):
        card = demo.bench_card(i)
        before = ui.app.results_shown
        start = time.perf_counter()
        result = await ui.reader.tap(card)
        if result.outcome is not Outcome.ACCEPTED:
            raise RuntimeError(f"bench tap {card} was not accepted: {result}")
        target = before + 1
        await wait_until(
            lambda n=target: ui.app.results_rendered >= n,  # type: ignore[misc]
            what=f"screen for {card}",
        )
        if ui.screen != "success" or ui.app.screen("success").ticket != str(result.ticket_no):
            raise RuntimeError(f"screen after {card} is {ui.screen}, not its ticket")
        latencies.append((ui.app.render_times[target] - start) * 1000)
        decisions.append((ui.app.arrival_times[target] - start) * 1000)
    events = await ui.agent.agent.store.all_events()
    recorded = sum(
        1 for e in events if e.outcome is Outcome.ACCEPTED and (e.member_ref or "").startswith("B")
    )
    return BenchResult(taps, recorded, latencies, decisions)


def bench(taps: int) -> BenchResult:
    """Run the tap-to-success benchmark in a real window (Xvfb when there is no display)."""
    pin = "2580"
    with ensure_display(), tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        return asyncio.run(
            run_ui(
                Path(tmp),
                lambda ui: _bench(ui, taps),
                pin=pin,
                bench_members=taps,
                sound=False,
            )
        )
