"""Registry API: facilities, counting rules, programs and targets, members, visitors, contacts.

Every read of a member's personal data writes an audit row; sensitive fields need a reason.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from broker.vocabulary import EntityId
from ingest_api.core.deps import ERROR_RESPONSES, ActorDep, ConnDep, KeyDep, SettingsDep
from ingest_api.registry import schedules, store
from ingest_api.registry.audit import write_audit
from ingest_api.registry.importer import import_file
from ingest_api.registry.models import (
    ContactIn,
    CountingRule,
    Facility,
    FacilityClosure,
    ImportResult,
    Member,
    MemberIn,
    MemberSensitive,
    NodeTarget,
    Program,
    ProgramWithTargets,
    Schedule,
    ScheduleIn,
    StatusChange,
    VisitorIn,
)

router = APIRouter(prefix="/api/v1/registry", tags=["registry"], responses=ERROR_RESPONSES)
Reason = Annotated[str, Query(min_length=2, max_length=200, description="Why (audited).")]
MAX_UPLOAD = 20 * 1024 * 1024


@router.get("/facilities", response_model=list[Facility])
def get_facilities(conn: ConnDep) -> list[Facility]:
    """All facilities."""
    return store.list_facilities(conn)


@router.put("/facilities/{facility_id}")
def put_facility(facility_id: str, body: Facility, conn: ConnDep) -> dict[str, str]:
    """Create or update a facility."""
    if body.facility_id != facility_id:
        raise HTTPException(400, "facility_id in path and body differ")
    return {"change": store.upsert_facility(conn, facility=body)}


@router.get("/rules", response_model=list[CountingRule])
def get_rules(conn: ConnDep) -> list[CountingRule]:
    """The counting rules (how attendances become figures)."""
    return store.list_rules(conn)


@router.put("/rules/{rule_id}")
def put_rule(rule_id: str, body: CountingRule, conn: ConnDep, actor: ActorDep) -> dict[str, str]:
    """Create or change a counting rule (figures of every period follow the new rule)."""
    if body.rule_id != rule_id:
        raise HTTPException(400, "rule_id in path and body differ")
    change = store.upsert_rule(conn, rule=body)
    write_audit(
        conn, actor=actor, action="change", subject=f"rule:{rule_id}", detail=body.model_dump()
    )
    return {"change": change}


@router.get("/programs", response_model=list[ProgramWithTargets])
def get_programs(
    conn: ConnDep, facility_id: str | None = None, year: int | None = None
) -> list[ProgramWithTargets]:
    """Programs of a facility (or all) with their targets for a year."""
    return store.list_programs(conn, facility_id=facility_id, year=year)


@router.put("/programs/{program_id}")
def put_program(program_id: str, body: ProgramWithTargets, conn: ConnDep) -> dict[str, str]:
    """Create or update a program and, with a year, its targets."""
    if body.program_id != program_id:
        raise HTTPException(400, "program_id in path and body differ")
    program = Program.model_validate(body.model_dump(exclude={"year", "targets"}))
    try:
        change = store.upsert_program(conn, program=program, year=body.year, targets=body.targets)
    except store.RegistryError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {"change": change}


@router.get("/programs/{program_id}/schedule", response_model=Schedule)
def get_schedule(program_id: str, conn: ConnDep) -> Schedule:
    """A program's weekly sessions and cancelled days."""
    found = schedules.get_schedule(conn, program_id=program_id)
    if found is None:
        raise HTTPException(404, f"no program {program_id}")
    return found


@router.put("/programs/{program_id}/schedule", responses={422: {"description": "Overlaps"}})
def put_schedule(
    program_id: str, body: ScheduleIn, conn: ConnDep, actor: ActorDep
) -> dict[str, str]:
    """Replace a program's schedule; overlaps are refused with both sessions named (422).

    The kiosks serving the program get the new sittings within a minute.
    """
    try:
        changed = schedules.set_schedule(conn, program_id=program_id, schedule=body)
    except LookupError as exc:
        raise HTTPException(404, f"no program {program_id}") from exc
    except schedules.ScheduleError as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "sessions", index) if index is not None else ("body",),
                    "msg": message,
                    "type": "value_error",
                    "input": None,
                }
                for index, message in exc.problems
            ]
        ) from exc
    if changed:
        write_audit(conn, actor=actor, action="change", subject=f"schedule:{program_id}")
    return {"change": "updated" if changed else "unchanged"}


class ClosureIn(BaseModel):
    """Why the facility is closed that day (shown to staff)."""

    reason: str = Field(default="", max_length=120)


@router.get("/facilities/{facility_id}/closures", response_model=list[FacilityClosure])
def get_closures(
    facility_id: str, conn: ConnDep, start: date | None = None, end: date | None = None
) -> list[FacilityClosure]:
    """Days the whole facility is closed (holidays), optionally within [start, end]."""
    return schedules.list_closures(conn, facility_id=facility_id, start=start, end=end)


@router.put("/facilities/{facility_id}/closures/{on_date}")
def put_closure(
    facility_id: str, on_date: date, body: ClosureIn, conn: ConnDep, actor: ActorDep
) -> dict[str, str]:
    """Close the whole facility on a day: no program runs, kiosks say so."""
    try:
        changed = schedules.set_closure(
            conn, facility_id=facility_id, on_date=on_date, reason=body.reason
        )
    except LookupError as exc:
        raise HTTPException(404, f"no facility {facility_id}") from exc
    if changed:
        write_audit(conn, actor=actor, action="change", subject=f"closure:{facility_id}/{on_date}")
    return {"change": "updated" if changed else "unchanged"}


@router.delete("/facilities/{facility_id}/closures/{on_date}")
def delete_closure(
    facility_id: str, on_date: date, conn: ConnDep, actor: ActorDep
) -> dict[str, bool]:
    """Open the facility again on a day."""
    removed = schedules.delete_closure(conn, facility_id=facility_id, on_date=on_date)
    if not removed:
        raise HTTPException(404, f"facility {facility_id} is not closed on {on_date}")
    write_audit(conn, actor=actor, action="change", subject=f"closure:{facility_id}/{on_date}")
    return {"removed": True}


@router.put("/targets")
def put_node_target(body: NodeTarget, conn: ConnDep) -> dict[str, str]:
    """Set an explicit yearly target of a facility, a function, a business area or a unit."""
    store.set_node_target(conn, target=body)
    return {"change": "updated"}


@router.put("/members/{member_ref}")
def put_member(
    member_ref: str,
    body: MemberIn,
    conn: ConnDep,
    actor: ActorDep,
    key: KeyDep,
) -> dict[str, str]:
    """Register or update a member; card and NFC identifiers are stored only as keyed hashes."""
    if body.member_ref != member_ref:
        raise HTTPException(400, "member_ref in path and body differ")
    try:
        change = store.upsert_member(conn, member=body, key=key)
    except (store.RegistryError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from exc
    if change != "unchanged":
        write_audit(
            conn,
            actor=actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"change": change},
        )
    return {"change": change}


@router.get("/members/{member_ref}", response_model=Member)
def get_member(member_ref: str, conn: ConnDep, actor: ActorDep) -> Member:
    """A member, with phone and birth date masked (the view is audited)."""
    member = store.get_member(conn, member_ref=member_ref)
    if member is None:
        raise HTTPException(404, "no such member")
    write_audit(conn, actor=actor, action="view", subject=f"member:{member_ref}")
    return member


@router.get("/members/{member_ref}/sensitive", response_model=MemberSensitive)
def get_member_sensitive(
    member_ref: str, conn: ConnDep, actor: ActorDep, reason: Reason
) -> MemberSensitive:
    """Phone and birth date in clear: only with a reason, audited."""
    found = store.get_sensitive(conn, member_ref=member_ref)
    if found is None:
        raise HTTPException(404, "no such member")
    write_audit(
        conn, actor=actor, action="view", subject=f"member:{member_ref}:sensitive", reason=reason
    )
    return found


@router.post("/members/{member_ref}/status")
def post_status(
    member_ref: str, body: StatusChange, conn: ConnDep, actor: ActorDep
) -> dict[str, bool]:
    """Change a member's status (moved out / deceased: off every kiosk roster)."""
    if store.get_sensitive(conn, member_ref=member_ref) is None:
        raise HTTPException(404, "no such member")
    changed = store.set_status(conn, member_ref=member_ref, status=body.status)
    if changed:
        write_audit(
            conn,
            actor=actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"status": body.status},
        )
    return {"changed": changed}


@router.post("/visitors", status_code=201)
def post_visitor(body: VisitorIn, conn: ConnDep, actor: ActorDep) -> dict[str, str]:
    """Register a one-off visitor with an issued personal ID code."""
    change = store.register_visitor(conn, visitor=body)
    write_audit(conn, actor=actor, action="change", subject=f"visitor:{body.visitor_code}")
    return {"change": change}


@router.post("/contacts", status_code=201)
def post_contact(
    body: ContactIn, conn: ConnDep, actor: ActorDep, settings: SettingsDep
) -> dict[str, str]:
    """Record a resident met during community organizing."""
    change = store.register_contact(conn, contact=body, timezone=settings.timezone)
    write_audit(conn, actor=actor, action="change", subject=f"contact:{body.contact_code}")
    return {"change": change}


@router.post("/import/{kind}", response_model=ImportResult)
async def post_import(
    kind: Literal["members", "programs", "schedule", "closures"],
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    key: KeyDep,
    facility_id: Annotated[EntityId, Query()],
    filename: Annotated[str, Query(pattern=r"^[^/\\]{1,200}\.(xlsx|csv)$")],
    dry_run: bool = False,
) -> ImportResult:
    """Import a members or programs list (the file is the request body): all or nothing."""
    data = await request.body()
    if len(data) > MAX_UPLOAD:
        raise HTTPException(400, "file too large")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(tmp) / filename
            path.write_bytes(data)
            return await run_in_threadpool(
                lambda: import_file(
                    conn,
                    kind=kind,
                    path=path,
                    facility_id=facility_id,
                    key=key,
                    actor=actor,
                    dry_run=dry_run,
                )
            )
        except OSError as exc:  # a file name the file system refuses (too long, …)
            raise HTTPException(400, "unusable file name") from exc
        except ValueError as exc:  # an unreadable file
            raise HTTPException(400, str(exc)) from exc
