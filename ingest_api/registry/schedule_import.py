"""Schedules and closures from the centers' spreadsheets (the `schedule` and `closures` imports).

A schedule file lists weekly sessions, one per row (a row may name several weekdays: `월,수,금`
or `월~금`); for every program in the file its sessions are replaced by the file's. A closures
file lists days the facility (no program code) or one program does not run. Every bad cell and
every overlap is named with its row and cell, and nothing is written unless all rows are good
(the importer's rules, ingest_api/registry/importer.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from pydantic import ValidationError

from ingest_api.core.db import Conn
from ingest_api.registry import schedules
from ingest_api.registry.models import ImportIssue, ScheduleIn, WeeklySession
from ingest_api.registry.store import Change

SCHEDULE_HEADERS: dict[str, str] = {
    "program_id": "program_id",
    "프로그램코드": "program_id",
    "weekday": "weekday",
    "weekdays": "weekday",
    "요일": "weekday",
    "starts": "starts",
    "start": "starts",
    "시작": "starts",
    "시작시간": "starts",
    "ends": "ends",
    "end": "ends",
    "종료": "ends",
    "종료시간": "ends",
    "place": "place",
    "장소": "place",
    "capacity": "capacity",
    "정원": "capacity",
    "회당정원": "capacity",
}
CLOSURE_HEADERS: dict[str, str] = {
    "date": "on_date",
    "on_date": "on_date",
    "날짜": "on_date",
    "휴관일": "on_date",
    "휴강일": "on_date",
    "program_id": "program_id",
    "프로그램코드": "program_id",
    "reason": "reason",
    "사유": "reason",
}
REQUIRED_SCHEDULE = ("program_id", "weekday", "starts", "ends")
REQUIRED_CLOSURES = ("on_date",)

_DAYS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("월", "mon", "monday"),
            ("화", "tue", "tuesday"),
            ("수", "wed", "wednesday"),
            ("목", "thu", "thursday"),
            ("금", "fri", "friday"),
            ("토", "sat", "saturday"),
            ("일", "sun", "sunday"),
        ),
        start=1,
    )
    for name in names
}
_TIME = re.compile(r"^(오전|오후|am|pm)?\s*(\d{1,2})(?:[:시]\s*(\d{1,2})?\s*분?)?(?::(\d{2}))?$")

CellOf = Callable[[str, int], tuple[str, str]]


class CellError(ValueError):
    """A cell that cannot be read as a weekday or a time of day."""


def _day(token: str) -> int:
    """One weekday: 월, 월요일, Mon, Monday or 1-7."""
    text = token.strip().lower().removesuffix("요일")
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text)
    if text not in _DAYS:
        raise CellError(f"not a weekday: {token!r} (use 월…일, Mon…Sun or 1-7)")
    return _DAYS[text]


def parse_weekdays(value: Any) -> list[int]:
    """Weekdays as staff write them: `월`, `월,수,금`, `월수금`, `월~금`, `1-5`, `Mon/Wed`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [_day(str(int(value)))]
    text = str(value or "").strip()
    if not text:
        raise CellError("required value is empty")
    days: list[int] = []
    for part in re.split(r"[,/·\s]+", text):
        if not part:
            continue
        span = re.split(r"[~\-–]", part)
        if len(span) == 2:
            first, last = _day(span[0]), _day(span[1])
            if last < first:
                raise CellError(f"weekday range {part!r} runs backwards")
            days += range(first, last + 1)
        elif re.fullmatch(r"[월화수목금토일]{2,7}", part):
            days += [_DAYS[c] for c in part]
        else:
            days.append(_day(part))
    return sorted(set(days))


def parse_time(value: Any) -> time:
    """A time of day: an Excel time cell, `10:00`, `9:30`, `1430`, `10시 30분`, `오후 2:00`."""
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, float) and 0 <= value < 1:  # Excel's fraction of a day
        minutes = round(value * 24 * 60)
        return time(minutes // 60, minutes % 60)
    text = str(value or "").strip().lower()
    if re.fullmatch(r"\d{3,4}", text):
        text = f"{text[:-2]}:{text[-2:]}"
    match = _TIME.match(text)
    if not match:
        raise CellError(f"not a time of day: {value!r} (write 10:00)")
    meridiem, hour, minute = match[1], int(match[2]), int(match[3] or 0)
    if meridiem in ("오후", "pm") and hour < 12:
        hour += 12
    if meridiem in ("오전", "am") and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        raise CellError(f"not a time of day: {value!r} (hours 0-23, minutes 0-59)")
    return time(hour, minute)


def _unknown_program(
    number: int, program_id: str, facility_id: str, cell_of: CellOf
) -> ImportIssue:
    """The issue of a row naming a program the facility does not have."""
    header, cell = cell_of("program_id", number)
    return ImportIssue(
        row=number,
        column=header,
        cell=cell,
        value=program_id,
        message=f"unknown program of facility {facility_id}",
    )


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A weekly session and the spreadsheet row it came from."""

    row: int
    program_id: str
    session: WeeklySession


def schedule_models(
    conn: Conn,
    *,
    facility_id: str,
    rows: list[tuple[int, dict[str, Any]]],
    cell_of: CellOf,
    issues: list[ImportIssue],
) -> dict[str, list[SessionRow]]:
    """Program -> its sessions from the file; every bad row and every overlap is an issue."""
    known = {
        str(r[0])
        for r in conn.execute(
            "SELECT program_id FROM programs WHERE facility_id = %s", (facility_id,)
        )
    }
    by_program: dict[str, list[SessionRow]] = defaultdict(list)
    for number, values in rows:
        program_id = values.get("program_id", "")
        if program_id and program_id not in known:
            issues.append(_unknown_program(number, program_id, facility_id, cell_of))
            continue
        if not all(k in values for k in REQUIRED_SCHEDULE):
            continue  # a bad cell of this row is already named
        for weekday in values["weekday"]:
            try:
                session = WeeklySession(
                    weekday=weekday,
                    starts=values["starts"],
                    ends=values["ends"],
                    place=values.get("place") or "",
                    capacity=values.get("capacity"),
                )
            except ValidationError as exc:
                header, cell = cell_of("ends", number)
                for err in exc.errors():
                    issues.append(
                        ImportIssue(
                            row=number,
                            column=header,
                            cell=cell,
                            value=str(values.get("ends")),
                            message=str(err["msg"]).removeprefix("Value error, "),
                        )
                    )
                break
            by_program[program_id].append(SessionRow(number, program_id, session))
    in_file = list(by_program)
    stored = schedules.other_sessions(conn, facility_id=facility_id, excluding=in_file)
    for program_id, found in by_program.items():
        others = stored + [
            (s.program_id, s.session)
            for other, items in by_program.items()
            if other != program_id
            for s in items
        ]
        for index, message in schedules.schedule_problems(
            [s.session for s in found], others=others
        ):
            assert index is not None
            number = found[index].row
            header, cell = cell_of("weekday", number)
            issues.append(
                ImportIssue(
                    row=number,
                    column=header,
                    cell=cell,
                    value=found[index].session.label(),
                    message=f"{program_id}: {message}",
                )
            )
    return by_program


def apply_schedule(conn: Conn, *, program_id: str, sessions: list[SessionRow]) -> Change:
    """Replace a program's weekly sessions (its cancelled days stay); the change made."""
    current = schedules.get_schedule(conn, program_id=program_id)
    assert current is not None
    changed = schedules.set_schedule(
        conn,
        program_id=program_id,
        schedule=ScheduleIn(sessions=[s.session for s in sessions], exceptions=current.exceptions),
    )
    if not changed:
        return "unchanged"
    return "updated" if current.sessions else "inserted"


def closure_models(
    conn: Conn,
    *,
    facility_id: str,
    rows: list[tuple[int, dict[str, Any]]],
    cell_of: CellOf,
    issues: list[ImportIssue],
) -> list[tuple[date, str | None, str]]:
    """(day, program or None for the facility, reason) per row; bad rows are issues."""
    known = {
        str(r[0])
        for r in conn.execute(
            "SELECT program_id FROM programs WHERE facility_id = %s", (facility_id,)
        )
    }
    seen: dict[tuple[date, str | None], int] = {}
    found: list[tuple[date, str | None, str]] = []
    for number, values in rows:
        day = values.get("on_date")
        program_id = values.get("program_id") or None
        if program_id is not None and program_id not in known:
            issues.append(_unknown_program(number, program_id, facility_id, cell_of))
            continue
        if day is None:
            continue
        if (day, program_id) in seen:
            header, cell = cell_of("on_date", number)
            issues.append(
                ImportIssue(
                    row=number,
                    column=header,
                    cell=cell,
                    value=str(day),
                    message=f"duplicate of row {seen[(day, program_id)]}",
                )
            )
            continue
        seen[(day, program_id)] = number
        found.append((day, program_id, values.get("reason") or ""))
    return found


def apply_closure(
    conn: Conn, *, facility_id: str, on_date: date, program_id: str | None, reason: str
) -> Change:
    """Store one closed day (facility-wide or of one program); the change made."""
    cur = conn.execute(
        "INSERT INTO schedule_exceptions (facility_id, program_id, on_date, reason) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (facility_id, coalesce(program_id, ''), on_date) "
        "DO UPDATE SET reason = EXCLUDED.reason "
        "WHERE schedule_exceptions.reason IS DISTINCT FROM EXCLUDED.reason RETURNING (xmax = 0)",
        (facility_id, program_id, on_date, reason),
    )
    row = cur.fetchone()
    if row is None:
        return "unchanged"
    return "inserted" if row[0] else "updated"
