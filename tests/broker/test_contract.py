"""The wire contract: topics, models, and the examples published in docs/contract.md."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from broker.examples import examples
from broker.ids import uuid7, uuid7_time
from broker.models import (
    UPSTREAM_MODELS,
    AttendanceBatch,
    AttendanceEvent,
    DeviceConfig,
    DeviceHealth,
    DevicePresence,
    IngestAck,
    PeerServe,
    Roster,
    SyncRequest,
    mask_name,
)
from broker.topics import Channel, ingest_subscription, parse_topic, topic
from broker.vocabulary import Method, Outcome
from ingest_api.ingest.validation import DeadLetter, ParsedAttendance, parse_message

DOC = Path(__file__).parents[2] / "docs" / "contract.md"
MODELS: dict[str, type[BaseModel]] = {
    "attendance": AttendanceBatch,
    "health": DeviceHealth,
    "presence": DevicePresence,
    "ack": IngestAck,
    "ack_rejected": IngestAck,
    "roster": Roster,
    "roster_delta": Roster,
    "config": DeviceConfig,
    "sync": SyncRequest,
    "peer": PeerServe,
}


def doc_json_blocks() -> list[dict[str, object]]:
    """Every ```json block of docs/contract.md, parsed."""
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.S)]


def doc_mosquitto_pub_payload() -> tuple[str, str]:
    """Topic and payload of the mosquitto_pub example in docs/contract.md."""
    text = DOC.read_text()
    topic_name = re.search(r"-t (welfare/\S+)", text)
    payload = re.search(r"-m '(\{.*?\})'", text)
    assert topic_name, "docs/contract.md lost its mosquitto_pub topic"
    assert payload, "docs/contract.md lost its mosquitto_pub payload"
    return topic_name[1], payload[1]


def test_every_documented_example_is_current_and_valid() -> None:
    """docs/contract.md shows exactly what the models produce, in order."""
    blocks = doc_json_blocks()
    assert len(blocks) == len(MODELS)
    for block, (name, model) in zip(blocks, MODELS.items(), strict=True):
        model.model_validate(block)
        assert block == json.loads(examples()[name][1]), f"{name} example is stale"


def test_documented_mosquitto_pub_line_is_the_attendance_example() -> None:
    """The copy-paste line publishes the documented event to its documented topic."""
    topic_name, payload = doc_mosquitto_pub_payload()
    assert (topic_name, payload) == examples()["attendance"]


def test_topic_round_trip_and_rejections() -> None:
    """Topics are built and parsed symmetrically; wildcards and bad ids are refused."""
    t = topic("B", "meal-1", Channel.ATTENDANCE)
    assert t == "welfare/v1/B/meal-1/attendance"
    address = parse_topic(t)
    assert (address.facility_id, address.device_id, address.channel) == (
        "B",
        "meal-1",
        Channel.ATTENDANCE,
    )
    assert ingest_subscription(Channel.HEALTH) == "$share/ingest/welfare/v1/+/+/health"
    for bad in (
        "welfare/v1/B/meal-1",
        "welfare/v1/+/x/attendance",
        "other/v1/B/x/attendance",
        "welfare/v1/B/x/shout",
    ):
        with pytest.raises(ValueError, match=r"topic|id|channel"):
            parse_topic(bad)
    with pytest.raises(ValueError, match="invalid device"):
        topic("B", "a/b", Channel.ACK)


def _event(**kw: object) -> dict[str, object]:
    """A valid event document, with overrides."""
    at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    doc: dict[str, object] = {
        "event_id": str(uuid7(at)),
        "occurred_at": at.isoformat(),
        "service_date": "2026-11-20",
        "program_id": "B-MEAL",
        "member_ref": "B-M1",
        "method": "card",
        "outcome": "accepted",
    }
    doc.update(kw)
    return doc


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"event_id": str(uuid4())}, "UUIDv7"),
        ({"occurred_at": "2026-11-20T03:00:01+00:00"}, "timestamp inside event_id"),
        ({"occurred_at": "2026-11-20T03:00:00"}, "timezone"),
        ({"member_ref": None}, "needs member_ref"),
        ({"ticket_no": 0}, "greater than or equal to 1"),
        ({"card_uid": "04A1B2C3"}, "Extra inputs"),
        ({"method": "fingerprint"}, "Input should be"),
    ],
)
def test_invalid_events_are_rejected(override: dict[str, object], message: str) -> None:
    """Every rule of an event has a clear error."""
    with pytest.raises(ValidationError, match=message):
        AttendanceEvent.model_validate(_event(**override))


def test_uuid7_carries_its_time_and_sorts() -> None:
    """Ids made in a row sort in creation order, even within one millisecond."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [uuid7(at) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    assert {uuid7_time(i) for i in ids} == {at}


def test_names_are_masked_like_the_centers_do() -> None:
    """김민수 -> 김*수."""
    assert [mask_name(n) for n in ("김민수", "이수", "남궁민수", "김")] == [
        "김*수",
        "이*",
        "남**수",
        "김",
    ]


_times = st.datetimes(
    # hypothesis takes naive bounds and attaches the zone itself
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001
    max_value=datetime(2030, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def events(draw: st.DrawFn) -> AttendanceEvent:
    """Arbitrary valid events."""
    at = draw(_times)
    outcome = draw(st.sampled_from(Outcome))
    member = draw(st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True))
    return AttendanceEvent(
        event_id=uuid7(at),
        occurred_at=at,
        service_date=at.date(),
        program_id=draw(st.sampled_from(["B-MEAL", "A-ENG"])),
        member_ref=member,
        method=draw(st.sampled_from(Method)),
        outcome=outcome,
        ticket_no=draw(st.none() | st.integers(1, 99_999)),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(events(), min_size=1, max_size=20))
def test_valid_batches_parse_to_the_same_rows(batch_events: list[AttendanceEvent]) -> None:
    """What a device sends is what the ingest stores, field for field."""
    batch = AttendanceBatch(
        facility_id="B", device_id="k1", sent_at=datetime.now(UTC), events=batch_events
    )
    parsed = parse_message(
        "welfare/v1/B/k1/attendance",
        batch.model_dump_json().encode(),
        received_at=datetime.now(UTC),
    )
    assert isinstance(parsed, ParsedAttendance)
    assert [r.event_id for r in parsed.rows] == [e.event_id for e in batch_events]
    assert [r.occurred_at for r in parsed.rows] == [e.occurred_at for e in batch_events]
    assert [r.outcome for r in parsed.rows] == [e.outcome.value for e in batch_events]


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=2000)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from(["welfare/v1/B/k1/attendance", "welfare/v1/B/k1/health", "x/y"]),
)
def test_any_bytes_become_a_dead_letter_never_an_exception(payload: bytes, topic_name: str) -> None:
    """Hostile input never crashes the consumer."""
    parsed = parse_message(topic_name, payload, received_at=datetime.now(UTC))
    assert isinstance(parsed, DeadLetter)
    assert parsed.payload == payload
    assert parsed.reason


def test_clock_skew_is_flagged_not_dropped() -> None:
    """An event from a kiosk whose clock is a year off is kept with a flag."""
    now = datetime.now(UTC)
    for at, flag in (
        (now + timedelta(days=1), "clock_future"),
        (now - timedelta(days=400), "clock_past"),
    ):
        event = AttendanceEvent.model_validate(
            _event(event_id=str(uuid7(at)), occurred_at=at.isoformat(), service_date=str(at.date()))
        )
        batch = AttendanceBatch(facility_id="B", device_id="k1", sent_at=now, events=[event])
        parsed = parse_message(
            "welfare/v1/B/k1/attendance", batch.model_dump_json().encode(), received_at=now
        )
        assert isinstance(parsed, ParsedAttendance)
        assert parsed.rows[0].flags == [flag]
    assert set(UPSTREAM_MODELS) == {"attendance", "health", "presence", "sync"}


def test_presence_state_and_reason_go_together() -> None:
    """An online presence is always a connection; an offline one is a stop or a lost link."""
    base = {"schema_version": 1, "facility_id": "B", "device_id": "meal-1"}
    for state, reason in (("online", "connected"), ("offline", "shutdown")):
        DevicePresence.model_validate({**base, "state": state, "reason": reason})
    for state, reason in (("online", "shutdown"), ("offline", "connected")):
        with pytest.raises(ValidationError, match="state online goes with reason connected"):
            DevicePresence.model_validate({**base, "state": state, "reason": reason})


def test_a_heartbeat_of_contract_1_0_is_still_valid() -> None:
    """A kiosk not yet upgraded sends a heartbeat without the 1.1 fields: still accepted."""
    doc = json.loads(examples()["health"][1])
    for added in (
        "disk_total_mb",
        "heartbeat_interval_s",
        "last_ack_at",
        "clock_offset_s",
        "cpu_temp_c",
    ):
        doc.pop(added)
    parsed = parse_message(
        "welfare/v1/B/meal-1/health", json.dumps(doc).encode(), received_at=datetime.now(UTC)
    )
    assert not isinstance(parsed, DeadLetter), parsed
    assert parsed.health.clock_offset_s is None  # type: ignore[union-attr]


def test_an_ack_of_stored_events_is_what_a_1_2_kiosk_reads() -> None:
    """Contract 1.4 is backwards compatible: a committed ack has no `rejected`, and validates
    against the 1.2 model (copied here as it was), while a refusal is an ack of its own."""
    from typing import Literal

    from pydantic import AwareDatetime, ConfigDict, Field

    class IngestAck12(BaseModel):
        """IngestAck as contract 1.2 defined it."""

        model_config = ConfigDict(extra="forbid", frozen=True)
        schema_version: Literal[1] = 1
        facility_id: str
        device_id: str
        committed: list[str] = Field(min_length=1)
        acked_at: AwareDatetime

    stored = json.loads(examples()["ack"][1])
    assert "rejected" not in stored
    IngestAck12.model_validate(stored)
    refusal = json.loads(examples()["ack_rejected"][1])
    with pytest.raises(ValidationError):
        IngestAck12.model_validate(refusal)  # a 1.2 kiosk ignores it (logged), nothing else
    with pytest.raises(ValidationError):
        IngestAck.model_validate({**stored, "committed": []})  # an ack says something
