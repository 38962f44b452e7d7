"""The desk's face page: consent, enrolment from the desk's webcam, withdrawal (docs/face.md).

The page only shows the state and carries the script (static/face.js): the browser takes the
photos with getUserMedia and posts them to the face API (ingest_api/web/api/face.py), which
describes them in memory and keeps no photo. Same decision and scope as the API.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from broker.models import mask_name
from ingest_api.core.audit import write_audit
from ingest_api.core.deps import ConnDep, FaceEnroller
from ingest_api.registry import face
from ingest_api.web.api.registry import member_in_scope
from ingest_api.web.guard import templates
from ingest_api.web.signin import page_context

router = APIRouter(include_in_schema=False)


@router.get("/members/{member_ref}/face", response_class=HTMLResponse)
def face_page(
    member_ref: str, request: Request, conn: ConnDep, principal: FaceEnroller
) -> Response:
    """Consent form, camera and enrolment for one member of the caller's center (audited)."""
    member_in_scope(conn, principal, member_ref, "face_page")
    write_audit(conn, actor=principal.actor, action="view", subject=f"member:{member_ref}:face")
    row = conn.execute(
        "SELECT display_name FROM members WHERE member_ref = %s", (member_ref,)
    ).fetchone()
    return templates.TemplateResponse(
        request,
        "face_enrol.html",
        {
            **page_context(principal),
            "member_ref": member_ref,
            # Masked, as staff see members: enough to check it is the person at the desk.
            "member_name": mask_name(str(row[0])) if row else "",
            "status": face.status(conn, member_ref=member_ref),
            "available": getattr(request.app.state, "face_describer", None) is not None,
        },
    )
