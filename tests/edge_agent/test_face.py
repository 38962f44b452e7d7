"""Face identification through the agent on real faces (tests/hardware/faces.py): one `face`
attendance for a clear match, nothing for a stranger, an empty frame, a veto or a withdrawal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from skimage import data

from broker.vocabulary import Method, Outcome
from edge_agent.agent import EdgeAgent
from edge_agent.face import FaceIdentifier
from hardware.face.camera import StillCamera
from hardware.face.enrol import withdraw_member
from hardware.face.matcher import FaceMatch, FaceMatcher
from hardware.face.store import FaceTemplateStore
from tests.hardware.faces import AT, ENCODER, consented_store, enrolled_matcher, lfw_face, variants


@pytest.fixture
def store(tmp_path: Path) -> FaceTemplateStore:
    """An encrypted template store in which M4 (the astronaut) has consented."""
    return consented_store(tmp_path)


@pytest.fixture
def matcher(store: FaceTemplateStore) -> FaceMatcher:
    """The astronaut enrolled as M4 among 12 other real faces."""
    return enrolled_matcher(store)


async def test_identification_records_one_face_attendance(
    meal_agent: EdgeAgent, store: FaceTemplateStore, matcher: FaceMatcher
) -> None:
    """Her face checks her in (method face); a stranger and an empty frame record nothing."""
    camera = StillCamera(
        [
            variants()["mirrored"],
            lfw_face(99),  # a stranger
            data.coffee(),  # type: ignore[no-untyped-call]  # no face at all
        ]
    )
    identifier = FaceIdentifier(meal_agent, camera, ENCODER, matcher)
    hit = await identifier.attempt()
    stranger = await identifier.attempt()
    nobody = await identifier.attempt()

    assert hit.result is not None
    assert hit.result.outcome is Outcome.ACCEPTED
    assert hit.match is not None
    assert hit.match.member_ref == "M4"
    assert stranger.face_seen
    assert stranger.result is None
    assert not nobody.face_seen
    assert nobody.result is None
    events = await meal_agent.store.all_events()
    assert [(e.member_ref, e.method, e.outcome) for e in events] == [
        ("M4", Method.FACE, Outcome.ACCEPTED)
    ]
    assert (await meal_agent.health()).readers["camera"].kind == "camera"


async def test_confirmation_can_veto(meal_agent: EdgeAgent, matcher: FaceMatcher) -> None:
    """When the kiosk asks 'is this you?' and gets no, nothing is recorded."""
    asked: list[FaceMatch] = []

    async def say_no(match: FaceMatch) -> bool:
        """The member (or staff) answers no."""
        asked.append(match)
        return False

    camera = StillCamera([variants()["mirrored"]])
    attempt = await FaceIdentifier(meal_agent, camera, ENCODER, matcher, confirm=say_no).attempt()
    assert attempt.result is None
    assert [m.member_ref for m in asked] == ["M4"]
    assert await meal_agent.store.all_events() == []


async def test_withdrawn_consent_stops_matching_at_once(
    meal_agent: EdgeAgent, store: FaceTemplateStore, matcher: FaceMatcher
) -> None:
    """After withdrawal her face is neither stored nor matched; the card still works."""
    assert withdraw_member(store, matcher, "M4", at=AT)
    assert not store.has_template("M4")
    camera = StillCamera([variants()["mirrored"]])
    attempt = await FaceIdentifier(meal_agent, camera, ENCODER, matcher).attempt()
    assert attempt.result is None
    assert attempt.match is None or attempt.match.member_ref != "M4"
    assert await meal_agent.store.all_events() == []
