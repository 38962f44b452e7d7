"""The Kivy kiosk app: a view of the edge agent's decisions, run with `async_run`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import NoTransition, Screen

from broker.vocabulary import AGE_BANDS, Gender
from edge_agent.link import LinkClient, LinkError, LinkStatus, ProgramCount
from edge_agent.models import ProgramChoice, TapResult
from edge_agent.systemd import notify, watchdog_period
from kiosk_app import texts, theme
from kiosk_app.face_confirm import FaceConfirmMixin, FaceConfirmScreen
from kiosk_app.fonts import register_korean_font
from kiosk_app.pin import verify_pin
from kiosk_app.settings import KioskSettings
from kiosk_app.sounds import SoundBoard
from kiosk_app.voice import CACHE_DIR, Voice

SCREENS_DIR = Path(__file__).parent / "screens"
# Shared widget rules first, then one file per screen, the root last.
KV_FILES = (
    "widgets.kv",
    "idle.kv",
    "success.kv",
    "already.kv",
    "refused.kv",
    "choose.kv",
    "pin.kv",
    "staff.kv",
    "visitor.kv",
    "visitor_place.kv",
    "visitor_code.kv",
    "counts.kv",
    "face_confirm.kv",
    "full.kv",
    "voice.kv",
    "reason.kv",
    "root.kv",
)
PIN_MAX_TRIES = 5
PIN_LOCK_S = 60.0


def is_shown(widget: Any) -> bool:
    """Whether a widget and all its parents are visible (not transparent, not collapsed)."""
    while widget is not None and not isinstance(widget, Screen):
        if widget.opacity == 0 or widget.height <= 0:
            return False
        widget = widget.parent
    return True


class KioskRoot(FloatLayout):  # type: ignore[misc]
    """The screen manager plus the small status badge for staff."""


class IdleScreen(Screen):  # type: ignore[misc]
    """Waiting for a card: one instruction, the facility, the service on now, the time."""

    facility_text = StringProperty("")
    time_text = StringProperty("")
    service_text = StringProperty("")


class SuccessScreen(Screen):  # type: ignore[misc]
    """Checked in: name, service and, at the meal hall, the ticket number."""

    headline = StringProperty("")
    name_text = StringProperty("")
    detail = StringProperty("")
    ticket = StringProperty("")


class AlreadyScreen(Screen):  # type: ignore[misc]
    """Already served today: no second ticket; staff may override."""

    headline = StringProperty("")
    name_text = StringProperty("")
    detail = StringProperty("")
    can_override = BooleanProperty(False)


class RefusedScreen(Screen):  # type: ignore[misc]
    """Card unknown, member inactive, not enrolled, nothing on: see staff."""

    headline = StringProperty("")
    name_text = StringProperty("")
    detail = StringProperty("")
    can_override = BooleanProperty(False)


class FullScreen(Screen):  # type: ignore[misc]
    """The sitting is full: a ticket for the next sitting is offered."""

    headline = StringProperty("")
    name_text = StringProperty("")
    detail = StringProperty("")
    can_override = BooleanProperty(False)
    can_take = BooleanProperty(False)


class VoiceScreen(Screen):  # type: ignore[misc]
    """Staff set the voice (volume, speed, earphone) and the 200% text."""

    state_text = StringProperty("")
    earphone = BooleanProperty(False)


class ReasonScreen(Screen):  # type: ignore[misc]
    """Staff say why they let a member in despite the rule (recorded with the event)."""


class ChooseScreen(Screen):  # type: ignore[misc]
    """Several classes on now: one large button per class."""

    headline = StringProperty("")
    name_text = StringProperty("")


class PinScreen(Screen):  # type: ignore[misc]
    """Staff PIN entry on a large keypad."""

    dots = StringProperty("")
    message = StringProperty("")


class StaffScreen(Screen):  # type: ignore[misc]
    """Staff menu: visitor registration, today's counts, sound on/off, back."""


class VisitorScreen(Screen):  # type: ignore[misc]
    """One-off visitor, step 1: gender and age band."""

    gender = StringProperty("")
    age_band = StringProperty("")


class VisitorPlaceScreen(Screen):  # type: ignore[misc]
    """One-off visitor, step 2: neighbourhood and purpose of the visit."""

    neighbourhood = StringProperty("")
    purpose = StringProperty("")
    message = StringProperty("")


class VisitorCodeScreen(Screen):  # type: ignore[misc]
    """The issued personal ID code, large enough to copy down."""

    code = StringProperty("")
    summary = StringProperty("")


class CountsScreen(Screen):  # type: ignore[misc]
    """Today's accepted check-ins per program."""

    date_text = StringProperty("")
    total_text = StringProperty("")


SCREEN_CLASSES: dict[str, type[Screen]] = {
    "idle": IdleScreen,
    "success": SuccessScreen,
    "already": AlreadyScreen,
    "refused": RefusedScreen,
    "choose": ChooseScreen,
    "pin": PinScreen,
    "staff": StaffScreen,
    "visitor": VisitorScreen,
    "visitor_place": VisitorPlaceScreen,
    "visitor_code": VisitorCodeScreen,
    "counts": CountsScreen,
    "face_confirm": FaceConfirmScreen,
    "full": FullScreen,
    "voice": VoiceScreen,
    "reason": ReasonScreen,
}
STAFF_SCREENS = frozenset(
    {"pin", "staff", "visitor", "visitor_place", "visitor_code", "counts", "voice", "reason"}
)


class KioskApp(FaceConfirmMixin, App):  # type: ignore[misc]
    """The kiosk view. Link callbacks hand data here; only this class touches widgets."""

    badge_text = StringProperty("")
    target_px = NumericProperty(theme.TARGET_PX)
    sound_on = BooleanProperty(True)
    staff_enabled = BooleanProperty(False)
    text_scale = NumericProperty(1.0)  # 2.0: the 200% text of the members' screens

    def __init__(
        self,
        settings: KioskSettings,
        *,
        keyboard_cards: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Prepare the view; `keyboard_cards` turns the keyboard into a demo card reader."""
        super().__init__(**kwargs)
        self._keyboard_cards = keyboard_cards
        self._typed = ""
        self.title = "스마트 복지 키오스크"
        self.settings = settings
        self.target_px = settings.target_px
        self.sound_on = settings.sound
        self.staff_enabled = bool(settings.staff_pin_hash)
        self.sounds = SoundBoard(directory=settings.sound_dir, enabled=settings.sound)
        self.voice = Voice(settings.voice.model_copy(), directory=settings.sound_dir or CACHE_DIR)
        self.text_scale = 2.0 if settings.large_text else 1.0
        self.link = LinkClient(
            settings.link_socket,
            on_tap=self.on_tap,
            on_status=self.on_status,
            on_connection=self.on_connection,
            on_face=self.on_face,
        )
        self.status: LinkStatus | None = None
        self.link_up = False
        self.started = False
        self.result: TapResult | None = None  # the result on screen, for a staff override
        self.results_shown = 0  # tap results put on screen so far
        self.results_rendered = 0  # ... and drawn to the display (set at the next flip)
        self.render_times: dict[int, float] = {}  # result number -> perf_counter at its flip
        self.arrival_times: dict[int, float] = {}  # result number -> when the push arrived
        self._pin_action: Callable[[], None] | None = None
        self._pin_entry = ""
        self._pin_failures = 0
        self._pin_locked_until = 0.0
        self._timeout: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- Kivy life cycle ------------------------------------------------------------------

    def build(self) -> KioskRoot:
        """Register the Korean font, load one .kv file per screen and build the screens."""
        register_korean_font(self.settings.font_regular, self.settings.font_bold)
        for name in KV_FILES:
            Builder.load_file(str(SCREENS_DIR / name))
        root = KioskRoot()
        manager = root.ids.sm
        manager.transition = NoTransition()  # instant: no animation to wait for or to confuse
        for name, cls in SCREEN_CLASSES.items():
            manager.add_widget(cls(name=name))
        self._fill_visitor_options(root)
        self._update_badge()
        return root

    def on_start(self) -> None:
        """Load sounds and connect to the agent."""
        from kivy.core.audio import SoundLoader

        self.sounds.loader = SoundLoader.load
        self.sounds.load()
        Window.bind(on_flip=self._on_flip)
        if self._keyboard_cards is not None:
            Window.bind(on_textinput=self._on_text, on_key_down=self._on_key)
        self._spawn(self.link.run())
        self.started = True
        # Under systemd (firmware_config/welfare-kiosk.service): ready once the window is up;
        # Kivy's frame clock pings the watchdog, so a frozen screen gets restarted.
        notify("READY=1")
        if (period := watchdog_period()) is not None:
            Clock.schedule_interval(lambda _dt: notify("WATCHDOG=1"), period)

    def on_stop(self) -> None:
        """Stop talking to the agent; the agent carries on without a screen."""
        notify("STOPPING=1")
        self.started = False  # link callbacks after this point find no widgets to update
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine on the app's own asyncio loop and keep a reference to it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_flip(self, *_args: Any) -> None:
        """A frame reached the display: results shown so far are now visible."""
        if self.results_rendered != self.results_shown:
            self.results_rendered = self.results_shown
            self.render_times[self.results_shown] = time.perf_counter()
            self.render_times.pop(self.results_shown - 1000, None)  # bounded on a long day

    def _on_text(self, _window: Any, text: str) -> None:
        """Demo reader: collect typed characters (USB card readers type the UID too)."""
        self._typed += text

    def _on_key(self, _window: Any, key: int, *_args: Any) -> bool:
        """Demo reader: Enter sends what was typed (or a shortcut) as a card tap."""
        if key not in (13, 271):  # Enter, keypad Enter
            return False
        typed, self._typed = self._typed.strip(), ""
        if typed and self._keyboard_cards is not None:
            card = self._keyboard_cards.get(typed, typed)
            self._spawn(self._send(self.link.tap(card)))
        return True

    # -- navigation -----------------------------------------------------------------------

    @property
    def manager(self) -> Any:
        """The screen manager."""
        return self.root.ids.sm

    def screen(self, name: str) -> Any:
        """A screen by name."""
        return self.manager.get_screen(name)

    def show(self, name: str, timeout: float | None = None) -> None:
        """Switch screens; some return to idle by themselves after `timeout` seconds."""
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self.manager.current = name
        if name in STAFF_SCREENS and timeout is None:
            timeout = self.settings.staff_idle_s
        if timeout is not None:
            self._timeout = Clock.schedule_once(lambda _dt: self.go_idle(), timeout)

    def go_idle(self) -> None:
        """Back to the waiting screen."""
        self.result = None
        self.show("idle")

    # -- from the link (data only) ----------------------------------------------------------

    def on_connection(self, up: bool) -> None:
        """The link to the agent came up or went down."""
        if not self.started:
            return
        self.link_up = up
        self._update_badge()

    def on_status(self, status: LinkStatus) -> None:
        """New facility/service/online status from the agent."""
        if not self.started:
            return
        self.status = status
        idle = self.screen("idle")
        idle.facility_text = status.facility_name
        idle.time_text = status.local_time
        if status.on_now:
            idle.service_text = "지금: " + " · ".join(s.name for s in status.on_now)
        else:
            idle.service_text = texts.NO_SERVICE_NOW
        self._update_badge()

    def _update_badge(self) -> None:
        """Small badge for staff: agent unreachable, or the center unreachable."""
        if not self.link_up:
            self.badge_text = texts.LINK_DOWN_BADGE
        elif self.status is not None and not self.status.online:
            self.badge_text = texts.OFFLINE_BADGE
        else:
            self.badge_text = ""

    def on_tap(self, result: TapResult) -> None:
        """Show a tap result (already recorded by the agent) and play its sound."""
        if not self.started:
            return
        shown = texts.present(result)
        self.result = result
        settings = self.settings
        if shown.screen == "success":
            screen = self.screen("success")
            screen.headline, screen.name_text = shown.headline, shown.name
            screen.detail, screen.ticket = shown.detail, shown.ticket
            timeout = settings.success_s
        elif shown.screen == "choose":
            screen = self.screen("choose")
            screen.headline, screen.name_text = shown.headline, shown.name
            self._fill_choices(result.choices)
            timeout = settings.choose_s
        else:
            screen = self.screen(shown.screen)
            screen.headline, screen.name_text, screen.detail = (
                shown.headline,
                shown.name,
                shown.detail,
            )
            screen.can_override = shown.can_override and self.staff_enabled
            if shown.screen == "full":
                screen.can_take = result.next_sitting is not None
            timeout = settings.already_s if shown.screen == "already" else settings.refused_s
        self.sounds.play(shown.sound)
        self.voice.say(shown)
        self.results_shown += 1
        self.arrival_times[self.results_shown] = time.perf_counter()
        self.arrival_times.pop(self.results_shown - 1000, None)
        self.show(shown.screen, timeout)

    # -- member actions ---------------------------------------------------------------------

    def _fill_choices(self, choices: tuple[ProgramChoice, ...]) -> None:
        """One large button per class on now."""
        box = self.screen("choose").ids.choices
        box.clear_widgets()
        # Two fit one above the other at full width; more go in two columns.
        box.cols = 1 if len(choices) <= 2 else 2
        for choice in choices:
            label = choice.name + (f" · {choice.place}" if choice.place else "")
            button = Factory.ChoiceButton(text=label)
            button.bind(on_release=lambda _b, c=choice: self.choose(c.program_id))
            box.add_widget(button)

    def choose(self, program_id: str) -> None:
        """The member picked a class: ask the agent to check them in."""
        result = self.result
        if result is None or result.member_ref is None:
            return
        self.sounds.play("key")
        self._spawn(
            self._send(self.link.choose(result.member_ref, program_id, method=result.method))
        )

    async def _send(self, request: Coroutine[Any, Any, Any]) -> None:
        """Send a command; its result arrives as a push. A lost link shows the badge."""
        try:
            await request
        except LinkError:
            self.sounds.play("refused")
            self.go_idle()

    # -- staff ------------------------------------------------------------------------------

    def ask_pin(self, then: Callable[[], None]) -> None:
        """Show the PIN keypad; run `then` after a correct PIN."""
        if not self.staff_enabled:
            return
        self._pin_action = then
        self._pin_entry = ""
        pin = self.screen("pin")
        pin.dots = ""
        pin.message = "직원 PIN을 입력해 주세요"
        self.show("pin", self.settings.staff_idle_s)

    def open_staff_menu(self) -> None:
        """Staff button on the idle screen."""
        self.ask_pin(lambda: self.show("staff"))

    def staff_override(self) -> None:
        """'직원 확인' on a refusal: after the PIN, let the member in and issue the ticket."""
        result = self.result
        if result is None or result.member_ref is None or result.program_id is None:
            return
        member, program = result.member_ref, result.program_id
        self.ask_pin(lambda: self._ask_reason(member, program))

    def _ask_reason(self, member_ref: str, program_id: str) -> None:
        """After the PIN: staff pick why the member is let in; that is recorded with the event."""
        box = self.screen("reason").ids.reasons
        box.clear_widgets()
        for reason in texts.OVERRIDE_REASONS:
            button = Factory.BigButton(text=reason, size_hint_y=1)
            button.bind(
                on_release=lambda _b, r=reason: self._spawn(
                    self._send(self.link.override(member_ref, program_id, r))
                )
            )
            box.add_widget(button)
        self.show("reason", self.settings.staff_idle_s)

    def pin_key(self, key: str) -> None:
        """A keypad press: a digit, 'back' or 'ok'."""
        pin = self.screen("pin")
        self.sounds.play("key")
        if key == "back":
            self._pin_entry = self._pin_entry[:-1]
        elif key == "ok":
            self._check_pin()
            return
        elif len(self._pin_entry) < 12:
            self._pin_entry += key
        pin.dots = "●" * len(self._pin_entry)
        self.show("pin", self.settings.staff_idle_s)

    def _check_pin(self) -> None:
        """Verify the PIN; lock the keypad for a minute after repeated failures."""
        pin = self.screen("pin")
        entry, self._pin_entry = self._pin_entry, ""
        pin.dots = ""
        if time.monotonic() < self._pin_locked_until:
            pin.message = "잠시 후 다시 시도해 주세요"
            return
        self._spawn(self._verify_pin(entry))

    async def _verify_pin(self, entry: str) -> None:
        """Check the PIN off the UI thread (PBKDF2 takes a noticeable moment on a Pi)."""
        pin = self.screen("pin")
        correct = await asyncio.to_thread(verify_pin, entry, self.settings.staff_pin_hash)
        if self.manager.current != "pin":
            return  # a member's tap or the timeout took the screen meanwhile
        if correct:
            self._pin_failures = 0
            action, self._pin_action = self._pin_action, None
            if action is not None:
                action()
            return
        self._pin_failures += 1
        if self._pin_failures >= PIN_MAX_TRIES:
            self._pin_failures = 0
            self._pin_locked_until = time.monotonic() + PIN_LOCK_S
            pin.message = "PIN이 여러 번 틀렸습니다. 1분 후 다시 시도해 주세요"
        else:
            pin.message = "PIN이 맞지 않습니다. 다시 입력해 주세요"
        self.sounds.play("refused")

    def take_next_sitting(self) -> None:
        """The member takes the ticket for the next sitting offered on the full screen."""
        result = self.result
        if result is None or result.member_ref is None or result.program_id is None:
            return
        if result.next_sitting is None:
            return
        self.sounds.play("key")
        request = self.link.next_sitting(
            result.member_ref, result.program_id, result.next_sitting, method=result.method
        )
        self._spawn(self._send(request))

    def show_voice(self) -> None:
        """Staff open the voice and text settings."""
        self._update_voice_screen()
        self.show("voice", self.settings.staff_idle_s)

    def set_voice(self, *, volume: int = 0, speed: int = 0) -> None:
        """Staff make the voice louder or softer, faster or slower; it says a sample."""
        current = self.voice.settings
        self.voice.settings = current.model_copy(
            update={
                "volume": min(max(current.volume + volume, 0), 200),
                "speed": min(max(current.speed + speed, 80), 300),
            }
        )
        self._update_voice_screen()
        self.voice.say(texts.present_sample())

    def toggle_earphone(self) -> None:
        """Staff switch the voice to the earphone jack only, or back to the speaker."""
        current = self.voice.settings
        self.voice.settings = current.model_copy(update={"earphone": not current.earphone})
        self._update_voice_screen()

    def toggle_large_text(self) -> None:
        """Staff switch the members' screens between normal and 200% text."""
        self.text_scale = 1.0 if self.text_scale > 1 else 2.0
        self._update_voice_screen()

    def _update_voice_screen(self) -> None:
        """Show the voice settings as they are now."""
        screen = self.screen("voice")
        current = self.voice.settings
        screen.earphone = current.earphone
        where = "이어폰" if current.earphone else "스피커"
        screen.state_text = (
            f"소리 {current.volume} · 빠르기 {current.speed} · {where}"
            f" · 글자 {int(self.text_scale * 100)}%"
        )

    def toggle_sound(self) -> None:
        """Staff silence or restore the sounds."""
        self.sound_on = not self.sound_on
        self.sounds.enabled = self.sound_on

    def start_visitor(self) -> None:
        """Begin registering a one-off visitor."""
        first = self.screen("visitor")
        first.gender = first.age_band = ""
        second = self.screen("visitor_place")
        second.neighbourhood = second.purpose = second.message = ""
        self.show("visitor")

    def _fill_visitor_options(self, root: KioskRoot) -> None:
        """Age bands, neighbourhoods and purposes as large buttons (no typing at a kiosk)."""
        manager = root.ids.sm
        first = manager.get_screen("visitor")
        for band in reversed(AGE_BANDS):  # oldest first: most visitors are seniors
            button = Factory.OptionButton(text=band)
            button.bind(on_release=lambda _b, v=band: setattr(first, "age_band", v))
            button.bind(on_release=lambda _b: self.sounds.play("key"))
            first.bind(age_band=lambda _s, v, b=button: setattr(b, "selected", b.text == v))
            first.ids.ages.add_widget(button)
        second = manager.get_screen("visitor_place")
        for field, box, options in (
            ("neighbourhood", second.ids.places, self.settings.neighbourhoods),
            ("purpose", second.ids.purposes, self.settings.visit_purposes),
        ):
            for option in options:
                button = Factory.OptionButton(text=option)
                button.bind(on_release=lambda _b, f=field, v=option: setattr(second, f, v))
                second.bind(**{field: lambda _s, v, b=button: setattr(b, "selected", b.text == v)})
                box.add_widget(button)

    def register_visitor(self) -> None:
        """Send the visitor's four fields to the agent and show the issued code."""
        first, second = self.screen("visitor"), self.screen("visitor_place")
        if not (first.gender and first.age_band and second.neighbourhood and second.purpose):
            second.message = "모든 항목을 골라 주세요"
            return
        self._spawn(
            self._register_visitor(
                Gender(first.gender), first.age_band, second.neighbourhood, second.purpose
            )
        )

    async def _register_visitor(
        self, gender: Gender, age_band: str, neighbourhood: str, purpose: str
    ) -> None:
        """Ask the agent for a personal ID code (the visit is recorded there)."""
        try:
            info = await self.link.register_visitor(
                gender=gender, age_band=age_band, neighbourhood=neighbourhood, purpose=purpose
            )
        except LinkError as exc:
            self.screen("visitor_place").message = f"등록하지 못했습니다: {exc}"
            return
        code = self.screen("visitor_code")
        code.code = info.visitor_code
        gender_ko = "남" if info.gender is Gender.MALE else "여"
        code.summary = f"{gender_ko} · {info.age_band}세 · {info.neighbourhood} · {info.purpose}"
        self.sounds.play("success")
        self.show("visitor_code")

    def show_counts(self) -> None:
        """Today's counts from the agent's store."""
        self._spawn(self._show_counts())

    async def _show_counts(self) -> None:
        """Fetch and show today's accepted check-ins per program."""
        try:
            day, counts = await self.link.counts()
        except LinkError:
            return
        self._fill_counts(day, counts)
        self.show("counts")

    def _fill_counts(self, day: str, counts: list[ProgramCount]) -> None:
        """One row per program: name and count."""
        screen = self.screen("counts")
        screen.date_text = f"오늘 현황 ({day})"
        table = screen.ids.rows
        table.clear_widgets()
        for row in counts:
            table.add_widget(Factory.CountCell(text=row.name, halign="left"))
            left = "" if row.seats_left is None else f" · 남은 자리 {row.seats_left}"
            # Served twice while the kiosks could not talk: staff check these members.
            twice = f" · 두 번 제공 {row.double_serves}" if row.double_serves else ""
            table.add_widget(Factory.CountCell(text=f"{row.count}명{left}{twice}", halign="right"))
        screen.total_text = f"합계 {sum(r.count for r in counts)}명"

    # -- for tests and screenshots ----------------------------------------------------------

    def visible_texts(self) -> list[str]:
        """Every non-empty text on the current screen and the badge."""
        found = [
            w.text
            for w in self.manager.current_screen.walk()
            if isinstance(w, Label) and w.text and is_shown(w)
        ]
        if self.badge_text:
            found.append(self.badge_text)
        return found
