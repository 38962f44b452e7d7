"""The kiosk's face question: "김*수 님이 맞으세요?" with large 예 / 아니요 buttons.

The agent asks over the link when a face matched (edge_agent/link.py, event "face"); nothing
is recorded until "예" is touched within the time. "아니요" or no answer records nothing and
the card still works all along. Mixed into `KioskApp`, which owns the widgets.
"""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty
from kivy.uix.screenmanager import Screen

FACE_HINT = "맞으면 '예'를 눌러 주세요. 아니면 '아니요' 또는 카드를 대 주세요."


class FaceConfirmScreen(Screen):  # type: ignore[misc]
    """The masked name of the member the camera matched, and 예 / 아니요."""

    question = StringProperty("")
    hint = StringProperty(FACE_HINT)


class FaceConfirmMixin:
    """KioskApp's half of the face question (its link, screens and sounds are the app's)."""

    face_token: str | None = None
    face_questions = 0  # questions shown so far (tests and the benchmark read it)
    face_shown_at: dict[int, float]

    def on_face(self, question: dict[str, Any]) -> None:
        """The agent asks whether the person in front is this member."""
        app: Any = self
        if not app.started:
            return
        from kiosk_app.app import STAFF_SCREENS  # the app's own list (imported late: a cycle)

        if app.manager.current in STAFF_SCREENS | {"choose"}:
            # Staff at work, or a member choosing a class: never interrupt; say no at once so
            # the agent is not left waiting (nothing is recorded).
            app._spawn(app._send(app.link.face_answer(str(question["token"]), yes=False)))
            return
        self.face_token = str(question["token"])
        screen = app.screen("face_confirm")
        screen.question = f"{question['display_name']} 님이 맞으세요?"
        self.face_questions += 1
        app.sounds.play("choose")
        # A little before the agent gives up, so a late touch never looks accepted.
        app.show("face_confirm", max(float(question.get("timeout_s", 10.0)) - 0.5, 1.0))

    def answer_face(self, yes: bool) -> None:
        """예 or 아니요: tell the agent; after 예 its tap result replaces this screen."""
        app: Any = self
        token, self.face_token = self.face_token, None
        if token is None:
            return
        app.sounds.play("key")
        app._spawn(app._send(app.link.face_answer(token, yes=yes)))
        if not yes:
            app.go_idle()
