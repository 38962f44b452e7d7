"""Pure rules of a tap: which programs are on now and which of them a member may enter."""

from __future__ import annotations

from datetime import datetime

from broker.models import ProgramSession, RosterMember, Sitting
from broker.vocabulary import MemberStatus


def programs_on_now(programs: list[ProgramSession], local_now: datetime) -> list[ProgramSession]:
    """Programs whose session is running at `local_now` (facility local time)."""
    weekday = local_now.isoweekday()
    clock = local_now.time().replace(tzinfo=None)
    return [p for p in programs if weekday in p.weekdays and p.starts <= clock < p.ends]


def sessions_on_now(
    programs: list[ProgramSession], sittings: list[Sitting] | None, local_now: datetime
) -> list[ProgramSession]:
    """Programs on at `local_now`: by the day's sittings when the roster has them, else weekly.

    A sitting carries the day's own times and place (a class moved to another room for one
    day, a cancelled lunch is absent); the program's name and kind come from `programs`.
    """
    if sittings is None:
        return programs_on_now(programs, local_now)
    clock = local_now.time().replace(tzinfo=None)
    described = {p.program_id: p for p in programs}
    on: dict[str, ProgramSession] = {}
    for sitting in sittings:
        program = described.get(sitting.program_id)
        if program is None or sitting.program_id in on:
            continue
        if sitting.starts <= clock < sitting.ends:
            on[sitting.program_id] = program.model_copy(
                update={
                    "weekdays": [local_now.isoweekday()],
                    "starts": sitting.starts,
                    "ends": sitting.ends,
                    "place": sitting.place,
                    "capacity": sitting.capacity,
                }
            )
    return list(on.values())


def day_sittings(
    programs: list[ProgramSession], sittings: list[Sitting] | None, local_now: datetime
) -> list[ProgramSession]:
    """Every sitting of the day (by the day's sittings when the roster has them, else weekly),
    each as its program with that sitting's times, place and capacity, in order of start."""
    weekday = local_now.isoweekday()
    if sittings is None:
        found = [p for p in programs if weekday in p.weekdays]
    else:
        described = {p.program_id: p for p in programs}
        found = [
            described[s.program_id].model_copy(
                update={
                    "weekdays": [weekday],
                    "starts": s.starts,
                    "ends": s.ends,
                    "place": s.place,
                    "capacity": s.capacity,
                }
            )
            for s in sittings
            if s.program_id in described
        ]
    return sorted(found, key=lambda p: p.starts)


def is_active(member: RosterMember) -> bool:
    """Only active members may check in; moved-out or deceased ones go to staff."""
    return member.status is MemberStatus.ACTIVE


def eligible_programs(member: RosterMember, on_now: list[ProgramSession]) -> list[ProgramSession]:
    """Running programs the member is enrolled in."""
    enrolled = set(member.program_ids)
    return [p for p in on_now if p.program_id in enrolled]
