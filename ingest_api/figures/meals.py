"""The meal hall, live: each meal program's sittings today, served against capacity, tickets,
refusals, and the per-meal counts the city subsidises by day and by month.

Sittings come from the schedules (ingest_api/registry/schedules.py: weekly sessions minus
closures); a meal program without sessions has one all-day row. What happens now is read
from the attendances as they arrive (served = accepted taps, a staff's second serving
included; tickets = numbered tickets handed out); the subsidised counts are the figures
engine's person-visits (one meal per member per day, the counting rule's), never a second
way of counting. Aggregates only, except `refusals`, which names member numbers (audited by
the caller).
"""

from __future__ import annotations

import calendar
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Final, LiteralString
from zoneinfo import ZoneInfo

from broker.vocabulary import Outcome, ProgramKind
from ingest_api.core.db import Conn
from ingest_api.figures.engine import Period, Scope, compute
from ingest_api.registry import schedules

OUTCOME_LABELS: Final[dict[str, str]] = {
    Outcome.ACCEPTED: "식사",
    Outcome.ALREADY_SERVED: "오늘 이미 식사함",
    Outcome.UNKNOWN_CREDENTIAL: "등록되지 않은 카드",
    Outcome.INACTIVE_MEMBER: "이용 중지 회원",
    Outcome.NOT_ENROLLED: "식당 이용 등록 안 됨",
    Outcome.NO_SERVICE: "배식 시간 아님",
}

# Today's taps of the facility's meal programs (and taps no program was decided for), by
# program, local time of day, outcome and ticket.
_TODAY: Final[LiteralString] = """
SELECT e.program_id, (e.occurred_at AT TIME ZONE %(tz)s)::time AS clock, e.outcome,
       e.ticket_no
FROM attendance_events AS e
WHERE e.facility_id = %(f)s AND e.service_date = %(day)s
  AND (e.program_id = ANY(%(programs)s) OR e.program_id IS NULL)
"""
_REFUSALS: Final[LiteralString] = """
SELECT e.occurred_at, e.program_id, e.outcome, e.member_ref, e.device_id, e.method
FROM attendance_events AS e
WHERE e.facility_id = %(f)s AND e.service_date = %(day)s AND e.outcome <> 'accepted'
  AND (e.program_id = ANY(%(programs)s) OR (e.program_id IS NULL AND NOT %(scoped)s))
ORDER BY e.occurred_at DESC
LIMIT %(limit)s
"""

# Members served a second time while the hall's kiosks could not reach each other (the view of
# migration 0060): both serves are kept, the figures count one, staff look at them here.
_DOUBLE_SERVES: Final[LiteralString] = """
SELECT d.occurred_at, d.program_id, d.member_ref, d.device_id, d.first_device_id, d.ticket_no
FROM double_serves AS d
WHERE d.facility_id = %(f)s AND d.service_date = %(day)s AND d.program_id = ANY(%(programs)s)
ORDER BY d.occurred_at DESC
LIMIT %(limit)s
"""


@dataclass(slots=True, frozen=True)
class DoubleServe:
    """A member served again by another kiosk of the hall while the two could not talk."""

    at: datetime
    program_id: str
    member_ref: str
    device_id: str
    first_device_id: str
    ticket_no: int | None


@dataclass(slots=True)
class SittingNow:
    """One sitting of a meal program today and what has happened in it so far."""

    program_id: str
    program_name: str
    starts: time | None  # None: a program without sessions (the whole day)
    ends: time | None
    place: str | None
    capacity: int | None
    served: int = 0
    tickets: int = 0
    last_ticket: int | None = None
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The sitting's time, as the page shows it."""
        if self.starts is None or self.ends is None:
            return "종일"
        return f"{self.starts:%H:%M}–{self.ends:%H:%M}"

    @property
    def filled(self) -> int | None:
        """Served as a percentage of capacity (None without one)."""
        return round(100 * self.served / self.capacity) if self.capacity else None

    @property
    def refused_total(self) -> int:
        """Refused taps in the sitting."""
        return sum(self.refused.values())

    def holds(self, clock: time) -> bool:
        """Whether a tap at this local time belongs to the sitting."""
        if self.starts is None or self.ends is None:
            return True
        return self.starts <= clock < self.ends


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused tap at the meal hall."""

    at: datetime
    program_id: str | None
    outcome: str
    member_ref: str | None
    device_id: str
    method: str

    @property
    def label(self) -> str:
        """Why, in Korean."""
        return OUTCOME_LABELS.get(self.outcome, self.outcome)


def meal_programs(conn: Conn, *, facility_id: str) -> dict[str, tuple[str, int | None]]:
    """The facility's active meal programs: id -> (name, capacity)."""
    rows = conn.execute(
        "SELECT program_id, name, capacity FROM programs"
        " WHERE facility_id = %s AND kind = %s AND active ORDER BY program_id",
        (facility_id, ProgramKind.MEAL.value),
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def sittings_now(conn: Conn, *, facility_id: str, day: date, timezone: str) -> list[SittingNow]:
    """Every meal sitting of the day with its served count, tickets and refusals so far.

    A tap outside every sitting of its program (early, late) goes to the nearest one before
    it, or the first: nothing served is left out of the day's total.
    """
    programs = meal_programs(conn, facility_id=facility_id)
    dated = schedules.sittings(
        conn, facility_id=facility_id, program_ids=list(programs), start=day, days=1
    )
    found: list[SittingNow] = []
    for pid, (name, capacity) in programs.items():
        planned = sorted((s for s in dated if s.program_id == pid), key=lambda s: s.starts)
        if not planned:
            found.append(SittingNow(pid, name, None, None, None, capacity))
        for s in planned:
            found.append(SittingNow(pid, name, s.starts, s.ends, s.place, s.capacity or capacity))
    unassigned: dict[str, int] = {}
    for pid, clock, outcome, ticket in conn.execute(
        _TODAY, {"tz": timezone, "f": facility_id, "day": day, "programs": list(programs)}
    ):
        if pid is None:  # refused before any program was decided (an unknown card)
            unassigned[outcome] = unassigned.get(outcome, 0) + 1
            continue
        own = [s for s in found if s.program_id == pid]
        target = next((s for s in own if s.holds(clock)), None)
        if target is None:
            before = [s for s in own if s.starts is not None and s.starts <= clock]
            target = before[-1] if before else own[0]
        if outcome == Outcome.ACCEPTED:
            target.served += 1
            if ticket is not None:
                target.tickets += 1
                target.last_ticket = max(target.last_ticket or 0, ticket)
        else:
            target.refused[outcome] = target.refused.get(outcome, 0) + 1
    if unassigned and found:
        for outcome, n in unassigned.items():
            found[0].refused[outcome] = found[0].refused.get(outcome, 0) + n
    return found


def _meal_programs_seen(
    conn: Conn, *, facility_id: str, only_programs: Sequence[str] | None
) -> list[str]:
    """The facility's meal programs a caller may look at (`only_programs`: their assigned)."""
    programs = list(meal_programs(conn, facility_id=facility_id))
    if only_programs is None:
        return programs
    return [p for p in programs if p in only_programs]


def refusals(
    conn: Conn,
    *,
    facility_id: str,
    day: date,
    only_programs: Sequence[str] | None = None,
    limit: int = 50,
) -> list[Refusal]:
    """The day's latest refused taps at the meal hall (member numbers: personal data).

    `only_programs`: the programs a staff member is assigned to (None: all); taps no program
    was decided for are then left out too.
    """
    programs = _meal_programs_seen(conn, facility_id=facility_id, only_programs=only_programs)
    if only_programs is not None and not programs:
        return []
    rows = conn.execute(
        _REFUSALS,
        {
            "f": facility_id,
            "day": day,
            "programs": programs,
            "scoped": only_programs is not None,
            "limit": limit,
        },
    ).fetchall()
    return [Refusal(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class MealCounts:
    """Meals counted for the subsidy: per program and day of a month, and per month."""

    programs: dict[str, str]
    days: list[date]
    by_day: dict[tuple[str, date], int]
    months: list[str]
    by_month: dict[tuple[str, str], int]

    def day_total(self, day: date) -> int:
        """All meal programs' meals on a day."""
        return sum(self.by_day.get((p, day), 0) for p in self.programs)

    def month_total(self, month: str) -> int:
        """All meal programs' meals in a month."""
        return sum(self.by_month.get((p, month), 0) for p in self.programs)


# The counts of a (database epoch, facility, month, last day) while the rollup's generations
# of that facility's months stay the same: the engine is asked again only after a refresh
# renewed one of them (every page load of many staff would otherwise recount the month).
_CACHE: Final[OrderedDict[tuple[str, str, date, date], tuple[object, MealCounts]]] = OrderedDict()
_CACHE_LOCK: Final = threading.Lock()
_CACHE_SIZE: Final = 64
_GENERATIONS: Final[LiteralString] = """
SELECT e.epoch::text,
       coalesce(array_agg(g.generation ORDER BY g.month) FILTER (WHERE g.month IS NOT NULL), '{}')
FROM figures_epoch AS e
LEFT JOIN figures_month_generation AS g
  ON g.facility_id = %(f)s AND g.month BETWEEN %(lo)s AND %(hi)s
GROUP BY e.epoch
"""


def meal_counts(conn: Conn, *, facility_id: str, month: date, until: date) -> MealCounts:
    """Person-visits (meals) of the meal programs per day of `month` up to `until`, and per
    month of its year up to that month: the figures engine's count (kept while the rollup's
    generations of those months are unchanged)."""
    row = conn.execute(
        _GENERATIONS, {"f": facility_id, "lo": date(month.year, 1, 1), "hi": month}
    ).fetchone()
    epoch, generations = (str(row[0]), tuple(row[1])) if row else ("", ())
    key = (epoch, facility_id, month, until)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == generations:
        return hit[1]
    counts = _meal_counts(conn, facility_id=facility_id, month=month, until=until)
    with _CACHE_LOCK:
        _CACHE[key] = (generations, counts)
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return counts


def _meal_counts(conn: Conn, *, facility_id: str, month: date, until: date) -> MealCounts:
    """The engine's count behind meal_counts."""
    programs = {
        pid: name for pid, (name, _) in meal_programs(conn, facility_id=facility_id).items()
    }
    last = min(until, month.replace(day=calendar.monthrange(month.year, month.month)[1]))
    days = [month.replace(day=d) for d in range(1, last.day + 1)] if last >= month else []
    months = [date(month.year, m, 1) for m in range(1, month.month + 1)]
    by_day: dict[tuple[str, date], int] = {}
    by_month: dict[tuple[str, str], int] = {}
    if programs:
        scope = Scope(facility_id=facility_id)
        periods = [Period.day(d) for d in days]
        daily = (
            compute(conn, periods=periods, dims=["period", "program"], scope=scope)
            if periods
            else []
        )
        for row in daily:
            if row.key["program"] in programs:
                key = (row.key["program"], date.fromisoformat(row.key["period"]))
                by_day[key] = row.person_visits
        monthly = [Period.months(f"{m:%Y-%m}", m, m) for m in months]
        for row in compute(conn, periods=monthly, dims=["period", "program"], scope=scope):
            if row.key["program"] in programs:
                by_month[(row.key["program"], row.key["period"])] = row.person_visits
    return MealCounts(programs, days, by_day, [f"{m:%Y-%m}" for m in months], by_month)


def local_today(timezone: str) -> date:
    """Today in the facilities' zone."""
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def double_serves(
    conn: Conn,
    *,
    facility_id: str,
    day: date,
    only_programs: Sequence[str] | None = None,
    limit: int = 50,
) -> list[DoubleServe]:
    """The day's second serves at the meal hall (member numbers: personal data)."""
    programs = _meal_programs_seen(conn, facility_id=facility_id, only_programs=only_programs)
    if not programs:
        return []
    rows = conn.execute(
        _DOUBLE_SERVES, {"f": facility_id, "day": day, "programs": programs, "limit": limit}
    ).fetchall()
    return [DoubleServe(*r) for r in rows]
