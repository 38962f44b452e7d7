"""One real, valid example of every message (used by docs/contract.md and its tests)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone

from broker.models import (
    AttendanceBatch,
    AttendanceEvent,
    DeviceConfig,
    DeviceHealth,
    DevicePresence,
    IngestAck,
    ProgramSession,
    ReaderState,
    Roster,
    RosterMember,
)
from broker.topics import Channel, topic
from broker.vocabulary import Method, Outcome, ProgramKind

KST = timezone(timedelta(hours=9))
FACILITY = "B"
DEVICE = "meal-1"
AT = datetime(2026, 11, 20, 12, 3, 17, 412000, tzinfo=KST)


def fixed_uuid7(at: datetime, rand: int) -> uuid.UUID:
    """A UUIDv7 with a chosen random part, so examples are stable."""
    ms = int(at.timestamp() * 1000)
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def examples() -> dict[str, tuple[str, str]]:
    """Message name -> (topic, JSON payload) for one example of each message."""
    event = AttendanceEvent(
        event_id=fixed_uuid7(AT, 0x0A1B2C3D4E5F60718),
        occurred_at=AT,
        service_date=date(2026, 11, 20),
        program_id="B-MEAL",
        member_ref="B-M00042",
        method=Method.CARD,
        outcome=Outcome.ACCEPTED,
        ticket_no=57,
        roster_version="B-202611200600",
    )
    batch = AttendanceBatch(
        facility_id=FACILITY,
        device_id=DEVICE,
        sent_at=AT + timedelta(milliseconds=40),
        events=[event],
    )
    health = DeviceHealth(
        facility_id=FACILITY,
        device_id=DEVICE,
        reported_at=AT,
        software_version="0.1.0",
        uptime_s=16_384.5,
        outbox_pending=3,
        oldest_pending_at=AT - timedelta(seconds=2),
        roster_version="B-202611200600",
        readers={"card": ReaderState(kind="card", connected=True, detail="USB 08ff:0009")},
        disk_free_mb=11_204.0,
        disk_total_mb=14_832.0,
        heartbeat_interval_s=60.0,
        last_ack_at=AT - timedelta(seconds=1),
        clock_offset_s=-0.042,
        cpu_temp_c=48.3,
    )
    presence = DevicePresence(
        facility_id=FACILITY, device_id=DEVICE, state="offline", reason="connection_lost"
    )
    ack = IngestAck(facility_id=FACILITY, device_id=DEVICE, committed=[event.event_id], acked_at=AT)
    roster = Roster(
        facility_id=FACILITY,
        device_id=DEVICE,
        version="B-202611200600",
        issued_at=AT.replace(hour=6, minute=0, second=0, microsecond=0),
        programs=[
            ProgramSession(
                program_id="B-MEAL",
                name="경로식당 점심",
                kind=ProgramKind.MEAL,
                weekdays=[1, 2, 3, 4, 5, 6],
                starts=time(11, 30),
                ends=time(13, 0),
                capacity=300,
                place="경로식당",
            )
        ],
        members=[
            RosterMember(
                member_ref="B-M00042",
                display_name="김순자",
                credential_hashes=["5d0f" + "0" * 56 + "9a1c"],
                program_ids=["B-MEAL"],
            )
        ],
    )
    config = DeviceConfig(
        facility_id=FACILITY, device_id=DEVICE, facility_name="한마음종합사회복지관", issued_at=AT
    )
    return {
        "attendance": (
            topic(FACILITY, DEVICE, Channel.ATTENDANCE),
            batch.model_dump_json(exclude_none=True),
        ),
        "health": (
            topic(FACILITY, DEVICE, Channel.HEALTH),
            health.model_dump_json(exclude_none=True),
        ),
        "presence": (
            topic(FACILITY, DEVICE, Channel.PRESENCE),
            presence.model_dump_json(exclude_none=True),
        ),
        "ack": (topic(FACILITY, DEVICE, Channel.ACK), ack.model_dump_json(exclude_none=True)),
        "roster": (
            topic(FACILITY, DEVICE, Channel.ROSTER),
            roster.model_dump_json(exclude_none=True),
        ),
        "config": (
            topic(FACILITY, DEVICE, Channel.CONFIG),
            config.model_dump_json(exclude_none=True),
        ),
    }
