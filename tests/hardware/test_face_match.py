"""Face match on real faces that ship in scikit-image (tests/hardware/faces.py): enrol, match,
tolerance, consent. Identifying a member through the agent is in tests/edge_agent/test_face.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from hardware.face.encoder import DlibFaceEncoder, RgbImage
from hardware.face.enrol import enrol_member, withdraw_member
from hardware.face.matcher import DEFAULT_TOLERANCE, FaceMatcher
from hardware.face.store import ConsentRequiredError, FaceTemplateStore
from tests.hardware.faces import (
    AT,
    astronaut,
    consented_store,
    enrolled_matcher,
    lfw_encoding,
    variant_encoding,
    variants,
)


@pytest.fixture
def store(tmp_path: Path) -> FaceTemplateStore:
    """An encrypted template store in which M4 (the astronaut) has consented."""
    return consented_store(tmp_path)


@pytest.fixture
def matcher(store: FaceTemplateStore) -> FaceMatcher:
    """The astronaut enrolled as M4 among 12 other real faces."""
    return enrolled_matcher(store)


def test_same_person_in_other_conditions_is_the_best_match(matcher: FaceMatcher) -> None:
    """Mirrored, dim and smaller photos of the enrolled member all match her, clearly."""
    for name in variants():
        encoding = variant_encoding(name)
        assert encoding is not None, f"no face found when {name}"
        found = matcher.match(encoding)
        assert found is not None, f"not matched when {name}"
        assert found.member_ref == "M4", name
        assert found.distance < 0.3, name
        assert found.runner_up_distance is not None
        assert found.runner_up_distance > 0.6


def test_strangers_are_not_matched(matcher: FaceMatcher) -> None:
    """Faces of people never enrolled are further than the tolerance from everyone."""
    for index in range(61, 100, 8):  # odd indexes: none of them enrolled
        found = matcher.best(lfw_encoding(index))
        assert found is not None
        assert found.distance > DEFAULT_TOLERANCE, index
        assert not found.matched


def test_tolerance_is_tunable(matcher: FaceMatcher) -> None:
    """A stricter tolerance turns the dim-light photo from a match into a miss."""
    encoding = variant_encoding("dim light")
    assert encoding is not None
    found = matcher.best(encoding)
    assert found is not None
    assert found.matched
    assert matcher.match(encoding, tolerance=found.distance - 0.01) is None


def test_withdrawal_removes_the_template_from_disk_and_matcher(
    store: FaceTemplateStore, matcher: FaceMatcher
) -> None:
    """After withdrawal her face is neither stored nor matched, from that moment on."""
    assert withdraw_member(store, matcher, "M4", at=AT)
    assert not store.has_template("M4")
    encoding = variant_encoding("mirrored")
    assert encoding is not None
    found = matcher.match(encoding)
    assert found is None or found.member_ref != "M4"


def test_no_descriptor_is_computed_without_consent(store: FaceTemplateStore) -> None:
    """Enrolment refuses before looking at the photo of a member without consent."""

    class Spy(DlibFaceEncoder):
        """An encoder that notes whether it was asked to look at a photo."""

        looked = False

        def faces(self, image: RgbImage) -> list:  # type: ignore[type-arg]
            """Note the call, then detect as usual."""
            Spy.looked = True
            return super().faces(image)

    with pytest.raises(ConsentRequiredError):
        enrol_member(store, None, Spy(), "M9", [astronaut()], at=AT)
    assert not Spy.looked
    assert not store.has_template("M9")
