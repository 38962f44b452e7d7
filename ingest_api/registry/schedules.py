"""Schedules as data: a program's weekly sessions and closures, validated, and its sittings.

A program's schedule is replaced as a whole (API or import). It is refused with every problem
named: two sessions of the program overlapping, or a session in a place another program of the
facility uses at an overlapping time. Impossible times (ending before they start, past
midnight, unknown weekdays) are refused by the models already. The kiosks get the weekly
pattern and the dated sittings of today and the coming week with closures applied
(ingest_api/registry/rosters.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from broker.models import ProgramSession, Sitting
from broker.vocabulary import ProgramKind
from ingest_api.core.db import Conn
from ingest_api.registry.models import (
    Closure,
    FacilityClosure,
    Schedule,
    ScheduleIn,
    WeeklySession,
)


class ScheduleError(ValueError):
    """A schedule the registry refuses; `problems` names each one, `index` the session."""

    def __init__(self, problems: list[tuple[int | None, str]]) -> None:
        """Keep every problem (session index or None, message)."""
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def _overlap(a: WeeklySession, b: WeeklySession) -> bool:
    """Two sessions on the same weekday whose times overlap (touching ends do not)."""
    return a.weekday == b.weekday and a.starts < b.ends and b.starts < a.ends


def _where(session: WeeklySession) -> str:
    """A session with its place, as a problem names it."""
    return session.label() + (f" ({session.place})" if session.place else "")


def schedule_problems(
    sessions: Sequence[WeeklySession],
    *,
    others: Iterable[tuple[str, WeeklySession]] = (),
) -> list[tuple[int | None, str]]:
    """Every overlap within `sessions` and with `others` (other programs) in the same place."""
    problems: list[tuple[int | None, str]] = []
    for i, a in enumerate(sessions):
        for j in range(i):
            b = sessions[j]
            if _overlap(a, b):
                problems.append((i, f"{_where(a)} overlaps {_where(b)} of the same program"))
    for i, a in enumerate(sessions):
        if not a.place:
            continue
        for program_id, b in others:
            if b.place == a.place and _overlap(a, b):
                problems.append(
                    (i, f"{_where(a)} overlaps {program_id} {b.label()} in the same place")
                )
    return problems


def _sessions(conn: Conn, *, program_id: str) -> list[WeeklySession]:
    """A program's weekly sessions, ordered."""
    rows = conn.execute(
        "SELECT weekday, starts, ends, place, capacity FROM program_sessions "
        "WHERE program_id = %s ORDER BY weekday, starts",
        (program_id,),
    ).fetchall()
    return [
        WeeklySession(weekday=r[0], starts=r[1], ends=r[2], place=r[3], capacity=r[4]) for r in rows
    ]


def get_schedule(conn: Conn, *, program_id: str) -> Schedule | None:
    """A program's schedule, or None for an unknown program."""
    row = conn.execute("SELECT kind FROM programs WHERE program_id = %s", (program_id,)).fetchone()
    if row is None:
        return None
    closures = conn.execute(
        "SELECT on_date, reason FROM schedule_exceptions WHERE program_id = %s ORDER BY on_date",
        (program_id,),
    ).fetchall()
    return Schedule(
        program_id=program_id,
        kind=row[0],
        sessions=_sessions(conn, program_id=program_id),
        exceptions=[Closure(on_date=r[0], reason=r[1]) for r in closures],
    )


def other_sessions(
    conn: Conn, *, facility_id: str, excluding: Iterable[str]
) -> list[tuple[str, WeeklySession]]:
    """Sessions of the facility's other programs (to find places used twice at once)."""
    rows = conn.execute(
        "SELECT s.program_id, s.weekday, s.starts, s.ends, s.place, s.capacity "
        "FROM program_sessions s JOIN programs p USING (program_id) "
        "WHERE p.facility_id = %s AND NOT (s.program_id = ANY(%s)) AND s.place <> ''",
        (facility_id, list(excluding)),
    ).fetchall()
    return [
        (r[0], WeeklySession(weekday=r[1], starts=r[2], ends=r[3], place=r[4], capacity=r[5]))
        for r in rows
    ]


def set_schedule(conn: Conn, *, program_id: str, schedule: ScheduleIn) -> bool:
    """Replace a program's sessions and cancelled days; whether anything changed.

    Raises LookupError for an unknown program, ScheduleError naming every overlap.
    """
    row = conn.execute(
        "SELECT facility_id FROM programs WHERE program_id = %s", (program_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"unknown program {program_id!r}")
    facility_id = str(row[0])
    problems = schedule_problems(
        schedule.sessions,
        others=other_sessions(conn, facility_id=facility_id, excluding=[program_id]),
    )
    days = [c.on_date for c in schedule.exceptions]
    for i, day in enumerate(days):
        if day in days[:i]:
            problems.append((None, f"cancelled day {day} is listed twice"))
    if problems:
        raise ScheduleError(problems)
    current = get_schedule(conn, program_id=program_id)
    assert current is not None
    if sorted(current.sessions, key=_order) == sorted(schedule.sessions, key=_order) and sorted(
        current.exceptions, key=lambda c: c.on_date
    ) == sorted(schedule.exceptions, key=lambda c: c.on_date):
        return False
    conn.execute("DELETE FROM program_sessions WHERE program_id = %s", (program_id,))
    conn.execute("DELETE FROM schedule_exceptions WHERE program_id = %s", (program_id,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO program_sessions (program_id, weekday, starts, ends, place, capacity) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (program_id, s.weekday, s.starts, s.ends, s.place, s.capacity)
                for s in schedule.sessions
            ],
        )
        cur.executemany(
            "INSERT INTO schedule_exceptions (facility_id, program_id, on_date, reason) "
            "VALUES (%s, %s, %s, %s)",
            [(facility_id, program_id, c.on_date, c.reason) for c in schedule.exceptions],
        )
    return True


def _order(session: WeeklySession) -> tuple[int, object, object, str, int]:
    """A stable order of sessions for comparison."""
    return (session.weekday, session.starts, session.ends, session.place, session.capacity or 0)


# -- facility closures -----------------------------------------------------------------------


def set_closure(conn: Conn, *, facility_id: str, on_date: date, reason: str) -> bool:
    """Close the whole facility on a day (a holiday); whether anything changed."""
    if (
        conn.execute("SELECT 1 FROM facilities WHERE facility_id = %s", (facility_id,)).fetchone()
        is None
    ):
        raise LookupError(f"unknown facility {facility_id!r}")
    cur = conn.execute(
        "INSERT INTO schedule_exceptions (facility_id, program_id, on_date, reason) "
        "VALUES (%s, NULL, %s, %s) ON CONFLICT (facility_id, coalesce(program_id, ''), on_date) "
        "DO UPDATE SET reason = EXCLUDED.reason "
        "WHERE schedule_exceptions.reason IS DISTINCT FROM EXCLUDED.reason",
        (facility_id, on_date, reason),
    )
    return cur.rowcount > 0


def delete_closure(conn: Conn, *, facility_id: str, on_date: date) -> bool:
    """Open the facility again on a day; whether a closure was removed."""
    cur = conn.execute(
        "DELETE FROM schedule_exceptions WHERE facility_id = %s AND program_id IS NULL "
        "AND on_date = %s",
        (facility_id, on_date),
    )
    return cur.rowcount > 0


def list_closures(
    conn: Conn, *, facility_id: str, start: date | None = None, end: date | None = None
) -> list[FacilityClosure]:
    """The facility's closed days (whole facility), optionally within [start, end]."""
    rows = conn.execute(
        "SELECT on_date, reason FROM schedule_exceptions WHERE facility_id = %s "
        "AND program_id IS NULL AND (%s::date IS NULL OR on_date >= %s) "
        "AND (%s::date IS NULL OR on_date <= %s) ORDER BY on_date",
        (facility_id, start, start, end, end),
    ).fetchall()
    return [FacilityClosure(facility_id=facility_id, on_date=r[0], reason=r[1]) for r in rows]


# -- what kiosks get -----------------------------------------------------------------------


def weekly_pattern(conn: Conn, *, program_ids: Sequence[str]) -> list[ProgramSession]:
    """The programs as kiosks know them: one entry per time window, with its weekdays."""
    rows = conn.execute(
        "SELECT p.program_id, p.name, p.kind, s.starts, s.ends, s.place, s.capacity, "
        "array_agg(s.weekday ORDER BY s.weekday) FROM programs p "
        "JOIN program_sessions s USING (program_id) "
        "WHERE p.program_id = ANY(%s) AND p.active "
        "GROUP BY p.program_id, p.name, p.kind, s.starts, s.ends, s.place, s.capacity "
        "ORDER BY p.program_id, s.starts",
        (list(program_ids),),
    ).fetchall()
    return [
        ProgramSession(
            program_id=r[0],
            name=str(r[1])[:80],
            kind=ProgramKind(r[2]),
            weekdays=list(r[7]),
            starts=r[3],
            ends=r[4],
            place=r[5] or None,
            capacity=r[6],
        )
        for r in rows
    ]


def sittings(
    conn: Conn, *, facility_id: str, program_ids: Sequence[str], start: date, days: int
) -> list[Sitting]:
    """Dated sittings from `start` for `days` days: weekly sessions minus closures."""
    end = start + timedelta(days=days - 1)
    closed: dict[str | None, set[date]] = defaultdict(set)
    for program_id, on_date in conn.execute(
        "SELECT program_id, on_date FROM schedule_exceptions WHERE facility_id = %s "
        "AND on_date BETWEEN %s AND %s",
        (facility_id, start, end),
    ):
        closed[program_id].add(on_date)
    weekly = conn.execute(
        "SELECT s.program_id, s.weekday, s.starts, s.ends, s.place, s.capacity "
        "FROM program_sessions s JOIN programs p USING (program_id) "
        "WHERE s.program_id = ANY(%s) AND p.active ORDER BY s.program_id, s.starts",
        (list(program_ids),),
    ).fetchall()
    found: list[Sitting] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day in closed[None]:
            continue
        for program_id, weekday, starts, ends, place, capacity in weekly:
            if weekday == day.isoweekday() and day not in closed[program_id]:
                found.append(
                    Sitting(
                        program_id=program_id,
                        on=day,
                        starts=starts,
                        ends=ends,
                        place=place or None,
                        capacity=capacity,
                    )
                )
    return found
