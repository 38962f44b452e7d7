"""The kiosk's face templates come from its roster: opened with the facility's key, a template
that does not open dropped and reported in the heartbeat, a removed one forgotten; the camera
is looked at only when someone stands in front."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from broker.face import face_key, seal, to_text
from broker.keys import key_id
from broker.models import FaceTemplate, RosterMember
from edge_agent.agent import EdgeAgent
from edge_agent.face import FaceWatcher, Presence, RosterFaces
from hardware.face.camera import StillCamera
from hardware.face.matcher import FaceMatch, FaceMatcher
from tests.edge_agent.meal_hall import KEY, make_roster
from tests.hardware.faces import ENCODER, variant_encoding, variants

OTHER_KEY = b"5d0e7c1b93a84f26d1c07e8a3b5f9246"  # another facility's


def template(ref: str, vector: np.ndarray, key: bytes = KEY.encode()) -> FaceTemplate:
    """A member's template sealed as the center seals it for a facility's key."""
    sealed = seal(face_key(key), ref, np.asarray(vector, "<f8").tobytes())
    return FaceTemplate(key_id=key_id(key), sealed=to_text(sealed))


async def load(agent: EdgeAgent, faces: dict[str, FaceTemplate | None], version: str) -> None:
    """Install the meal-hall roster with these templates."""
    roster = make_roster()
    members: list[RosterMember] = [
        m.model_copy(update={"face_template": faces.get(m.member_ref)}) for m in roster.members
    ]
    await agent.load_roster(roster.model_copy(update={"members": members, "version": version}))


async def test_templates_that_do_not_open_are_dropped_and_reported(meal_agent: EdgeAgent) -> None:
    """A template under another facility's key or another member's is never used."""
    her = variant_encoding("mirrored")
    assert her is not None
    own = template("M4", her)
    await load(
        meal_agent,
        {
            "M4": own,
            "M1": template("M1", her, OTHER_KEY),  # another facility's key
            "M2": own.model_copy(),  # M4's blob on M2's row: bound to M4
            "M3": FaceTemplate(key_id="0123456789abcdef", sealed=own.sealed),  # unknown key
        },
        "v2",
    )
    matcher = FaceMatcher()
    faces = RosterFaces(meal_agent, matcher)
    assert await faces.refresh()
    assert not await faces.refresh()  # nothing changed: not reloaded
    assert len(matcher) == 1
    found = matcher.match(her)
    assert found is not None
    assert found.member_ref == "M4"
    health = await meal_agent.health()
    assert health.face_templates == 1
    assert health.face_unreadable == ["M1", "M2", "M3"]

    await load(meal_agent, {}, "v3")  # withdrawn at the center: the next roster has none
    assert await faces.refresh()
    assert len(matcher) == 0
    assert (await meal_agent.health()).face_unreadable is None


async def test_the_watcher_looks_only_when_someone_stands_in_front(meal_agent: EdgeAgent) -> None:
    """A still picture is described once; a small face far behind asks nobody."""
    her = variant_encoding("mirrored")
    assert her is not None
    await load(meal_agent, {"M4": template("M4", her)}, "v2")
    asked: list[FaceMatch] = []

    async def confirm(match: FaceMatch) -> bool:
        """Say no, remembering the question."""
        asked.append(match)
        return False

    frame = variants()["mirrored"]
    camera = StillCamera([frame, frame, frame])
    watcher = FaceWatcher(meal_agent, camera, ENCODER, FaceMatcher(), confirm=confirm)
    first = await watcher.look()
    assert first is not None
    assert first.match is not None
    assert first.match.member_ref == "M4"
    assert first.result is None  # she said no: nothing recorded
    assert await watcher.look() is None  # the same picture: nobody new, nothing described
    assert watcher.looks == 1
    assert len(asked) == 1
    far = FaceWatcher(
        meal_agent, StillCamera([frame]), ENCODER, FaceMatcher(), confirm=confirm, min_face_px=200
    )
    assert await far.look() is None  # her face is 90 px: someone passing, not at the kiosk
    assert len(asked) == 1
    assert await meal_agent.store.all_events() == []


def test_presence_is_a_change_of_the_picture() -> None:
    """The first frame and a changed frame count; the same frame again does not."""
    presence = Presence()
    empty = np.zeros((480, 640, 3), np.uint8)
    assert presence.changed(empty)
    assert not presence.changed(empty.copy())
    person = empty.copy()
    person[100:400, 200:440] = 180
    assert presence.changed(person)
