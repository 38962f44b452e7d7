"""Valid AttendanceBatch documents built fast from string templates (checked against the models)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker.ids import uuid7

_SEOUL = timedelta(hours=9)


def event_json(at: datetime, *, member: int, program_id: str, ticket: int) -> tuple[str, str]:
    """(event_id, JSON) of an accepted card check-in whose id carries `at` (ms precision)."""
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    event_id = str(uuid7(at))
    occurred = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    day = (at.astimezone(UTC) + _SEOUL).date().isoformat()
    body = (
        f'{{"event_id":"{event_id}","occurred_at":"{occurred}","service_date":"{day}",'
        f'"program_id":"{program_id}","member_ref":"M{member:06d}","method":"card",'
        f'"outcome":"accepted","ticket_no":{ticket}}}'
    )
    return event_id, body


def batch_json(*, facility_id: str, device_id: str, events: list[str], sent_at: datetime) -> str:
    """An AttendanceBatch document around already-serialised events."""
    sent = sent_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return (
        f'{{"schema_version":1,"facility_id":"{facility_id}","device_id":"{device_id}",'
        f'"sent_at":"{sent}","events":[{",".join(events)}]}}'
    )


def make_batch(
    *, facility_id: str, device_id: str, size: int, at: datetime, serial: int
) -> tuple[list[str], str]:
    """(event ids, payload) of `size` events stamped `at`; `serial` varies members and tickets."""
    ids: list[str] = []
    bodies: list[str] = []
    for i in range(size):
        n = serial * size + i
        event_id, body = event_json(
            at, member=n % 20_000, program_id="meal-lunch", ticket=n % 99_999 + 1
        )
        ids.append(event_id)
        bodies.append(body)
    return ids, batch_json(facility_id=facility_id, device_id=device_id, events=bodies, sent_at=at)
