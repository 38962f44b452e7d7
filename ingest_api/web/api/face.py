"""Face match API: a member's separate face consent, enrolment from photos, withdrawal.

People of the member's own center only (`members.face`: center managers and staff, never a
token); another center's member answers an audited 404. Enrolment is refused before any photo
is looked at when no consent is on record. Photos are decoded and described in memory by the
describer the server was started with and dropped with the request: no photo is kept; the
template is sealed as it is stored and never opened here (docs/face.md).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest_api.core.audit import write_audit
from ingest_api.core.deps import ERROR_RESPONSES, ConnDep, FaceEnroller, KeyDep
from ingest_api.registry import face
from ingest_api.registry.face import MAX_PHOTOS, MIN_FACE_PX, Describer, FaceRefused
from ingest_api.web.api.registry import (
    member_in_scope,  # the same audited 404 as every member route
)

router = APIRouter(prefix="/api/v1/registry", tags=["face"], responses=ERROR_RESPONSES)
MAX_PHOTO_BYTES = 4 * 1024 * 1024


class FaceConsentIn(BaseModel):
    """The signed consent form: its id in the center's records, and when it was signed."""

    model_config = ConfigDict(extra="forbid")

    form_id: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    granted_at: AwareDatetime | None = None


class EnrolIn(BaseModel):
    """A few photos of the member (base64 JPEG or PNG, or data: URLs from a canvas)."""

    model_config = ConfigDict(extra="forbid")

    photos: Annotated[list[str], Field(min_length=1, max_length=MAX_PHOTOS)]


def _photo_error(index: int, message: str) -> RequestValidationError:
    """A 422 naming the one photo that cannot be used, and why."""
    return RequestValidationError(
        [
            {
                "loc": ("body", "photos", index),
                "msg": message,
                "type": "value_error",
                "input": None,
            }
        ]
    )


def _decode(index: int, text: str) -> bytes:
    """A posted photo's bytes (plain base64, or a data: URL as a canvas gives it)."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _photo_error(index, f"사진 {index + 1}: 사진 파일을 읽을 수 없습니다.") from None
    if not raw or len(raw) > MAX_PHOTO_BYTES:
        raise _photo_error(index, f"사진 {index + 1}: 사진이 비었거나 4 MB보다 큽니다.")
    return raw


def _descriptor(describe: Describer, index: int, photo: bytes) -> bytes:
    """The one usable face of a photo, or a clear message for this photo."""
    try:
        found = describe(photo)
    except ValueError:
        raise _photo_error(index, f"사진 {index + 1}: JPEG 또는 PNG 사진이 아닙니다.") from None
    # Faces too small to describe well (a poster, someone far behind) do not count.
    usable = [f for f in found if f.height_px >= MIN_FACE_PX]
    if len(usable) > 1:
        raise _photo_error(
            index, f"사진 {index + 1}: 얼굴이 {len(usable)}개 보입니다. 회원 한 분만 찍어 주세요."
        )
    if not found:
        raise _photo_error(
            index, f"사진 {index + 1}: 얼굴을 찾지 못했습니다. 정면에서 밝게 다시 찍어 주세요."
        )
    if not usable:
        raise _photo_error(
            index, f"사진 {index + 1}: 얼굴이 너무 작습니다. 카메라에 더 가까이 와서 찍어 주세요."
        )
    return usable[0].descriptor


def _status_json(found: face.FaceStatus) -> dict[str, Any]:
    """The face match state as the API shows it (never the template)."""
    return {
        "member_ref": found.member_ref,
        "consent": found.consent,
        "enrolled": found.enrolled,
        "enrolled_at": found.enrolled_at,
        "enrolled_by": found.enrolled_by,
        "photos": found.photos,
    }


@router.get("/members/{member_ref}/face")
def get_face(member_ref: str, conn: ConnDep, principal: FaceEnroller) -> dict[str, Any]:
    """The member's face consent record and whether a template is enrolled (audited)."""
    member_in_scope(conn, principal, member_ref, "face")
    write_audit(conn, actor=principal.actor, action="view", subject=f"member:{member_ref}:face")
    return _status_json(face.status(conn, member_ref=member_ref))


@router.post("/members/{member_ref}/face/consent", status_code=201)
def post_face_consent(
    member_ref: str, body: FaceConsentIn, conn: ConnDep, principal: FaceEnroller
) -> dict[str, Any]:
    """Record the member's separate face consent: the form's id, when signed, who recorded it."""
    member_in_scope(conn, principal, member_ref, "face_consent")
    granted = body.granted_at or datetime.now(UTC)
    face.record_consent(
        conn,
        member_ref=member_ref,
        form_id=body.form_id,
        granted_at=granted,
        recorded_by=principal.actor,
    )
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"member:{member_ref}:face",
        detail={"consent": "granted", "form_id": body.form_id},
    )
    return _status_json(face.status(conn, member_ref=member_ref))


@router.post("/members/{member_ref}/face/enrol", status_code=201)
def post_face_enrol(
    member_ref: str,
    body: EnrolIn,
    request: Request,
    conn: ConnDep,
    principal: FaceEnroller,
    master: KeyDep,
) -> dict[str, Any]:
    """Enrol from a few photos: consent checked first, one face per photo, template sealed."""
    member_in_scope(conn, principal, member_ref, "face_enrol")
    try:
        face.check_enrolable(conn, member_ref=member_ref)
    except FaceRefused as exc:
        # Refused before any photo is decoded: no descriptor of this member is computed.
        write_audit(
            conn,
            actor=principal.actor,
            action="denied",
            subject=f"member:{member_ref}:face",
            detail={"request": "face_enrol", "why": "no active consent or member"},
        )
        conn.commit()
        raise HTTPException(409, str(exc)) from None
    describe: Describer | None = getattr(request.app.state, "face_describer", None)
    if describe is None:
        raise HTTPException(
            503, "이 서버에는 얼굴 등록 기능이 없습니다 (face extra, docs/face.md)."
        )
    photos = [_decode(i, text) for i, text in enumerate(body.photos)]
    descriptors = [_descriptor(describe, i, photo) for i, photo in enumerate(photos)]
    del photos  # nothing of the photos outlives the request
    kid = face.enrol(
        conn,
        master=master,
        member_ref=member_ref,
        descriptors=descriptors,
        enrolled_by=principal.actor,
    )
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"member:{member_ref}:face",
        detail={"enrolled": len(descriptors), "key_id": kid},
    )
    return {"enrolled": True, "photos_used": len(descriptors)}


@router.post("/members/{member_ref}/face/withdraw")
def post_face_withdraw(member_ref: str, conn: ConnDep, principal: FaceEnroller) -> dict[str, Any]:
    """Consent withdrawn: the template deleted at once here, and on the kiosks with the roster."""
    member_in_scope(conn, principal, member_ref, "face_withdraw")
    deleted = face.withdraw(conn, member_ref=member_ref, withdrawn_by=principal.actor)
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"member:{member_ref}:face",
        detail={"consent": "withdrawn", "template_deleted": deleted},
    )
    return {"withdrawn": True, "template_deleted": deleted}
