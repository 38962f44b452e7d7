"""The Korean voice: one sentence per outcome, synthesised by espeak-ng to real speech."""

from __future__ import annotations

import array
import shutil
import wave
from datetime import time
from pathlib import Path

import pytest

from broker.vocabulary import Method, Outcome, ProgramKind
from edge_agent.models import ProgramChoice, TapResult
from kiosk_app import texts
from kiosk_app.voice import Voice, VoiceSettings, spoken, synthesize

MEMBER = {"member_ref": "M001", "display_name": "김*수"}
MEAL = {"program_id": "MEAL", "program_name": "경로식당 점심", "program_kind": ProgramKind.MEAL}


def _results() -> dict[Outcome | None, TapResult]:
    """A result of every outcome (and a pending choice)."""

    def result(outcome: Outcome | None, **kw: object) -> TapResult:
        """A card tap's result."""
        return TapResult(outcome=outcome, method=Method.CARD, **kw)  # type: ignore[arg-type]

    return {
        Outcome.ACCEPTED: result(Outcome.ACCEPTED, ticket_no=57, **MEMBER, **MEAL),
        Outcome.ALREADY_SERVED: result(Outcome.ALREADY_SERVED, ticket_no=3, **MEMBER, **MEAL),
        Outcome.UNKNOWN_CREDENTIAL: result(Outcome.UNKNOWN_CREDENTIAL),
        Outcome.INACTIVE_MEMBER: result(Outcome.INACTIVE_MEMBER, **MEMBER, **MEAL),
        Outcome.NOT_ENROLLED: result(Outcome.NOT_ENROLLED, **MEMBER, **MEAL),
        Outcome.NO_SERVICE: result(Outcome.NO_SERVICE, **MEMBER),
        Outcome.SITTING_FULL: result(
            Outcome.SITTING_FULL, **MEMBER, **MEAL, next_sitting=time(12, 30)
        ),
        None: result(None, choices=(ProgramChoice("A", "노래교실", None),), **MEMBER),
    }


def _seconds(path: Path) -> tuple[float, float]:
    """Duration of a WAV file and the share of its samples that are not near silence."""
    with wave.open(str(path)) as wav:
        assert wav.getsampwidth() == 2
        frames = wav.readframes(wav.getnframes())
        samples = array.array("h", frames)
        duration = wav.getnframes() / wav.getframerate()
    loud = sum(1 for s in samples if abs(s) > 500) / max(len(samples), 1)
    return duration, loud


def test_every_outcome_has_a_korean_sentence() -> None:
    """The served meal says the name (unmasked star), the greeting and the ticket."""
    cases = _results()
    assert set(cases) == {*Outcome, None}
    sentences = {k: spoken(texts.present(r)) for k, r in cases.items()}
    assert sentences[Outcome.ACCEPTED] == "김 수 님, 맛있게 드세요. 번호표 57번."
    for sentence in sentences.values():
        assert any("\uac00" <= ch <= "\ud7a3" for ch in sentence)
        assert "*" not in sentence
    assert "다음 시간(12시 30분) 번호표를 드릴까요." in sentences[Outcome.SITTING_FULL]
    assert "직원" in sentences[Outcome.UNKNOWN_CREDENTIAL]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng")
def test_speech_is_synthesised_for_every_outcome_at_the_speed_staff_set(tmp_path: Path) -> None:
    """Real speech files: non-empty, of a plausible length, slower when staff slow it down."""
    for outcome, result in _results().items():
        text = spoken(texts.present(result))
        wav = synthesize(text, tmp_path / f"{outcome}.wav", volume=120, speed=140)
        duration, loud = _seconds(wav)
        # Korean at 140 words a minute: about 0.1 s a syllable, with pauses.
        syllables = sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3")
        assert 0.04 * syllables < duration < 0.4 * syllables + 2, (outcome, duration)
        assert loud > 0.2, f"{outcome}: mostly silence"
    sentence = spoken(texts.present(_results()[Outcome.ACCEPTED]))
    slow, _ = _seconds(synthesize(sentence, tmp_path / "slow.wav", volume=120, speed=90))
    fast, _ = _seconds(synthesize(sentence, tmp_path / "fast.wav", volume=120, speed=220))
    assert slow > 1.5 * fast
    soft = synthesize(sentence, tmp_path / "soft.wav", volume=30, speed=140)
    loud_file = synthesize(sentence, tmp_path / "loud.wav", volume=180, speed=140)
    assert _peak(loud_file) > 2 * _peak(soft)


def _peak(path: Path) -> int:
    """The loudest sample of a WAV file."""
    with wave.open(str(path)) as wav:
        return int(max(abs(s) for s in array.array("h", wav.readframes(wav.getnframes()))))


def test_a_kiosk_without_espeak_stays_silent_and_records_what_it_would_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No speech engine: nothing breaks, the sentence is still known (and shown on screen)."""
    monkeypatch.setattr("kiosk_app.voice.espeak", lambda: None)
    voice = Voice(VoiceSettings(earphone=True), directory=tmp_path)
    voice.say(texts.present(_results()[Outcome.ACCEPTED]))
    assert voice.said == ["김 수 님, 맛있게 드세요. 번호표 57번."]
    assert not (tmp_path / "voice").exists()
