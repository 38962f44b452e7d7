"""Follow-up pages for staff: absence calls, and the contact list of an incident.

`/followup/absence` (members.read): members not seen for N of their program's service days,
most days first, with the calls made since they were last seen; staff record a call (outcome
and note) with a form whose hidden key makes a double submit one call. Every view of the list
and every call is audited. `/followup/contacts` (members.export, the center manager): everyone
recorded at the facility or a program in a time window, with members' phones, as an encrypted
file after a typed reason. Forms are checked on the server with a message per field and come
back filled in (passwords excepted) when something must be fixed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Final
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broker.const import ID_PATTERN
from ingest_api.core.audit import write_audit
from ingest_api.core.deps import (
    CipherDep,
    ConnDep,
    MembersExporter,
    MembersReader,
    MembersWriter,
    SensitiveReader,
    SettingsDep,
)
from ingest_api.core.downloads import MIN_FILE_PASSWORD, seal, table_csv, table_xlsx
from ingest_api.core.security import Permission, Principal
from ingest_api.registry import store
from ingest_api.registry.absence import NOTE_MAX, OUTCOMES, absent_members, record_call
from ingest_api.registry.incidents import contacts_in_window
from ingest_api.registry.lists import CONTACT_LIST_HEADER
from ingest_api.web.api.registry import member_not_found
from ingest_api.web.guard import templates
from ingest_api.web.signin import page_context

router = APIRouter(include_in_schema=False)
FacilityQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
FORMATS: Final = {"xlsx": "엑셀 (.xlsx, 암호)", "csv": "CSV (암호 zip)"}


def facility_of(principal: Principal, facility_id: str | None) -> str:
    """The center a page is about: one's own, or (city accounts) the one asked for."""
    chosen = facility_id or principal.facility_id
    if chosen is None:
        raise HTTPException(400, "기관을 고르세요 (facility_id).")
    if not principal.sees_facility(chosen):
        raise HTTPException(403, "다른 기관의 자료에는 접근할 수 없습니다")
    return chosen


def today_in(settings: SettingsDep) -> date:
    """Today in the facilities' time zone."""
    return datetime.now(ZoneInfo(settings.timezone)).date()


def download_errors(reason: str, password: str, password_again: str) -> dict[str, str]:
    """What a download form must fix: a typed reason and the file's password, twice."""
    errors: dict[str, str] = {}
    if len(reason.strip()) < 2:
        errors["reason"] = "다운로드 사유를 2자 이상 적으세요 (감사 기록에 남습니다)."
    if len(password) < MIN_FILE_PASSWORD:
        errors["password"] = f"파일 암호는 {MIN_FILE_PASSWORD}자 이상이어야 합니다."
    elif password != password_again:
        errors["password_again"] = "두 암호가 같지 않습니다."  # noqa: S105 (a message)
    return errors


# -- absence calls -------------------------------------------------------------------------


def _absence_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: Principal,
    cipher: CipherDep,
    *,
    facility_id: str,
    program_id: str | None,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The absence list with its call forms (errors and typed values of a refused form)."""
    rules = settings.followup
    today = today_in(settings)
    found = absent_members(
        conn,
        scope=principal,
        facility_id=facility_id,
        today=today,
        cipher=cipher,
        timezone=settings.timezone,
        default_days=rules.absence_days,
        lookback_days=rules.absence_lookback_days,
        flag_after=rules.unanswered_calls_flag,
        program_id=program_id,
    )
    programs = [
        p
        for p in store.list_programs(conn, facility_id=facility_id)
        if principal.program_ids is None or p.program_id in principal.program_ids
    ]
    page = templates.TemplateResponse(
        request,
        "followup_absence.html",
        {
            **page_context(principal),
            "facility_id": facility_id,
            "program_id": program_id,
            "programs": programs,
            "absent": found,
            "flagged": [a for a in found if a.flagged],
            "today": today,
            "outcomes": OUTCOMES,
            "errors": errors or {},
            "typed": typed or {},
            "done": done,
            "new_key": lambda: str(uuid4()),
            "tz": ZoneInfo(settings.timezone),
            "default_days": rules.absence_days,
            "flag_after": rules.unanswered_calls_flag,
            "lookback": rules.absence_lookback_days,
            "can_reveal": principal.can(Permission.MEMBERS_SENSITIVE),
        },
        status_code=status_code,
    )
    # Audited last: the audit chain's lock is held from here to the commit, so the page is
    # rendered before it (many staff read lists at once).
    write_audit(
        conn,
        actor=principal.actor,
        action="view",
        subject=f"absence:{facility_id}",
        detail={"program_id": program_id, "members": [a.member_ref for a in found][:200]},
    )
    return page


@router.get("/followup/absence", response_class=HTMLResponse)
def absence_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    cipher: CipherDep,
    principal: MembersReader,
    facility_id: FacilityQuery = None,
    program_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    done: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The absence list of the caller's center (or program), most days absent first."""
    return _absence_page(
        request,
        conn,
        settings,
        principal,
        cipher,
        facility_id=facility_of(principal, facility_id),
        program_id=program_id or None,
        done=done,
    )


@router.post("/followup/absence/calls", response_class=HTMLResponse)
def post_call(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    cipher: CipherDep,
    principal: MembersWriter,
    member_ref: Annotated[str, Form(max_length=64)] = "",
    program_id: Annotated[str, Form(max_length=64)] = "",
    call_id: Annotated[str, Form(max_length=64)] = "",
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    facility_id: Annotated[str, Form(max_length=64)] = "",
    shown_program: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Record one call; back to the list, or the list with what to fix beside the row.

    A call is a change to the member's record (members.write). A member outside the caller's
    scope answers 404 like an unknown one, audited as a denial.
    """
    facility = facility_of(principal, facility_id or None)
    errors: dict[str, str] = {}
    if outcome not in OUTCOMES:
        errors["outcome"] = "통화 결과를 고르세요."
    if len(note) > NOTE_MAX:
        errors["note"] = f"메모는 {NOTE_MAX}자까지 쓸 수 있습니다 (지금 {len(note)}자)."
    if outcome == "other" and not note.strip():
        errors["note"] = "'기타'를 고르면 메모에 내용을 적으세요."
    try:
        key = UUID(call_id)
    except ValueError:
        key = None
        errors["call_id"] = "페이지를 새로 열고 다시 기록하세요."
    if errors or key is None:
        return _absence_page(
            request,
            conn,
            settings,
            principal,
            cipher,
            facility_id=facility,
            program_id=shown_program or None,
            errors={f"{member_ref}/{program_id}/{k}": v for k, v in errors.items()},
            typed={
                "row": f"{member_ref}/{program_id}",
                "outcome": outcome,
                "note": note,
                "call_id": call_id,
            },
            status_code=400,
        )
    recorded = record_call(
        conn,
        scope=principal,
        call_id=key,
        member_ref=member_ref,
        program_id=program_id,
        outcome=outcome,
        note=note,
        cipher=cipher,
        at=datetime.now(UTC),
    )
    if recorded is None:
        member_not_found(conn, principal, member_ref, "absence call")
    if recorded:
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"absence_call": outcome, "program_id": program_id},
        )
    query = f"?done={member_ref}" + (f"&program_id={shown_program}" if shown_program else "")
    if principal.facility_id is None:
        query += f"&facility_id={facility}"
    return RedirectResponse(f"/followup/absence{query}#m-{member_ref}", 303)


@router.get("/followup/absence/phone", response_class=HTMLResponse)
def absence_phone(
    request: Request,
    conn: ConnDep,
    cipher: CipherDep,
    principal: SensitiveReader,
    member_ref: Annotated[str, Query(max_length=64)],
    reason: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """A member's phone in clear for the call: the manager, with a typed reason, audited.

    Answers a small piece of the page (htmx puts it in the row); without a reason it says so
    instead of showing the number.
    """
    if len(reason.strip()) < 2:
        return HTMLResponse(
            '<span class="field-error" role="alert">번호를 보려면 사유를 2자 이상 적으세요.</span>',
            status_code=400,
        )
    found = store.get_sensitive(conn, member_ref=member_ref, scope=principal, cipher=cipher)
    if found is None:
        member_not_found(conn, principal, member_ref, "absence phone")
    write_audit(
        conn,
        actor=principal.actor,
        action="view",
        subject=f"member:{member_ref}:sensitive",
        reason=reason.strip(),
        detail={"field": "phone", "for": "absence call"},
    )
    return templates.TemplateResponse(
        request, "followup_phone.html", {"phone": found.phone, "member_ref": member_ref}
    )


# -- incident contact list -------------------------------------------------------------------


def _contacts_page(
    request: Request,
    conn: ConnDep,
    principal: Principal,
    *,
    facility_id: str,
    typed: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The contact list's form."""
    return templates.TemplateResponse(
        request,
        "followup_contacts.html",
        {
            **page_context(principal),
            "facility_id": facility_id,
            "programs": store.list_programs(conn, facility_id=facility_id),
            "typed": typed,
            "errors": errors or {},
            "formats": FORMATS,
            "min_password": MIN_FILE_PASSWORD,
        },
        status_code=status_code,
    )


@router.get("/followup/contacts", response_class=HTMLResponse)
def contacts_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: MembersExporter,
    facility_id: FacilityQuery = None,
) -> HTMLResponse:
    """The form: facility or program, the window (default: today), format, reason, password."""
    today = today_in(settings)
    return _contacts_page(
        request,
        conn,
        principal,
        facility_id=facility_of(principal, facility_id),
        typed={"start": f"{today}T00:00", "end": f"{today}T23:59", "format": "xlsx"},
    )


def _local(text: str, tz: ZoneInfo) -> datetime | None:
    """A datetime-local field's value as an aware time, or None when it is not one."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


@router.post("/followup/contacts", response_model=None)
def post_contacts(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    cipher: CipherDep,
    principal: MembersExporter,
    start: Annotated[str, Form(max_length=40)] = "",
    end: Annotated[str, Form(max_length=40)] = "",
    program_id: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=400)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    password_again: Annotated[str, Form(max_length=200)] = "",
    file_format: Annotated[str, Form(alias="format", max_length=8)] = "xlsx",
    facility_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The list as an encrypted file (reason audited), or the form with what to fix."""
    facility = facility_of(principal, facility_id or None)
    tz = ZoneInfo(settings.timezone)
    errors: dict[str, str] = {}
    since, until = _local(start, tz), _local(end, tz)
    if since is None:
        errors["start"] = "시작 일시를 입력하세요 (예: 2026-11-20 11:00)."
    if until is None:
        errors["end"] = "끝 일시를 입력하세요 (예: 2026-11-20 14:00)."
    if since is not None and until is not None:
        if until <= since:
            errors["end"] = "끝 일시는 시작 일시보다 뒤여야 합니다."
        elif (until - since).days > 31:
            errors["end"] = "한 번에 31일까지 받을 수 있습니다."
    programs = {p.program_id for p in store.list_programs(conn, facility_id=facility)}
    if program_id and program_id not in programs:
        errors["program_id"] = "이 기관의 프로그램을 고르세요."
    errors.update(download_errors(reason, password, password_again))
    if file_format not in FORMATS:
        errors["format"] = "파일 형식을 고르세요."
    if errors or since is None or until is None:
        typed = {
            "start": start,
            "end": end,
            "program_id": program_id,
            "reason": reason,
            "format": file_format,
        }
        return _contacts_page(
            request,
            conn,
            principal,
            facility_id=facility,
            typed=typed,
            errors=errors,
            status_code=400,
        )
    rows = contacts_in_window(
        conn,
        facility_id=facility,
        start=since,
        end=until,
        cipher=cipher,
        timezone=settings.timezone,
        program_id=program_id or None,
    )
    name = f"contacts_{facility}_{since:%Y%m%d%H%M}-{until:%Y%m%d%H%M}.{file_format}"
    content = (
        table_xlsx("접촉자명단", CONTACT_LIST_HEADER, rows)
        if file_format == "xlsx"
        else table_csv(CONTACT_LIST_HEADER, rows)
    )
    sealed = seal(name, content, password=password)  # before the audit row takes its lock
    write_audit(
        conn,
        actor=principal.actor,
        action="download",
        subject=f"contacts:{facility}:{since.isoformat()}..{until.isoformat()}",
        reason=reason.strip(),
        detail={"rows": len(rows), "program_id": program_id or None, "format": file_format},
    )
    return sealed.response()
