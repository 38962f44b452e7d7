"""The shared vocabulary: one rule per id, one writer of the batch envelope, secrets' rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from broker.config import CredentialKey, MqttSettings, check_secret
from broker.ids import uuid7
from broker.models import AttendanceBatch, AttendanceEvent, BatchHeader, encode_batch
from broker.vocabulary import AGE_BANDS, AgeBand, EntityId, Method, Outcome

BASE = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _event(n: int, *, ticket: int | None) -> AttendanceEvent:
    """The n-th accepted meal of a lunch."""
    at = BASE + timedelta(milliseconds=137 * n)
    return AttendanceEvent(
        event_id=uuid7(at),
        occurred_at=at,
        service_date=date(2026, 11, 20),
        program_id="B-MEAL",
        member_ref=f"B-M{n:05d}",
        method=Method.CARD,
        outcome=Outcome.ACCEPTED,
        ticket_no=ticket,
    )


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=60),
    tickets=st.booleans(),
    facility=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z"),
)
def test_encoded_batch_is_byte_for_byte_the_models_document(
    count: int, tickets: bool, facility: str
) -> None:
    """The publisher's fast envelope equals what the contract's model writes, for any batch."""
    events = [_event(n, ticket=n + 1 if tickets else None) for n in range(count)]
    header = BatchHeader(facility_id=facility, device_id="meal-1", sent_at=BASE)
    fast = encode_batch(header, [e.model_dump_json(exclude_none=True) for e in events])
    model = AttendanceBatch(facility_id=facility, device_id="meal-1", sent_at=BASE, events=events)
    assert fast == model.model_dump_json(exclude_none=True)
    assert AttendanceBatch.model_validate_json(fast) == model


def test_encoded_batch_refuses_an_empty_or_oversized_batch() -> None:
    """The envelope writer keeps the contract's bounds."""
    header = BatchHeader(facility_id="B", device_id="meal-1", sent_at=BASE)
    with pytest.raises(ValueError, match="1 to 500"):
        encode_batch(header, [])
    one = _event(0, ticket=None).model_dump_json(exclude_none=True)
    with pytest.raises(ValueError, match="not 501"):
        encode_batch(header, [one] * 501)


def test_batch_header_validates_what_it_writes() -> None:
    """A device id that could not be a topic level never makes it into an envelope."""
    with pytest.raises(ValidationError):
        BatchHeader(facility_id="B", device_id="meal/1", sent_at=BASE)
    with pytest.raises(ValidationError):
        BatchHeader(facility_id="B", device_id="meal-1", sent_at=BASE.replace(tzinfo=None))


def test_one_id_rule_for_every_part() -> None:
    """An id the registry would accept is an id every kiosk message accepts, and vice versa."""
    ids = TypeAdapter(EntityId)
    assert ids.validate_python("B-MEAL") == "B-MEAL"
    for bad in ("x" * 33, "-leading", "a/b", "a+b", ""):
        with pytest.raises(ValidationError):
            ids.validate_python(bad)


def test_age_bands_are_one_closed_list() -> None:
    """Only the agreed bands pass."""
    bands = TypeAdapter(AgeBand)
    assert [bands.validate_python(b) for b in AGE_BANDS] == list(AGE_BANDS)
    with pytest.raises(ValidationError, match="age_band must be one of"):
        bands.validate_python("70-79")


class _Keyed(BaseModel):
    """A settings-like model holding a credential key."""

    key: CredentialKey


@pytest.mark.parametrize(
    "weak",
    ["short", "changeme-changeme-1", "password1234567890", "k" * 32, "0000000000000000", ""],
)
def test_weak_credential_keys_are_refused(weak: str) -> None:
    """Placeholders, one repeated character and short keys never reach the hash."""
    with pytest.raises(ValidationError):
        _Keyed(key=SecretStr(weak))


def test_a_random_key_passes_and_stays_secret() -> None:
    """A provisioned key is accepted and does not show in reprs."""
    model = _Keyed(key=SecretStr("0f9c2e7a51b84d3c9e6a1f20b7d45c8e"))
    assert "0f9c" not in repr(model)
    assert check_secret("Zx9-w2Lq-8sTv-Pm4r", what="x", min_bytes=16) == "Zx9-w2Lq-8sTv-Pm4r"


def test_mqtt_settings_refuse_a_short_password() -> None:
    """Broker passwords are generated, never typed: short ones are refused by name."""
    with pytest.raises(ValidationError, match="password must be a random secret"):
        MqttSettings(username="ingest", password=SecretStr("guest"))
    ok = MqttSettings(username="ingest", password=SecretStr("q8Jx2mVt7Lr4Zp1Nk6Wb"))
    assert ok.password_value() == "q8Jx2mVt7Lr4Zp1Nk6Wb"
