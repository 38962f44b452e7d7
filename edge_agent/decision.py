"""Pure rules of a tap: which programs are on now and which of them a member may enter."""

from __future__ import annotations

from datetime import datetime

from broker.models import ProgramSession, RosterMember
from broker.vocabulary import MemberStatus


def programs_on_now(programs: list[ProgramSession], local_now: datetime) -> list[ProgramSession]:
    """Programs whose session is running at `local_now` (facility local time)."""
    weekday = local_now.isoweekday()
    clock = local_now.time().replace(tzinfo=None)
    return [p for p in programs if weekday in p.weekdays and p.starts <= clock < p.ends]


def is_active(member: RosterMember) -> bool:
    """Only active members may check in; moved-out or deceased ones go to staff."""
    return member.status is MemberStatus.ACTIVE


def eligible_programs(member: RosterMember, on_now: list[ProgramSession]) -> list[ProgramSession]:
    """Running programs the member is enrolled in."""
    enrolled = set(member.program_ids)
    return [p for p in on_now if p.program_id in enrolled]
