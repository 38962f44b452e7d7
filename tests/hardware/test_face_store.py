"""Face templates at rest: encrypted, consent-gated, deleted on withdrawal; the 1:N matcher."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from broker.face import TemplateUnreadable
from hardware.face.crypto import TemplateCipher, generate_key, load_key
from hardware.face.matcher import FaceMatcher
from hardware.face.store import ConsentRequiredError, FaceConsent, FaceTemplateStore

AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
RNG = np.random.default_rng(3)


def vector() -> np.ndarray:
    """A random 128-d descriptor."""
    return RNG.normal(0.0, 0.05, 128)


def consent(ref: str) -> FaceConsent:
    """A consent as staff record it."""
    return FaceConsent(ref, f"FC-{ref}", AT, recorded_by="staff-07")


@pytest.fixture
def store(tmp_path: Path) -> FaceTemplateStore:
    """A fresh store with a random key."""
    return FaceTemplateStore(tmp_path / "faces.sqlite3", TemplateCipher(generate_key()))


def test_cipher_round_trip_and_binding_to_the_member() -> None:
    """A sealed template opens only with its key and for its member; tampering is detected."""
    cipher = TemplateCipher(generate_key())
    original = vector()
    sealed = cipher.encrypt("M1", original)
    assert original.tobytes() not in sealed
    assert np.array_equal(cipher.decrypt("M1", sealed), original)
    with pytest.raises(TemplateUnreadable):
        cipher.decrypt("M2", sealed)  # copied onto another member's row
    with pytest.raises(TemplateUnreadable):
        TemplateCipher(generate_key()).decrypt("M1", sealed)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(TemplateUnreadable):
        cipher.decrypt("M1", flipped)
    with pytest.raises(ValueError, match="128 values"):
        cipher.encrypt("M1", np.zeros(64))


def test_key_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is provisioned, never built in; a wrong length is refused."""
    key = generate_key()
    monkeypatch.delenv("WELFARE_FACE_KEY", raising=False)
    with pytest.raises(LookupError):
        load_key()
    keyfile = tmp_path / "face.key"
    keyfile.write_text(base64.urlsafe_b64encode(key).decode() + "\n")
    assert load_key(path=keyfile) == key
    monkeypatch.setenv("WELFARE_FACE_KEY", base64.urlsafe_b64encode(b"short").decode())
    with pytest.raises(ValueError, match="32 bytes"):
        load_key(path=keyfile)


def test_enrolment_needs_an_active_consent(store: FaceTemplateStore) -> None:
    """No consent, no template; after consent the template is stored and reads back."""
    face = vector()
    with pytest.raises(ConsentRequiredError):
        store.enrol("M1", face, at=AT)
    assert store.count() == 0
    store.record_consent(consent("M1"))
    store.enrol("M1", face, at=AT)
    [(ref, back)] = list(store.templates())
    assert ref == "M1"
    assert np.array_equal(back, face)


def test_template_is_not_stored_in_clear(store: FaceTemplateStore, tmp_path: Path) -> None:
    """The database file holds no plain descriptor bytes."""
    face = vector()
    store.record_consent(consent("M1"))
    store.enrol("M1", face, at=AT)
    store.close()
    raw = (tmp_path / "faces.sqlite3").read_bytes()
    assert face.astype("<f8").tobytes() not in raw
    assert face.astype("<f8").tobytes()[:32] not in raw


def test_withdrawal_deletes_the_template_from_disk(
    store: FaceTemplateStore, tmp_path: Path
) -> None:
    """Withdrawal removes the template (its bytes too), keeps the consent record, blocks enrol."""
    store.record_consent(consent("M1"))
    store.enrol("M1", vector(), at=AT)
    sealed = store.sealed("M1")
    assert sealed is not None
    assert store.withdraw("M1", at=AT) is True
    assert not store.has_template("M1")
    withdrawn = store.consent("M1")
    assert withdrawn is not None
    assert withdrawn.withdrawn_at == AT
    assert not withdrawn.active
    with pytest.raises(ConsentRequiredError):
        store.enrol("M1", vector(), at=AT)
    store.close()
    # secure_delete: the sealed blob is overwritten, not left in a free page
    assert sealed not in (tmp_path / "faces.sqlite3").read_bytes()
    assert sealed[1:13] not in (tmp_path / "faces.sqlite3").read_bytes()  # not even the nonce


def test_renewed_consent_allows_enrolment_again(store: FaceTemplateStore) -> None:
    """A member who withdrew and later consents again can be enrolled again."""
    store.record_consent(consent("M1"))
    store.withdraw("M1", at=AT)
    store.record_consent(FaceConsent("M1", "FC-M1-2", AT, recorded_by="staff-02"))
    store.enrol("M1", vector(), at=AT)
    assert store.count() == 1
    renewed = store.consent("M1")
    assert renewed is not None
    assert renewed.active
    assert renewed.consent_id == "FC-M1-2"


def test_matcher_distances_are_euclidean() -> None:
    """The fast formula gives the plain norm's distances (face_recognition's) to 1e-5."""
    templates = [(f"M{i}", vector()) for i in range(50)]
    matcher = FaceMatcher()
    matcher.load(templates)
    probe = vector()
    expected = np.linalg.norm(np.vstack([v for _, v in templates]) - probe, axis=1)
    assert np.allclose(matcher.distances(probe), expected, rtol=0, atol=1e-5)


def test_matcher_best_match_tolerance_and_ambiguity() -> None:
    """Best match with its distance; no match beyond tolerance or between two near members."""
    base = np.zeros(128)
    near = base.copy()
    near[0] = 0.3
    far = base.copy()
    far[0] = 0.9
    matcher = FaceMatcher(tolerance=0.45, margin=0.04)
    assert matcher.best(base) is None  # nobody enrolled
    matcher.load([("NEAR", near), ("FAR", far)])
    found = matcher.best(base)
    assert found is not None
    assert (found.member_ref, round(found.distance, 6), found.matched) == ("NEAR", 0.3, True)
    assert found.runner_up_distance == pytest.approx(0.9)
    assert matcher.match(base, tolerance=0.25) is None  # tunable per call
    twin = base.copy()
    twin[1] = 0.31
    matcher.add("TWIN", twin)  # 0.30 vs 0.31: too close to tell apart
    assert matcher.match(base) is None
    assert matcher.remove("TWIN")
    assert not matcher.remove("TWIN")
    found = matcher.match(base)
    assert found is not None
    assert found.member_ref == "NEAR"
    assert len(matcher) == 2
