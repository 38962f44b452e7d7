"""One real, valid example of every message (used by docs/contract.md and its tests)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone

from broker.keys import key_id, sign
from broker.models import (
    AttendanceBatch,
    AttendanceEvent,
    DeviceConfig,
    DeviceHealth,
    DevicePresence,
    IngestAck,
    PeerServe,
    ProgramSession,
    ReaderState,
    RejectedEvent,
    Roster,
    RosterMember,
    Sitting,
    SyncRequest,
)
from broker.roster import (
    config_signing_bytes,
    delta,
    member_digest,
    roster_hash,
    roster_signing_bytes,
)
from broker.topics import Channel, topic
from broker.vocabulary import (
    MemberStatus,
    Method,
    Outcome,
    ProgramKind,
    RejectReason,
    SyncReason,
)

KST = timezone(timedelta(hours=9))
FACILITY = "B"
DEVICE = "meal-1"
AT = datetime(2026, 11, 20, 12, 3, 17, 412000, tzinfo=KST)
# Facility B's credential key in these examples only (a real one is derived, never shown).
EXAMPLE_KEY = b"b0c1d2e3f4a5968778695a4b3c2d1e0f"


def fixed_uuid7(at: datetime, rand: int) -> uuid.UUID:
    """A UUIDv7 with a chosen random part, so examples are stable."""
    ms = int(at.timestamp() * 1000)
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def examples() -> dict[str, tuple[str, str]]:
    """Message name -> (topic, JSON payload) for one example of each message."""
    roster, roster_delta = rosters()
    event = AttendanceEvent(
        event_id=fixed_uuid7(AT, 0x0A1B2C3D4E5F60718),
        occurred_at=AT,
        service_date=date(2026, 11, 20),
        program_id="B-MEAL",
        member_ref="B-M00042",
        method=Method.CARD,
        outcome=Outcome.ACCEPTED,
        ticket_no=57,
        roster_version=roster.version,
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
        roster_version=roster.version,
        readers={"card": ReaderState(kind="card", connected=True, detail="USB 08ff:0009")},
        disk_free_mb=11_204.0,
        disk_total_mb=14_832.0,
        heartbeat_interval_s=60.0,
        last_ack_at=AT - timedelta(seconds=1),
        clock_offset_s=-0.042,
        cpu_temp_c=48.3,
        outbox_parked=1,
        storage_days_left=14975.8,
    )
    presence = DevicePresence(
        facility_id=FACILITY, device_id=DEVICE, state="offline", reason="connection_lost"
    )
    ack = IngestAck(facility_id=FACILITY, device_id=DEVICE, committed=[event.event_id], acked_at=AT)
    refusal = IngestAck(
        facility_id=FACILITY,
        device_id=DEVICE,
        acked_at=AT,
        rejected=[
            RejectedEvent(
                event_id=uuid.UUID("01a1f6e8-8aa5-7003-b1c2-d3e4f5061728"),
                reason=RejectReason.DB_REJECTED,
                detail="unsupported Unicode escape sequence",
            )
        ],
    )
    config = DeviceConfig(
        facility_id=FACILITY,
        device_id=DEVICE,
        facility_name="한마음종합사회복지관",
        issued_at=AT,
        version="3f9c2a7be0d14c58",
        key_ids=[key_id(EXAMPLE_KEY)],
    )
    config = config.model_copy(
        update={"signatures": sign([EXAMPLE_KEY], config_signing_bytes(config))}
    )
    sync = SyncRequest(
        facility_id=FACILITY,
        device_id=DEVICE,
        sent_at=AT,
        reason=SyncReason.CONNECT,
        roster_version=roster.version,
        roster_hash=roster.content_hash,
        config_version=config.version,
        key_ids=[key_id(EXAMPLE_KEY)],
    )
    peer = PeerServe(
        facility_id=FACILITY,
        device_id=DEVICE,
        event_id=event.event_id,
        program_id="B-MEAL",
        member_ref="B-M00042",
        service_date=event.service_date,
        ticket_no=event.ticket_no,
        sitting=time(11, 30),
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
        "ack_rejected": (
            topic(FACILITY, DEVICE, Channel.ACK),
            refusal.model_dump_json(exclude_none=True),
        ),
        "roster": (
            topic(FACILITY, DEVICE, Channel.ROSTER),
            roster.model_dump_json(exclude_none=True),
        ),
        "roster_delta": (
            topic(FACILITY, DEVICE, Channel.ROSTER),
            roster_delta.model_dump_json(exclude_none=True),
        ),
        "config": (
            topic(FACILITY, DEVICE, Channel.CONFIG),
            config.model_dump_json(exclude_none=True),
        ),
        "sync": (topic(FACILITY, DEVICE, Channel.SYNC), sync.model_dump_json(exclude_none=True)),
        "peer": (topic(FACILITY, DEVICE, Channel.PEER), peer.model_dump_json(exclude_none=True)),
    }


def rosters() -> tuple[Roster, Roster]:
    """A whole roster, and the delta from it after one member died and one joined (signed)."""
    issued = AT.replace(hour=6, minute=0, second=0, microsecond=0)
    meal = ProgramSession(
        program_id="B-MEAL",
        name="경로식당 점심",
        kind=ProgramKind.MEAL,
        weekdays=[1, 2, 3, 4, 5, 6],
        starts=time(11, 30),
        ends=time(13, 0),
        capacity=300,
        place="경로식당",
    )
    first = RosterMember(
        member_ref="B-M00042",
        display_name="김*자",
        credential_hashes=["5d0f" + "0" * 56 + "9a1c"],
        program_ids=["B-MEAL"],
    )
    whole = Roster(
        facility_id=FACILITY,
        device_id=DEVICE,
        version="pending",
        issued_at=issued,
        programs=[meal],
        sittings=[
            Sitting(
                program_id="B-MEAL",
                on=date(2026, 11, 20),
                starts=time(11, 30),
                ends=time(13, 0),
                capacity=300,
                place="경로식당",
            )
        ],
        sittings_until=date(2026, 11, 27),
        members=[first],
    )
    whole = _signed(_versioned(whole))
    later = whole.model_copy(
        update={
            "issued_at": AT.replace(minute=15, second=0, microsecond=0),
            "members": [
                first.model_copy(update={"status": MemberStatus.DECEASED}),
                RosterMember(
                    member_ref="B-M00077",
                    display_name="이*호",
                    credential_hashes=["a4e1" + "0" * 56 + "07b3"],
                    program_ids=["B-MEAL"],
                ),
            ],
            "content_hash": None,
            "signatures": None,
        }
    )
    later = _versioned(later)
    base = {m.member_ref: member_digest(m) for m in whole.members}
    return whole, _signed(delta(later, base_version=whole.version, base_digests=base))


def _versioned(roster: Roster) -> Roster:
    """The roster with its content hash, and a version named as the center names them."""
    digest = roster_hash(roster)
    return roster.model_copy(
        update={"content_hash": digest, "version": f"{roster.issued_at:%Y%m%d%H%M%S}-{digest[:12]}"}
    )


def _signed(roster: Roster) -> Roster:
    """The roster with its signature under the example key."""
    return roster.model_copy(
        update={"signatures": sign([EXAMPLE_KEY], roster_signing_bytes(roster))}
    )
