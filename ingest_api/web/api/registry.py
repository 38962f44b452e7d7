"""Registry API: facilities, counting rules, programs and targets, members, visitors, contacts.

Every route names its permission; member routes read through the caller's scope, so another
center's member answers 404 (its existence is not revealed) and the attempt is audited. Every
view, search, download and change of a member is audited; sensitive fields need a reason;
lists of people are downloads (reason, encrypted file); a member's rights (export, erasure)
are the center manager's.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from broker.vocabulary import EntityId
from ingest_api.core.audit import write_audit
from ingest_api.core.db import Conn
from ingest_api.core.deps import (
    ERROR_RESPONSES,
    CipherDep,
    ConnDep,
    KeyDep,
    MembersExporter,
    MembersImporter,
    MembersReader,
    MembersWriter,
    RegistryManager,
    RegistryReader,
    RightsOfficer,
    SensitiveReader,
    SettingsDep,
)
from ingest_api.core.downloads import XLSX, ZIP, DownloadRequest, seal, table_csv, table_xlsx
from ingest_api.core.security import AccessDenied, Permission, Principal
from ingest_api.registry import schedules, store
from ingest_api.registry.importer import import_file
from ingest_api.registry.lists import (
    CONTACT_LIST_HEADER,
    MEMBER_LIST_HEADER,
    contact_list,
    member_list,
)
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
    missing_consents,
)
from ingest_api.registry.rights import erase_member, member_record

router = APIRouter(prefix="/api/v1/registry", tags=["registry"], responses=ERROR_RESPONSES)
Reason = Annotated[str, Query(min_length=2, max_length=200, description="Why (audited).")]
MAX_UPLOAD = 20 * 1024 * 1024
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {}, ZIP: {}}, "description": "Encrypted file"}
}


def _file(name: str, content: bytes, password: str) -> Response:
    """An encrypted download."""
    return seal(name, content, password=password).response()


def _list_facility(principal: Principal, facility_id: str | None) -> str:
    """The center a list of people is taken from: one's own, or a named one within scope."""
    chosen = facility_id or principal.facility_id
    if chosen is None:
        raise HTTPException(400, "facility_id is needed")
    principal.check_facility(chosen)
    return chosen


def member_not_found(conn: Conn, principal: Principal, member_ref: str, what: str) -> NoReturn:
    """404 for a member outside the caller's scope (or none), audited as a denial.

    The denial is committed before the answer: the request itself changes nothing.
    """
    write_audit(
        conn,
        actor=principal.actor,
        action="denied",
        subject=f"member:{member_ref}",
        detail={"request": what, "exists": store.member_exists(conn, member_ref=member_ref)},
    )
    conn.commit()
    raise HTTPException(404, "no such member")


def member_in_scope(conn: Conn, principal: Principal, member_ref: str, what: str) -> None:
    """Go on only with a member the caller may see (else an audited 404)."""
    if not store.member_in_scope(conn, member_ref=member_ref, scope=principal):
        member_not_found(conn, principal, member_ref, what)


@router.get("/facilities", response_model=list[Facility])
def get_facilities(conn: ConnDep, _: RegistryReader) -> list[Facility]:
    """All facilities."""
    return store.list_facilities(conn)


@router.put("/facilities/{facility_id}")
def put_facility(
    facility_id: str, body: Facility, conn: ConnDep, principal: RegistryManager
) -> dict[str, str]:
    """Create or update a facility (the city's administrators)."""
    principal.check_facility(None)
    if body.facility_id != facility_id:
        raise HTTPException(400, "facility_id in path and body differ")
    change = store.upsert_facility(conn, facility=body)
    if change != "unchanged":
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"facility:{facility_id}",
            detail=body.model_dump(),
        )
    return {"change": change}


@router.get("/rules", response_model=list[CountingRule])
def get_rules(conn: ConnDep, _: RegistryReader) -> list[CountingRule]:
    """The counting rules (how attendances become figures)."""
    return store.list_rules(conn)


@router.put("/rules/{rule_id}")
def put_rule(
    rule_id: str, body: CountingRule, conn: ConnDep, principal: RegistryManager
) -> dict[str, str]:
    """Create or change a counting rule (city-wide; figures of every period follow it)."""
    principal.check_facility(None)
    if body.rule_id != rule_id:
        raise HTTPException(400, "rule_id in path and body differ")
    change = store.upsert_rule(conn, rule=body)
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"rule:{rule_id}",
        detail=body.model_dump(),
    )
    return {"change": change}


@router.get("/programs", response_model=list[ProgramWithTargets])
def get_programs(
    conn: ConnDep, _: RegistryReader, facility_id: str | None = None, year: int | None = None
) -> list[ProgramWithTargets]:
    """Programs of a facility (or all) with their targets for a year."""
    return store.list_programs(conn, facility_id=facility_id, year=year)


@router.put("/programs/{program_id}")
def put_program(
    program_id: str, body: ProgramWithTargets, conn: ConnDep, principal: RegistryManager
) -> dict[str, str]:
    """Create or update a program of one's own center and, with a year, its targets."""
    if body.program_id != program_id:
        raise HTTPException(400, "program_id in path and body differ")
    principal.check_facility(body.facility_id)
    row = conn.execute(
        "SELECT facility_id FROM programs WHERE program_id = %s", (program_id,)
    ).fetchone()
    if row is not None:
        principal.check_facility(row[0])
    program = Program.model_validate(body.model_dump(exclude={"year", "targets"}))
    try:
        change = store.upsert_program(conn, program=program, year=body.year, targets=body.targets)
    except store.RegistryError as exc:
        raise HTTPException(400, str(exc)) from exc
    if change != "unchanged":
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"program:{program_id}",
            detail={"change": change},
        )
    return {"change": change}


def _program_facility(conn: Conn, program_id: str) -> str:
    """The facility of a program, or 404."""
    row = conn.execute(
        "SELECT facility_id FROM programs WHERE program_id = %s", (program_id,)
    ).fetchone()
    if row is None:
        raise HTTPException(404, f"no program {program_id}")
    return str(row[0])


@router.get("/programs/{program_id}/schedule", response_model=Schedule)
def get_schedule(program_id: str, conn: ConnDep, _reader: RegistryReader) -> Schedule:
    """A program's weekly sessions and cancelled days."""
    found = schedules.get_schedule(conn, program_id=program_id)
    if found is None:
        raise HTTPException(404, f"no program {program_id}")
    return found


@router.put("/programs/{program_id}/schedule", responses={422: {"description": "Overlaps"}})
def put_schedule(
    program_id: str, body: ScheduleIn, conn: ConnDep, principal: RegistryManager
) -> dict[str, str]:
    """Replace a program's schedule; overlaps are refused with both sessions named (422).

    The kiosks serving the program get the new sittings within a minute.
    """
    principal.check_facility(_program_facility(conn, program_id))
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
        write_audit(conn, actor=principal.actor, action="change", subject=f"schedule:{program_id}")
    return {"change": "updated" if changed else "unchanged"}


class ClosureIn(BaseModel):
    """Why the facility is closed that day (shown to staff)."""

    reason: str = Field(default="", max_length=120)


@router.get("/facilities/{facility_id}/closures", response_model=list[FacilityClosure])
def get_closures(
    facility_id: str,
    conn: ConnDep,
    _reader: RegistryReader,
    start: date | None = None,
    end: date | None = None,
) -> list[FacilityClosure]:
    """Days the whole facility is closed (holidays), optionally within [start, end]."""
    return schedules.list_closures(conn, facility_id=facility_id, start=start, end=end)


@router.put("/facilities/{facility_id}/closures/{on_date}")
def put_closure(
    facility_id: str, on_date: date, body: ClosureIn, conn: ConnDep, principal: RegistryManager
) -> dict[str, str]:
    """Close the whole facility on a day: no program runs, kiosks say so."""
    principal.check_facility(facility_id)
    try:
        changed = schedules.set_closure(
            conn, facility_id=facility_id, on_date=on_date, reason=body.reason
        )
    except LookupError as exc:
        raise HTTPException(404, f"no facility {facility_id}") from exc
    if changed:
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"closure:{facility_id}/{on_date}",
        )
    return {"change": "updated" if changed else "unchanged"}


@router.delete("/facilities/{facility_id}/closures/{on_date}")
def delete_closure(
    facility_id: str, on_date: date, conn: ConnDep, principal: RegistryManager
) -> dict[str, bool]:
    """Open the facility again on a day."""
    principal.check_facility(facility_id)
    removed = schedules.delete_closure(conn, facility_id=facility_id, on_date=on_date)
    if not removed:
        raise HTTPException(404, f"facility {facility_id} is not closed on {on_date}")
    write_audit(
        conn, actor=principal.actor, action="change", subject=f"closure:{facility_id}/{on_date}"
    )
    return {"removed": True}


@router.put("/targets")
def put_node_target(body: NodeTarget, conn: ConnDep, principal: RegistryManager) -> dict[str, str]:
    """Set an explicit yearly target of a facility, a function, a business area or a unit."""
    principal.check_facility(None if body.facility_id == "*" else body.facility_id)
    store.set_node_target(conn, target=body)
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"target:{body.facility_id}:{body.year}:{body.node}",
    )
    return {"change": "updated"}


@router.get("/members", response_model=list[Member])
def search_members(
    conn: ConnDep,
    principal: MembersReader,
    cipher: CipherDep,
    name: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    phone_last4: Annotated[str | None, Query(pattern=r"^[0-9]{4}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[Member]:
    """Find members in one's scope by part of the name and/or the phone's last four digits."""
    if name is None and phone_last4 is None:
        raise HTTPException(400, "give name or phone_last4")
    found = store.search_members(
        conn, scope=principal, cipher=cipher, name=name, phone_last4=phone_last4, limit=limit
    )
    write_audit(
        conn,
        actor=principal.actor,
        action="search",
        subject=f"members:{principal.facility_id or 'city'}",
        detail={
            "name": name,
            "phone_last4": phone_last4 is not None,
            "results": [m.member_ref for m in found],
        },
    )
    return found


class MemberListRequest(DownloadRequest):
    """A center's member list: format, phone in clear or masked, reason, file password."""

    facility_id: EntityId | None = None
    format: Literal["xlsx", "csv"] = "xlsx"
    with_phone: bool = False


@router.post("/members/export", response_class=Response, responses=FILE_RESPONSES)
def post_member_list(
    conn: ConnDep, principal: MembersExporter, cipher: CipherDep, body: MemberListRequest
) -> Response:
    """The center's member list as an encrypted file (a download: reason audited)."""
    facility_id = _list_facility(principal, body.facility_id)
    rows = member_list(conn, facility_id=facility_id, cipher=cipher, with_phone=body.with_phone)
    write_audit(
        conn,
        actor=principal.actor,
        action="download",
        subject=f"members:{facility_id}",
        reason=body.reason,
        detail={"rows": len(rows), "with_phone": body.with_phone, "format": body.format},
    )
    name = f"members_{facility_id}_{datetime.now(UTC):%Y%m%d}.{body.format}"
    content = (
        table_xlsx("회원명단", MEMBER_LIST_HEADER, rows)
        if body.format == "xlsx"
        else table_csv(MEMBER_LIST_HEADER, rows)
    )
    return _file(name, content, body.password)


class ContactListRequest(DownloadRequest):
    """The contact list of an incident: who was at a facility (or a program) on a day."""

    day: date
    facility_id: EntityId | None = None
    program_id: EntityId | None = None
    format: Literal["xlsx", "csv"] = "xlsx"


@router.post("/contacts/export", response_class=Response, responses=FILE_RESPONSES)
def post_contact_list(
    conn: ConnDep,
    principal: MembersExporter,
    cipher: CipherDep,
    settings: SettingsDep,
    body: ContactListRequest,
) -> Response:
    """Everyone recorded on that day, with members' phones (after an incident; audited)."""
    facility_id = _list_facility(principal, body.facility_id)
    rows = contact_list(
        conn,
        facility_id=facility_id,
        day=body.day,
        program_id=body.program_id,
        cipher=cipher,
        timezone=settings.timezone,
    )
    write_audit(
        conn,
        actor=principal.actor,
        action="download",
        subject=f"contacts:{facility_id}:{body.day}",
        reason=body.reason,
        detail={"rows": len(rows), "program_id": body.program_id, "format": body.format},
    )
    name = f"contacts_{facility_id}_{body.day:%Y%m%d}.{body.format}"
    content = (
        table_xlsx("접촉자명단", CONTACT_LIST_HEADER, rows)
        if body.format == "xlsx"
        else table_csv(CONTACT_LIST_HEADER, rows)
    )
    return _file(name, content, body.password)


@router.put("/members/{member_ref}")
def put_member(
    member_ref: str,
    body: MemberIn,
    conn: ConnDep,
    principal: MembersWriter,
    key: KeyDep,
    cipher: CipherDep,
) -> dict[str, str]:
    """Register or correct a member of one's own center (card/NFC identifiers hashed at once).

    Staff with assigned programs enrol only in those programs.
    """
    if body.member_ref != member_ref:
        raise HTTPException(400, "member_ref in path and body differ")
    if store.member_exists(conn, member_ref=member_ref):
        member_in_scope(conn, principal, member_ref, "change")
    principal.check_facility(body.facility_id)
    if principal.program_ids is not None and not (
        body.programs and set(body.programs) <= set(principal.program_ids)
    ):
        raise AccessDenied("담당 프로그램의 회원만 등록할 수 있습니다")
    if not store.member_exists(conn, member_ref=member_ref) and (
        missing := missing_consents(body.consents)
    ):
        # The same rule as the desk's form: nobody is registered without the required consents.
        raise HTTPException(
            422,
            "required consents missing: "
            + ", ".join(k.value for k in missing)
            + " (개인정보 수집·이용 동의와 시·연구원 제공 동의가 없으면 등록할 수 없습니다)",
        )
    try:
        change = store.upsert_member(conn, member=body, key=key, cipher=cipher)
    except (store.RegistryError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from exc
    if change != "unchanged":
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"change": change},
        )
    return {"change": change}


@router.get("/members/{member_ref}", response_model=Member)
def get_member(
    member_ref: str, conn: ConnDep, principal: MembersReader, cipher: CipherDep
) -> Member:
    """A member, with phone and birth date masked (the view is audited)."""
    member = store.get_member(conn, member_ref=member_ref, scope=principal, cipher=cipher)
    if member is None:
        member_not_found(conn, principal, member_ref, "view")
    write_audit(conn, actor=principal.actor, action="view", subject=f"member:{member_ref}")
    return member


@router.get("/members/{member_ref}/sensitive", response_model=MemberSensitive)
def get_member_sensitive(
    member_ref: str, conn: ConnDep, principal: SensitiveReader, cipher: CipherDep, reason: Reason
) -> MemberSensitive:
    """Phone and birth date in clear: the manager, with a reason, audited."""
    found = store.get_sensitive(conn, member_ref=member_ref, scope=principal, cipher=cipher)
    if found is None:
        member_not_found(conn, principal, member_ref, "sensitive")
    write_audit(
        conn,
        actor=principal.actor,
        action="view",
        subject=f"member:{member_ref}:sensitive",
        reason=reason,
    )
    return found


@router.post("/members/{member_ref}/status")
def post_status(
    member_ref: str, body: StatusChange, conn: ConnDep, principal: MembersWriter
) -> dict[str, bool]:
    """Change a member's status (moved out / deceased: off every kiosk roster)."""
    member_in_scope(conn, principal, member_ref, "status")
    if body.status == "erased":
        raise HTTPException(400, "erasure is a member's right: POST …/rights/erase")
    changed = store.set_status(conn, member_ref=member_ref, status=body.status)
    if changed:
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"status": body.status},
        )
    return {"changed": changed}


@router.post(
    "/members/{member_ref}/rights/export", response_class=Response, responses=FILE_RESPONSES
)
def post_rights_export(
    member_ref: str,
    conn: ConnDep,
    principal: RightsOfficer,
    cipher: CipherDep,
    body: DownloadRequest,
) -> Response:
    """Everything held about a member, for the member (JSON in an AES zip; audited)."""
    member_in_scope(conn, principal, member_ref, "rights_export")
    record = member_record(conn, member_ref=member_ref, cipher=cipher)
    write_audit(
        conn,
        actor=principal.actor,
        action="download",
        subject=f"member:{member_ref}:record",
        reason=body.reason,
    )
    content = json.dumps(record, ensure_ascii=False, indent=2).encode()
    return _file(f"member_{member_ref}.json", content, body.password)


class ErasureRequest(BaseModel):
    """Why a member's data is erased (their request, the end of the service, …)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=200)


@router.post("/members/{member_ref}/rights/erase")
def post_rights_erase(
    member_ref: str, conn: ConnDep, principal: RightsOfficer, body: ErasureRequest
) -> dict[str, int]:
    """Erase a member's personal data and credentials; their attendances keep counting under
    a random pseudonym, so the figures do not change."""
    member_in_scope(conn, principal, member_ref, "erase")
    moved = erase_member(conn, member_ref=member_ref)
    write_audit(
        conn,
        actor=principal.actor,
        action="erase",
        subject=f"member:{member_ref}",
        reason=body.reason,
        detail=dict(moved),
    )
    return moved


@router.post("/visitors", status_code=201)
def post_visitor(body: VisitorIn, conn: ConnDep, principal: MembersWriter) -> dict[str, str]:
    """Register a one-off visitor with an issued personal ID code."""
    principal.check_facility(body.facility_id)
    change = store.register_visitor(conn, visitor=body)
    write_audit(
        conn, actor=principal.actor, action="change", subject=f"visitor:{body.visitor_code}"
    )
    return {"change": change}


@router.post("/contacts", status_code=201)
def post_contact(
    body: ContactIn,
    conn: ConnDep,
    principal: MembersWriter,
    settings: SettingsDep,
    cipher: CipherDep,
) -> dict[str, str]:
    """Record a resident met during community organizing (their needs stored encrypted)."""
    principal.check_facility(body.facility_id)
    change = store.register_contact(conn, contact=body, timezone=settings.timezone, cipher=cipher)
    write_audit(
        conn, actor=principal.actor, action="change", subject=f"contact:{body.contact_code}"
    )
    return {"change": change}


@router.post("/import/{kind}", response_model=ImportResult)
async def post_import(
    kind: Literal["members", "programs", "schedule", "closures"],
    request: Request,
    conn: ConnDep,
    principal: MembersImporter,
    key: KeyDep,
    cipher: CipherDep,
    facility_id: Annotated[EntityId, Query()],
    filename: Annotated[str, Query(pattern=r"^[^/\\]{1,200}\.(xlsx|csv)$")],
    dry_run: bool = False,
) -> ImportResult:
    """Import a members or programs list of one's center (the file is the body): all or none."""
    principal.check_facility(facility_id)
    if kind == "programs" and not principal.can(Permission.REGISTRY_MANAGE):
        raise AccessDenied("프로그램 목록은 관리자만 등록할 수 있습니다")
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
                    cipher=cipher,
                    actor=principal.actor,
                    dry_run=dry_run,
                )
            )
        except OSError as exc:  # a file name the file system refuses (too long, …)
            raise HTTPException(400, "unusable file name") from exc
        except ValueError as exc:  # an unreadable file
            raise HTTPException(400, str(exc)) from exc
