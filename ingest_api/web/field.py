"""Tablets in the field and services that never pass a kiosk.

- A one-off visitor: gender, age band, neighbourhood, purpose → a personal ID code, shown as a
  QR code (made on the server with segno, inline SVG) and printable; a returning visitor gives
  the code and reuses it.
- A resident met during community organizing: code, gender, age band, place, time, needs; a
  second meeting with the same resident (their code) is a new record.
- A service staff did by hand (counselling, home visit, phone check, meal delivery, case or
  network meeting) for a member or a group: counted by its program's rule in the figures
  (registry/services.py).
Every form is checked on the server (a message per field, nothing typed lost) and carries a
key, so a form sent twice from a tablet on bad Wi-Fi records once.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from broker.const import VISITOR_CODE_PATTERN
from broker.vocabulary import AGE_BANDS, Function
from ingest_api.core.audit import write_audit
from ingest_api.core.db import Conn
from ingest_api.core.deps import CipherDep, ConnDep, MembersReader, MembersWriter, SettingsDep
from ingest_api.core.security import Principal
from ingest_api.registry import desk, services, store
from ingest_api.registry.models import ContactIn
from ingest_api.web.api.registry import member_in_scope
from ingest_api.web.desk import GENDERS, FormDep, _facility, _programs, claimed, render
from ingest_api.web.desk_forms import FormCheck, new_form_key

router = APIRouter(include_in_schema=False)

AGES: Final = {band: band.replace("-", "–") + "세" for band in AGE_BANDS}
KINDS: Final = {k.value: label for k, label in services.SERVICE_LABELS.items()}
CONTACT_CODE_PATTERN: Final = r"C-[A-Za-z0-9]{1,32}-[0-9]{8}-[0-9]{3,4}"


def qr_svg(text: str) -> Markup:
    """A QR code of `text` as inline SVG (no script, no image request, no CDN)."""
    code = segno.make_qr(text, error="m")  # a full QR code: phones do not read Micro QR
    svg = code.svg_inline(border=4, dark="#000", light="#fff", omitsize=True)  # CSS sizes it
    return Markup(svg)  # noqa: S704 - segno's own SVG of our code, no user markup in it


def _now(settings: SettingsDep) -> tuple[ZoneInfo, datetime]:
    """The facility's time zone and the time now in it."""
    tz = ZoneInfo(settings.timezone)
    return tz, datetime.now(tz)


# -- visitors ------------------------------------------------------------------------------


def _visitor_context(
    conn: Conn, principal: Principal, values: dict[str, str], errors: dict[str, str]
) -> dict[str, Any]:
    """What the visitor form shows."""
    return {
        "values": values,
        "errors": errors,
        "genders": GENDERS,
        "ages": AGES,
        "programs": _programs(conn, principal),
    }


@router.get("/field/visitors", response_class=HTMLResponse)
def visitor_form(
    request: Request,
    conn: ConnDep,
    principal: MembersWriter,
    code: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Register a visitor, or find a returning one by their code."""
    facility = _facility(principal)
    errors: dict[str, str] = {}
    code = code.strip().upper()
    if code:
        if not re.fullmatch(VISITOR_CODE_PATTERN, code):
            errors["code"] = "방문자 코드는 V-기관-날짜-번호 형식입니다 (예: V-B-20261120-5001)."
        elif services.find_visitor(conn, visitor_code=code, facility_id=facility) is None:
            errors["code"] = "이 기관에 등록된 방문자 코드가 아닙니다."
        else:
            return RedirectResponse(f"/field/visitors/{code}", 303)
    context = _visitor_context(conn, principal, {"form_key": new_form_key(), "code": code}, errors)
    return render(request, principal, "field_visitor.html", context, 422 if errors else 200)


@router.post("/field/visitors", response_class=HTMLResponse)
def visitor_register(
    request: Request, conn: ConnDep, principal: MembersWriter, settings: SettingsDep, form: FormDep
) -> Response:
    """Issue a personal ID code to a one-off visitor."""
    facility = _facility(principal)
    check = FormCheck(form)
    gender = check.choice("gender", "성별", GENDERS)
    age = check.choice("age_band", "연령대", AGES)
    place = check.text("neighbourhood", "거주 동", max_len=40)
    purpose = check.text("purpose", "방문 목적", required=False, max_len=80) or ""
    program = check.choice(
        "program_id", "방문 프로그램", _programs(conn, principal), required=False
    )
    if not check.ok:
        context = _visitor_context(conn, principal, dict(check.values), check.errors)
        return render(request, principal, "field_visitor.html", context, 422)
    done = claimed(conn, principal, check, "visitor")
    if done is not None:
        return RedirectResponse(done, 303)
    _, now = _now(settings)
    code = services.issue_visitor(
        conn,
        facility_id=facility,
        day=now.date(),
        gender=str(gender),
        age_band=str(age),
        neighbourhood=str(place),
        purpose=purpose,
    )
    if program:
        visitor = services.find_visitor(conn, visitor_code=code, facility_id=facility)
        assert visitor is not None
        services.record_visit(
            conn, visitor=visitor, program_id=program, at=now, timezone=settings.timezone
        )
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"visitor:{code}",
        detail={"visit": program},
    )
    target = f"/field/visitors/{code}?new=1"
    desk.finish_form(conn, form_key=check.form_key(), result=target)
    return RedirectResponse(target, 303)


@router.get("/field/visitors/{visitor_code}", response_class=HTMLResponse)
def visitor_card(
    request: Request,
    visitor_code: str,
    conn: ConnDep,
    principal: MembersWriter,
    new: bool = False,
    visited: Annotated[str, Query(max_length=1)] = "",
) -> Response:
    """The visitor's code as a QR code, large and printable; their visits."""
    facility = _facility(principal)
    visitor = services.find_visitor(conn, visitor_code=visitor_code, facility_id=facility)
    if visitor is None:
        return render(
            request,
            principal,
            "field_visitor.html",
            _visitor_context(
                conn,
                principal,
                {"form_key": new_form_key(), "code": visitor_code},
                {"code": "이 기관에 등록된 방문자 코드가 아닙니다."},
            ),
            404,
        )
    context = _card_context(conn, principal, visitor, new)
    context["visited"] = visited
    return render(request, principal, "field_visitor_card.html", context)


def _card_context(
    conn: Conn,
    principal: Principal,
    visitor: services.Visitor,
    new: bool,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    """What a visitor's card shows: the code, its QR code, their visits, the visit form."""
    return {
        "v": visitor,
        "new": new,
        "saved": saved,
        "qr": qr_svg(visitor.visitor_code),
        "genders": GENDERS,
        "ages": AGES,
        "visits": services.visits(conn, visitor_code=visitor.visitor_code),
        "programs": _programs(conn, principal),
        "values": {"form_key": new_form_key()},
        "errors": errors or {},
    }


@router.post("/field/visitors/{visitor_code}/visits", response_class=HTMLResponse)
def visitor_visit(
    request: Request,
    visitor_code: str,
    conn: ConnDep,
    principal: MembersWriter,
    settings: SettingsDep,
    form: FormDep,
) -> Response:
    """A returning visitor's visit today, under their code (one a day per program)."""
    facility = _facility(principal)
    visitor = services.find_visitor(conn, visitor_code=visitor_code, facility_id=facility)
    if visitor is None:
        raise HTTPException(404, "이 기관에 등록된 방문자 코드가 아닙니다.")
    check = FormCheck(form)
    program = check.choice("program_id", "방문 프로그램", _programs(conn, principal))
    if not check.ok:
        context = _card_context(conn, principal, visitor, False, check.errors)
        return render(request, principal, "field_visitor_card.html", context, 422)
    done = claimed(conn, principal, check, "visit")
    if done is not None:
        return RedirectResponse(done, 303)
    _, now = _now(settings)
    recorded = services.record_visit(
        conn, visitor=visitor, program_id=str(program), at=now, timezone=settings.timezone
    )
    target = f"/field/visitors/{visitor_code}?visited={'1' if recorded else '0'}"
    desk.finish_form(conn, form_key=check.form_key(), result=target)
    if recorded:
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"visitor:{visitor_code}",
            detail={"visit": program},
        )
    return RedirectResponse(target, 303)


# -- residents met during community organizing ---------------------------------------------


def _organizing(conn: Conn, principal: Principal) -> dict[str, str]:
    """The programs a meeting counts under: the center's community-organizing ones first."""
    facility = _facility(principal)
    found = store.list_programs(conn, facility_id=facility)
    allowed = _programs(conn, principal)
    ordered = sorted(
        (p for p in found if p.program_id in allowed),
        key=lambda p: (p.function != Function.COMMUNITY_ORGANIZING.value, p.name),
    )
    return {p.program_id: p.name for p in ordered}


def _contact_context(
    conn: Conn,
    principal: Principal,
    settings: SettingsDep,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    saved: str = "",
) -> dict[str, Any]:
    """What the contact form shows, with the resident's earlier meetings when known."""
    facility = _facility(principal)
    tz = ZoneInfo(settings.timezone)
    code = values.get("contact_code", "")
    history = services.meetings(conn, facility_id=facility, contact_code=code) if code else []
    return {
        "values": values,
        "errors": errors,
        "genders": GENDERS,
        "ages": AGES,
        "programs": _organizing(conn, principal),
        "history": history,
        "recent": services.meetings(conn, facility_id=facility),
        "saved": saved,
        "tz": tz,
    }


@router.get("/field/contacts", response_class=HTMLResponse)
def contact_form(
    request: Request,
    conn: ConnDep,
    principal: MembersWriter,
    settings: SettingsDep,
    code: Annotated[str, Query(max_length=40)] = "",
    saved: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Record a meeting: a new resident gets a code; a known one (?code=) meets again."""
    facility = _facility(principal)
    _, now = _now(settings)
    values = {"form_key": new_form_key(), "met_at": now.strftime("%Y-%m-%dT%H:%M")}
    code = code.strip().upper()
    if code:
        history = services.meetings(conn, facility_id=facility, contact_code=code)
        if history:
            last = history[0]
            values |= {
                "contact_code": code,
                "gender": last.gender,
                "age_band": last.age_band,
                "neighbourhood": last.neighbourhood,
            }
    if "contact_code" not in values:
        values["contact_code"] = services.next_contact_code(
            conn, facility_id=facility, day=now.date()
        )
    if (organizing := _organizing(conn, principal)) and "program_id" not in values:
        values["program_id"] = next(iter(organizing))
    context = _contact_context(conn, principal, settings, values, {}, saved=saved)
    return render(request, principal, "field_contact.html", context)


@router.post("/field/contacts", response_class=HTMLResponse)
def contact_record(
    request: Request,
    conn: ConnDep,
    principal: MembersWriter,
    settings: SettingsDep,
    cipher: CipherDep,
    form: FormDep,
) -> Response:
    """Record one meeting with a resident (a second meeting is a second record)."""
    facility = _facility(principal)
    tz, now = _now(settings)
    check = FormCheck(form)
    code = check.text(
        "contact_code",
        "주민 코드",
        max_len=40,
        pattern=CONTACT_CODE_PATTERN,
        hint="예: C-B-20261120-001",
    )
    gender = check.choice("gender", "성별", GENDERS)
    age = check.choice("age_band", "연령대", AGES)
    place_home = check.text("neighbourhood", "거주 동", max_len=40)
    place = check.text("place", "만난 장소", max_len=80)
    met_at = check.moment("met_at", "만난 시각", tz=tz, now=now + timedelta(minutes=5))
    program = check.choice("program_id", "사업(프로그램)", _organizing(conn, principal))
    needs = check.text("needs", "욕구·필요", required=False, max_len=500) or ""
    if check.ok:
        # A second send lands where the first did; only then is the moment checked (the first
        # send's meeting holds it).
        done = claimed(conn, principal, check, "contact")
        if done is not None:
            return RedirectResponse(done, 303)
        if met_at is not None and services.meeting_at(conn, contact_code=str(code), met_at=met_at):
            conn.rollback()
            check.fail(
                "met_at", "이 주민과 같은 시각의 만남이 이미 기록되어 있습니다. 시각을 확인하세요."
            )
    if not check.ok:
        context = _contact_context(conn, principal, settings, dict(check.values), check.errors)
        return render(request, principal, "field_contact.html", context, 422)
    contact = ContactIn(
        contact_code=str(code),
        facility_id=facility,
        program_id=program,
        gender=gender,
        age_band=str(age),
        neighbourhood=str(place_home),
        place=str(place),
        met_at=met_at,
        needs=needs,
    )
    change = store.register_contact(
        conn, contact=contact, timezone=settings.timezone, cipher=cipher
    )
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"contact:{code}",
        detail={"change": change, "via": "field"},
    )
    target = f"/field/contacts?saved={code}"
    desk.finish_form(conn, form_key=check.form_key(), result=target)
    return RedirectResponse(target, 303)


# -- services staff record -------------------------------------------------------------------


def _service_context(
    conn: Conn,
    principal: Principal,
    settings: SettingsDep,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    saved: bool = False,
) -> dict[str, Any]:
    """What the services page shows: the form and the last week's records."""
    facility = _facility(principal)
    tz, now = _now(settings)
    return {
        "values": values,
        "errors": errors,
        "kinds": KINDS,
        "programs": _programs(conn, principal),
        "recent": services.recent_services(
            conn, facility_id=facility, since=(now - timedelta(days=7)).date()
        ),
        "tz": tz,
        "saved": saved,
    }


@router.get("/services", response_class=HTMLResponse)
def service_page(
    request: Request,
    conn: ConnDep,
    principal: MembersReader,
    settings: SettingsDep,
    member: Annotated[str, Query(max_length=64)] = "",
    saved: bool = False,
) -> Response:
    """Record a service done by hand; the week's records."""
    _, now = _now(settings)
    values = {
        "form_key": new_form_key(),
        "occurred_at": now.strftime("%Y-%m-%dT%H:%M"),
        "member_ref": member,
        "target": "member",
    }
    context = _service_context(conn, principal, settings, values, {}, saved=saved)
    response = render(request, principal, "desk_services.html", context)
    write_audit(
        conn, actor=principal.actor, action="view", subject=f"services:{_facility(principal)}"
    )
    return response


@router.post("/services", response_class=HTMLResponse)
def service_record(
    request: Request,
    conn: ConnDep,
    principal: MembersWriter,
    settings: SettingsDep,
    cipher: CipherDep,
    form: FormDep,
) -> Response:
    """Record a service for a member or a group; it counts by its program's rule."""
    facility = _facility(principal)
    tz, now = _now(settings)
    check = FormCheck(form)
    kind = check.choice("kind", "서비스 종류", KINDS)
    program = check.choice("program_id", "사업(프로그램)", _programs(conn, principal))
    target = check.choice("target", "대상", {"member": "회원", "group": "모임·기관"})
    member_ref = group = None
    if target == "member":
        member_ref = check.member_ref("member_ref", "회원번호")
        if member_ref and not store.member_in_scope(conn, member_ref=member_ref, scope=principal):
            check.fail("member_ref", "담당 범위에 그 번호의 회원이 없습니다. 번호를 확인하세요.")
    elif target == "group":
        group = check.text("group_name", "모임·기관 이름", max_len=80)
    occurred = check.moment("occurred_at", "서비스 일시", tz=tz, now=now + timedelta(minutes=5))
    note = check.text("note", "내용", required=False, max_len=1000) or ""
    if not check.ok:
        context = _service_context(conn, principal, settings, dict(check.values), check.errors)
        return render(request, principal, "desk_services.html", context, 422)
    done = claimed(conn, principal, check, "service")
    if done is not None:
        return RedirectResponse(done, 303)
    if member_ref is not None:
        member_in_scope(conn, principal, member_ref, "service")
    assert occurred is not None
    assert kind is not None
    assert program is not None
    service_id = services.record_service(
        conn,
        service=services.ServiceIn(
            facility_id=facility,
            program_id=program,
            kind=services.ServiceKind(kind),
            occurred_at=occurred,
            member_ref=member_ref,
            group_name=group,
            note=note,
        ),
        actor=principal.actor,
        cipher=cipher,
        timezone=settings.timezone,
    )
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"member:{member_ref}" if member_ref else f"service:{service_id}",
        detail={"service": kind, "service_id": service_id, "program_id": program},
    )
    result = "/services?saved=1"
    desk.finish_form(conn, form_key=check.form_key(), result=result)
    return RedirectResponse(result, 303)
