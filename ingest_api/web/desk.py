"""The staff desk: find a member (number, name, phone's last four digits, or a card tapped on
the desk reader), register and correct them with their consents, enrol them, issue and revoke
cards by a tap, change their status and see what it does to the kiosks.

Pages in Korean for a 10-inch tablet and a desktop, by touch and by keyboard; every form is
checked on the server (a message per field, nothing typed lost) and carries a key so a double
send records once. Members are read through the caller's scope (registry/store.py: _VISIBLE):
another center's member is not found, and the attempt is audited. A desk USB reader is a
keyboard: it types the card's UID and Enter into the focused field; the server hashes it with
the facility's key as the kiosks do and keeps no clear UID.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from broker.const import MEMBER_REF_PATTERN
from broker.vocabulary import GENDER_LABELS, STATUS_LABELS, ConsentKind, MemberStatus
from ingest_api.core.audit import write_audit
from ingest_api.core.db import Conn
from ingest_api.core.deps import (
    CipherDep,
    ConnDep,
    KeyDep,
    MembersReader,
    MembersWriter,
    SensitiveReader,
    SettingsDep,
)
from ingest_api.core.security import AccessDenied, Permission, Principal
from ingest_api.registry import desk, store
from ingest_api.registry.models import REQUIRED_CONSENTS as REQUIRED
from ingest_api.registry.models import Consent, MemberIn, MemberSensitive
from ingest_api.web.api.registry import member_in_scope, member_not_found
from ingest_api.web.desk_forms import FormCheck, new_form_key
from ingest_api.web.guard import templates
from ingest_api.web.signin import page_context

router = APIRouter(include_in_schema=False)

FEE_LABELS: Final = {"": "프로그램 기본", "paid": "유료", "reduced": "감면", "free": "무료"}
GENDERS: Final = {g.value: label for g, label in GENDER_LABELS.items()}
# What staff may set at the desk (erasure is a member's right, elsewhere).
DESK_STATUSES: Final = {
    s.value: STATUS_LABELS[s]
    for s in (
        MemberStatus.ACTIVE,
        MemberStatus.SUSPENDED,
        MemberStatus.MOVED_OUT,
        MemberStatus.DECEASED,
    )
}
CONSENT_LABELS: Final = {
    ConsentKind.PRIVACY.value: "개인정보 수집·이용 동의 (필수)",
    ConsentKind.TRANSFER.value: "시·연구원 제공 동의 (필수: 실적 보고)",
    ConsentKind.SENSITIVE.value: "민감정보(수급·장애) 처리 동의",
    ConsentKind.FACE.value: "얼굴 인식 출석 동의 (선택, 별도)",
    ConsentKind.SMS.value: "문자 안내 수신 동의 (선택)",
}
# Face consent is separate and never a box on the general form: it is recorded on the member's
# face page with the signed form's id and who took it, and only it allows enrolment
# (registry/face.py, docs/face.md). Older `face` rows of member_consents are shown, not edited.
FORM_CONSENTS: Final = {k: v for k, v in CONSENT_LABELS.items() if k != ConsentKind.FACE.value}
REQUIRED_CONSENTS: Final = tuple(k.value for k in REQUIRED)
PHONE_PATTERN: Final = r"[0-9+\-() ]{7,20}"
UID_PATTERN: Final = r"[0-9A-Fa-f:\- ]{4,40}"


async def form_data(request: Request) -> FormData:
    """The sent form (already read by the CSRF check; cached on the request)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def render(
    request: Request,
    principal: Principal,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    """A desk or field page in the shared frame."""
    return templates.TemplateResponse(
        request, name, {**page_context(principal), **context}, status_code=status_code
    )


def _facility(principal: Principal) -> str:
    """The center a desk works for: the caller's own (city accounts have no desk)."""
    if principal.facility_id is None:
        raise AccessDenied("회원 창구는 기관 계정으로 사용합니다")
    return principal.facility_id


def _programs(conn: Conn, principal: Principal) -> dict[str, str]:
    """The programs staff may enrol in: their center's active ones (their own, if assigned)."""
    found = store.list_programs(conn, facility_id=_facility(principal))
    return {
        p.program_id: p.name
        for p in found
        if p.active and (principal.program_ids is None or p.program_id in principal.program_ids)
    }


def _read_member(
    conn: Conn, principal: Principal, cipher: CipherDep, member_ref: str, what: str
) -> Any:
    """A member within the caller's scope (else an audited 404)."""
    member = store.get_member(conn, member_ref=member_ref, scope=principal, cipher=cipher)
    if member is None:
        member_not_found(conn, principal, member_ref, what)
    return member


# -- search ------------------------------------------------------------------------------------


def _classify(query: str) -> tuple[str, str]:
    """What a search box holds: a phone's last four digits, a member number, or a name."""
    text = query.strip()
    if len(text) == 4 and text.isdigit():
        return "phone_last4", text
    if any(c.isdigit() for c in text) and re.fullmatch(MEMBER_REF_PATTERN, text):
        return "member_ref", text
    return "name", text


@router.get("/desk", response_class=HTMLResponse)
def desk_search(
    request: Request,
    conn: ConnDep,
    principal: MembersReader,
    cipher: CipherDep,
    q: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The desk: one box for a number, a name or a phone's last four digits; the card field."""
    facility = _facility(principal)
    found = None
    message = ""
    if q.strip():
        kind, term = _classify(q)
        if kind == "member_ref":
            member = store.get_member(conn, member_ref=term, scope=principal, cipher=cipher)
            found = [member] if member else []
        else:
            found = store.search_members(
                conn,
                scope=principal,
                cipher=cipher,
                name=term if kind == "name" else None,
                phone_last4=term if kind == "phone_last4" else None,
                limit=30,
            )
        if not found:
            message = "찾는 회원이 없습니다. 번호·이름·전화 끝 4자리를 확인하세요."
    response: Response = render(
        request,
        principal,
        "desk_search.html",
        {"q": q, "found": found, "message": message, "statuses": STATUS_LABELS},
    )
    if found is not None:
        if len(found) == 1 and kind == "member_ref":
            response = RedirectResponse(f"/desk/members/{found[0].member_ref}", 303)
        # Audited last: the audit log's lock is held from here to the commit, so the page is
        # made before it (every desk waits for that lock in turn).
        write_audit(
            conn,
            actor=principal.actor,
            action="search",
            subject=f"members:{facility}",
            detail={
                "by": kind,
                "name": term if kind == "name" else None,
                "results": [m.member_ref for m in found],
            },
        )
    return response


@router.post("/desk/card", response_class=HTMLResponse)
def desk_card(
    request: Request,
    conn: ConnDep,
    principal: MembersReader,
    key: KeyDep,
    form: FormDep,
) -> Response:
    """A card tapped on the desk reader: to its member's page (the UID is hashed, not kept)."""
    facility = _facility(principal)
    check = FormCheck(form)
    uid = check.text("uid", "카드 번호", pattern=UID_PATTERN, hint="카드를 리더기에 대 주세요.")
    if uid is None:
        return render(
            request,
            principal,
            "desk_search.html",
            {"q": "", "found": None, "message": check.errors["uid"], "statuses": STATUS_LABELS},
            status_code=422,
        )
    ref = desk.find_by_card(conn, uid=uid, facility_id=facility, key=key, scope=principal)
    write_audit(
        conn,
        actor=principal.actor,
        action="search",
        subject=f"members:{facility}",
        detail={"by": "card", "results": [ref] if ref else []},
    )
    if ref is None:
        return render(
            request,
            principal,
            "desk_search.html",
            {
                "q": "",
                "found": None,
                "message": "등록되지 않은 카드입니다. 회원을 찾아 카드를 발급하세요.",
                "statuses": STATUS_LABELS,
            },
            status_code=404,
        )
    return RedirectResponse(f"/desk/members/{ref}", 303)


# -- register and correct -------------------------------------------------------------------


def _member_form_context(
    conn: Conn,
    principal: Principal,
    *,
    values: dict[str, str],
    consents: list[str],
    errors: dict[str, str],
    editing: str | None,
) -> dict[str, Any]:
    """What the register/edit form shows."""
    return {
        "values": values,
        "consents": consents,
        "errors": errors,
        "editing": editing,
        "genders": GENDERS,
        "consent_labels": FORM_CONSENTS,
        "required_consents": REQUIRED_CONSENTS,
        "programs": _programs(conn, principal),
        "fees": FEE_LABELS,
    }


@router.get("/desk/members/new", response_class=HTMLResponse)
def member_new_form(request: Request, conn: ConnDep, principal: MembersWriter) -> Response:
    """The registration form, with a free member number and today's date for the consents."""
    facility = _facility(principal)
    values = {
        "member_ref": desk.next_member_ref(conn, facility_id=facility),
        "form_key": new_form_key(),
    }
    context = _member_form_context(
        conn, principal, values=values, consents=[], errors={}, editing=None
    )
    return render(request, principal, "desk_member_form.html", context)


def _check_member(
    check: FormCheck, *, editing: bool, programs: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """The member fields and consents of a sent register/edit form (errors in `check`)."""
    fields: dict[str, Any] = {
        "display_name": check.text("display_name", "이름", max_len=40),
        "gender": check.choice("gender", "성별", GENDERS),
        "birth_date": check.day("birth_date", "생년월일", required=not editing),
        "phone": check.text(
            "phone", "전화번호", required=False, pattern=PHONE_PATTERN, hint="예: 010-1234-5678"
        ),
        "neighbourhood": check.text("neighbourhood", "거주 동", max_len=40),
        "recipient": check.flag("recipient"),
        "disability": check.flag("disability"),
        "main_needs": [
            n.strip()
            for n in check.values.get("main_needs", "").replace("\n", ",").split(",")
            if n.strip()
        ],
    }
    birth = fields["birth_date"]
    if birth is not None and birth > datetime.now(UTC).date():
        check.fail("birth_date", "생년월일이 오늘보다 뒤입니다.")
    if len(fields["main_needs"]) > 10 or any(len(n) > 40 for n in fields["main_needs"]):
        check.fail("main_needs", "주요 욕구는 10개까지, 각 40자 이내로 입력하세요.")
    consents = [c for c in check.lists.get("consent", []) if c in FORM_CONSENTS]
    if any(c not in consents for c in REQUIRED_CONSENTS):
        check.fail(
            "consent",
            "개인정보 수집·이용 동의와 시·연구원 제공 동의가 없으면 등록할 수 없습니다.",
        )
    if not editing:
        fields["member_ref"] = check.member_ref("member_ref", "회원번호")
        program = check.choice("program_id", "이용 프로그램", programs, required=False)
        fields["program_id"] = program
    return fields, consents


def _form_values(check: FormCheck) -> dict[str, str]:
    """What was typed, to show again."""
    return dict(check.values)


@router.post("/desk/members/new", response_class=HTMLResponse)
def member_new(
    request: Request,
    conn: ConnDep,
    principal: MembersWriter,
    settings: SettingsDep,
    key: KeyDep,
    cipher: CipherDep,
    form: FormDep,
) -> Response:
    """Register a member; refused without the required consents (the form comes back)."""
    facility = _facility(principal)
    programs = _programs(conn, principal)
    check = FormCheck(form)
    fields, consents = _check_member(check, editing=False, programs=programs)
    ref = fields.get("member_ref")
    if principal.program_ids is not None and not fields.get("program_id"):
        check.fail("program_id", "담당 프로그램 중 하나에 등록해야 합니다.")
    form_key = check.form_key()
    if check.ok:
        # A second send of a form already recorded lands where the first did; only then is
        # the number checked (it is taken by the first send's member).
        done = claimed(conn, principal, check, "member")
        if done is not None:
            return RedirectResponse(done, 303)
        if ref and store.member_exists(conn, member_ref=ref):
            conn.rollback()
            check.fail("member_ref", "이미 쓰고 있는 회원번호입니다. 다른 번호를 입력하세요.")
    if not check.ok:
        context = _member_form_context(
            conn,
            principal,
            values=_form_values(check),
            consents=consents,
            errors=check.errors,
            editing=None,
        )
        return render(request, principal, "desk_member_form.html", context, 422)
    today = datetime.now(ZoneInfo(settings.timezone)).date()  # the day the member signed
    program = fields.pop("program_id")
    member = MemberIn(
        member_ref=str(ref),
        facility_id=facility,
        display_name=fields["display_name"],
        gender=fields["gender"],
        birth_date=fields["birth_date"],
        recipient=fields["recipient"],
        disability=fields["disability"],
        phone=fields["phone"],
        neighbourhood=fields["neighbourhood"],
        main_needs=fields["main_needs"],
        consents=[Consent(kind=c, granted_on=today) for c in consents],
        programs={program: None} if program else {},
    )
    store.upsert_member(conn, member=member, key=key, cipher=cipher)
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"member:{ref}",
        detail={"change": "inserted", "consents": consents, "via": "desk"},
    )
    return _done(conn, form_key, str(ref))


@router.get("/desk/members/{member_ref}", response_class=HTMLResponse)
def member_page(
    request: Request,
    member_ref: str,
    conn: ConnDep,
    principal: MembersReader,
    cipher: CipherDep,
    saved: bool = False,
) -> Response:
    """A member: details (phone and birth date masked), programs, cards, status and kiosks."""
    member = _read_member(conn, principal, cipher, member_ref, "view")
    context = _member_context(conn, principal, member, saved=saved)
    response = render(request, principal, "desk_member.html", context)
    write_audit(conn, actor=principal.actor, action="view", subject=f"member:{member_ref}")
    return response


def _member_context(
    conn: Conn,
    principal: Principal,
    member: Any,
    *,
    saved: bool = False,
    message: str = "",
    errors: dict[str, str] | None = None,
    sensitive: MemberSensitive | None = None,
) -> dict[str, Any]:
    """What the member page shows."""
    programs = {
        p.program_id: p.name for p in store.list_programs(conn, facility_id=member.facility_id)
    }
    return {
        "m": member,
        "saved": saved,
        "message": message,
        "errors": errors or {},
        "sensitive": sensitive,
        "genders": GENDERS,
        "statuses": DESK_STATUSES,
        "status_label": STATUS_LABELS,
        "consent_labels": CONSENT_LABELS,
        "program_names": programs,
        "enrollable": {
            k: v for k, v in _programs(conn, principal).items() if k not in member.programs
        },
        "fees": FEE_LABELS,
        "cards": desk.credentials(conn, member_ref=member.member_ref),
        "effect": desk.kiosk_effect(conn, member_ref=member.member_ref),
        "form_key": new_form_key(),
        "can_write": principal.can(Permission.MEMBERS_WRITE),
        "can_sensitive": principal.can(Permission.MEMBERS_SENSITIVE),
    }


@router.get("/desk/members/{member_ref}/sensitive", response_class=HTMLResponse)
def member_sensitive(
    request: Request,
    member_ref: str,
    conn: ConnDep,
    principal: SensitiveReader,
    cipher: CipherDep,
    reason: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The member page with phone and birth date in clear: the manager, a typed reason, audited."""
    member = _read_member(conn, principal, cipher, member_ref, "sensitive")
    if len(reason.strip()) < 2:
        context = _member_context(
            conn, principal, member, errors={"reason": "열람 사유를 2자 이상 입력하세요."}
        )
        return render(request, principal, "desk_member.html", context, 422)
    found = store.get_sensitive(conn, member_ref=member_ref, scope=principal, cipher=cipher)
    context = _member_context(conn, principal, member, sensitive=found)
    response = render(request, principal, "desk_member.html", context)
    write_audit(
        conn,
        actor=principal.actor,
        action="view",
        subject=f"member:{member_ref}:sensitive",
        reason=reason.strip(),
    )
    return response


@router.get("/desk/members/{member_ref}/edit", response_class=HTMLResponse)
def member_edit_form(
    request: Request, member_ref: str, conn: ConnDep, principal: MembersWriter, cipher: CipherDep
) -> Response:
    """The correction form (phone and birth date are typed anew only to change them)."""
    member = _read_member(conn, principal, cipher, member_ref, "change")
    values = {
        "display_name": member.display_name,
        "gender": member.gender or "",
        "neighbourhood": member.neighbourhood or "",
        "main_needs": ", ".join(member.main_needs),
        "recipient": "on" if member.recipient else "",
        "disability": "on" if member.disability else "",
        "form_key": new_form_key(),
    }
    consents = [c.kind for c in member.consents if c.withdrawn_on is None]
    context = _member_form_context(
        conn, principal, values=values, consents=consents, errors={}, editing=member_ref
    )
    context["member"] = member
    response = render(request, principal, "desk_member_form.html", context)
    write_audit(conn, actor=principal.actor, action="view", subject=f"member:{member_ref}")
    return response


@router.post("/desk/members/{member_ref}/edit", response_class=HTMLResponse)
def member_edit(
    request: Request,
    member_ref: str,
    conn: ConnDep,
    principal: MembersWriter,
    key: KeyDep,
    cipher: CipherDep,
    form: FormDep,
) -> Response:
    """Correct a member's details and consents (cards and enrolments stay)."""
    member = _read_member(conn, principal, cipher, member_ref, "change")
    check = FormCheck(form)
    fields, consents = _check_member(check, editing=True, programs={})
    if not check.ok:
        context = _member_form_context(
            conn,
            principal,
            values=_form_values(check),
            consents=consents,
            errors=check.errors,
            editing=member_ref,
        )
        context["member"] = member
        return render(request, principal, "desk_member_form.html", context, 422)
    form_key = check.form_key()
    done = claimed(conn, principal, check, "member_edit")
    if done is not None:
        return RedirectResponse(done, 303)
    # Consents the form does not carry (an older face row) stay as they are.
    consents += [
        c.kind for c in member.consents if c.withdrawn_on is None and c.kind not in FORM_CONSENTS
    ]
    changed = desk.update_member(
        conn,
        member_ref=member_ref,
        fields=fields,
        consents=consents,
        key=key,
        cipher=cipher,
    )
    if changed:
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"change": "updated", "consents": consents, "via": "desk"},
        )
    return _done(conn, form_key, member_ref)


# -- enrolments, cards, status -------------------------------------------------------------


def _member_error(
    request: Request,
    conn: Conn,
    principal: Principal,
    cipher: CipherDep,
    member_ref: str,
    errors: dict[str, str],
) -> Response:
    """The member page again with a form's messages (422)."""
    member = _read_member(conn, principal, cipher, member_ref, "view")
    context = _member_context(conn, principal, member, errors=errors)
    return render(request, principal, "desk_member.html", context, 422)


def claimed(conn: Conn, principal: Principal, check: FormCheck, kind: str) -> str | None:
    """Where a form already recorded led (a second send), or None to go on (claimed now)."""
    try:
        return desk.claim_form(conn, form_key=check.form_key(), actor=principal.actor, kind=kind)
    except store.RegistryError as exc:  # another account's form key: refused, nothing done
        raise HTTPException(400, str(exc)) from exc


def _done(conn: Conn, form_key: uuid.UUID, member_ref: str) -> Response:
    """Back to the member page, remembered for a second send of the same form."""
    target = f"/desk/members/{member_ref}?saved=1"
    desk.finish_form(conn, form_key=form_key, result=target)
    return RedirectResponse(target, 303)


@router.post("/desk/members/{member_ref}/programs", response_class=HTMLResponse)
def member_programs(
    request: Request,
    member_ref: str,
    conn: ConnDep,
    principal: MembersWriter,
    cipher: CipherDep,
    form: FormDep,
) -> Response:
    """Enrol a member in a program, or end an enrolment."""
    member_in_scope(conn, principal, member_ref, "change")
    check = FormCheck(form)
    action = check.choice("action", "처리", {"enrol": "등록", "end": "종료"})
    program = check.choice("program_id", "프로그램", _programs(conn, principal))
    fee = check.choice("fee_type", "이용료", FEE_LABELS, required=False) or None
    if not check.ok:
        return _member_error(request, conn, principal, cipher, member_ref, check.errors)
    done = claimed(conn, principal, check, "enrolment")
    if done is not None:
        return RedirectResponse(done, 303)
    if action == "enrol":
        changed = desk.enrol(conn, member_ref=member_ref, program_id=str(program), fee_type=fee)
    else:
        changed = desk.end_enrolment(conn, member_ref=member_ref, program_id=str(program))
    if changed:
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"enrolment": action, "program_id": program},
        )
    return _done(conn, check.form_key(), member_ref)


@router.post("/desk/members/{member_ref}/cards", response_class=HTMLResponse)
def member_cards(
    request: Request,
    member_ref: str,
    conn: ConnDep,
    principal: MembersWriter,
    key: KeyDep,
    cipher: CipherDep,
    form: FormDep,
) -> Response:
    """Issue the card tapped on the desk reader, revoke a tapped card, or revoke a listed one."""
    member_in_scope(conn, principal, member_ref, "change")
    facility = _facility(principal)
    check = FormCheck(form)
    action = check.choice(
        "action", "처리", {"issue": "발급", "revoke_tap": "카드로 해지", "revoke": "해지"}
    )
    uid = ref = None
    if action in ("issue", "revoke_tap"):
        uid = check.text("uid", "카드", pattern=UID_PATTERN, hint="카드를 리더기에 다시 대 주세요.")
    elif action == "revoke":
        ref = check.text("card_ref", "카드", max_len=64)
    if not check.ok:
        return _member_error(request, conn, principal, cipher, member_ref, check.errors)
    done = claimed(conn, principal, check, "card")
    if done is not None:
        return RedirectResponse(done, 303)
    detail: dict[str, Any] = {"card": action}
    if action == "issue":
        try:
            detail["outcome"] = desk.issue_card(
                conn, member_ref=member_ref, facility_id=facility, uid=str(uid), key=key
            )
        except store.RegistryError as exc:
            conn.rollback()
            return _member_error(request, conn, principal, cipher, member_ref, {"uid": str(exc)})
    elif action == "revoke_tap":
        count = desk.revoke_card(
            conn, member_ref=member_ref, facility_id=facility, uid=str(uid), key=key
        )
        if count == 0:
            conn.rollback()
            return _member_error(
                request,
                conn,
                principal,
                cipher,
                member_ref,
                {"uid": "이 회원의 카드가 아닙니다 (또는 이미 해지됨)."},
            )
        detail["revoked"] = count
    else:
        detail["revoked"] = desk.revoke_credential(conn, member_ref=member_ref, ref=str(ref))
        if detail["revoked"] == 0:
            conn.rollback()
            return _member_error(
                request,
                conn,
                principal,
                cipher,
                member_ref,
                {"card_ref": "해지할 카드를 찾지 못했습니다 (이미 해지되었을 수 있습니다)."},
            )
    write_audit(
        conn, actor=principal.actor, action="change", subject=f"member:{member_ref}", detail=detail
    )
    return _done(conn, check.form_key(), member_ref)


@router.post("/desk/members/{member_ref}/status", response_class=HTMLResponse)
def member_status(
    request: Request,
    member_ref: str,
    conn: ConnDep,
    principal: MembersWriter,
    cipher: CipherDep,
    form: FormDep,
) -> Response:
    """Change a member's status (moved out, deceased: kiosks refuse the card, then drop it)."""
    member_in_scope(conn, principal, member_ref, "status")
    check = FormCheck(form)
    status = check.choice("status", "상태", DESK_STATUSES)
    if not check.ok:
        return _member_error(request, conn, principal, cipher, member_ref, check.errors)
    done = claimed(conn, principal, check, "status")
    if done is not None:
        return RedirectResponse(done, 303)
    if store.set_status(conn, member_ref=member_ref, status=str(status)):
        write_audit(
            conn,
            actor=principal.actor,
            action="change",
            subject=f"member:{member_ref}",
            detail={"status": status},
        )
    return _done(conn, check.form_key(), member_ref)
