"""Face consent and sealed face templates at the center (docs/face.md).

A template is stored only while the member's separate face consent is on record (who recorded
it, when, the signed form's id) and the member is active. It is sealed as it is stored, under
the face key of the member's facility (broker/face.py, derived from the facility's current
credential key), and it is never opened here: it only travels, in the rosters, to the kiosks
of that facility. Withdrawing the consent deletes it in the same transaction; a member taken
off the rosters loses it by a trigger (migration 0080); erasing the member deletes both rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from broker.face import ENCODING_BYTES, ENCODING_SIZE, face_key, seal
from broker.keys import facility_key, key_id
from ingest_api.core.db import Conn
from ingest_api.registry import keys

# A face smaller than this (box height, pixels) is too far from the camera to describe well.
MIN_FACE_PX = 60
MAX_PHOTOS = 5


class FaceRefused(ValueError):
    """An enrolment the registry refuses (no consent, an inactive member)."""


@dataclass(frozen=True, slots=True)
class DescribedFace:
    """One face found in a photo: its descriptor (1,024 bytes of float64) and its height."""

    descriptor: bytes
    height_px: int


# Turns one photo (JPEG/PNG bytes, decoded in memory, never written) into its faces. The
# center's own code holds no face model: the composition root passes one in (docs/face.md).
Describer = Callable[[bytes], list[DescribedFace]]


@dataclass(frozen=True, slots=True)
class FaceStatus:
    """What the registry holds about a member's face match (no biometric data)."""

    member_ref: str
    consent: dict[str, Any] | None
    enrolled: bool
    enrolled_at: datetime | None
    enrolled_by: str | None
    photos: int | None


def record_consent(
    conn: Conn, *, member_ref: str, form_id: str, granted_at: datetime, recorded_by: str
) -> None:
    """Record (or renew after a withdrawal) the member's separate face consent."""
    conn.execute(
        "INSERT INTO face_consents (member_ref, form_id, granted_at, recorded_by) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (member_ref) DO UPDATE SET "
        "form_id = EXCLUDED.form_id, granted_at = EXCLUDED.granted_at, "
        "recorded_by = EXCLUDED.recorded_by, recorded_at = now(), "
        "withdrawn_at = NULL, withdrawn_by = NULL",
        (member_ref, form_id, granted_at, recorded_by),
    )


def consent_active(conn: Conn, *, member_ref: str) -> bool:
    """Whether the member's face consent is on record and not withdrawn."""
    row = conn.execute(
        "SELECT 1 FROM face_consents WHERE member_ref = %s AND withdrawn_at IS NULL",
        (member_ref,),
    ).fetchone()
    return row is not None


def check_enrolable(conn: Conn, *, member_ref: str) -> str:
    """The member's facility when a template may be enrolled now, else FaceRefused.

    Called before any photo is looked at: no descriptor of a member without consent is ever
    computed.
    """
    row = conn.execute(
        "SELECT m.facility_id, m.status, c.member_ref IS NOT NULL AND c.withdrawn_at IS NULL "
        "FROM members m "
        "LEFT JOIN face_consents c USING (member_ref) WHERE m.member_ref = %s",
        (member_ref,),
    ).fetchone()
    if row is None:
        raise LookupError(member_ref)
    facility_id, status, active = row
    if not active:
        raise FaceRefused("얼굴인식 동의가 기록되어 있지 않습니다. 별도 동의서를 먼저 기록하세요.")
    if status != "active":
        raise FaceRefused("이용 중인 회원만 얼굴을 등록할 수 있습니다.")
    return str(facility_id)


def template_of(descriptors: Sequence[bytes]) -> bytes:
    """The member's template: the mean of the photos' descriptors (float64 bytes)."""
    rows = [np.frombuffer(d, dtype="<f8") for d in descriptors]
    if not rows or any(r.shape != (ENCODING_SIZE,) for r in rows):
        raise ValueError(f"face descriptors have {ENCODING_SIZE} values")
    mean = np.mean(np.vstack(rows), axis=0).astype("<f8")
    return bytes(mean.tobytes())


def enrol(
    conn: Conn,
    *,
    master: bytes,
    member_ref: str,
    descriptors: Sequence[bytes],
    enrolled_by: str,
) -> str:
    """Seal the member's template under their facility's face key and store it; its key id."""
    facility_id = check_enrolable(conn, member_ref=member_ref)
    template = template_of(descriptors)
    assert len(template) == ENCODING_BYTES
    version = keys.ensure_versions(conn, facility_id=facility_id)[0]
    credential = facility_key(master, facility_id=facility_id, version=version).encode()
    sealed = seal(face_key(credential), member_ref, template)
    kid = key_id(credential)
    conn.execute(
        "INSERT INTO face_templates (member_ref, facility_id, key_version, key_id, sealed, "
        "photos, enrolled_by) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (member_ref) "
        "DO UPDATE SET facility_id = EXCLUDED.facility_id, key_version = EXCLUDED.key_version, "
        "key_id = EXCLUDED.key_id, sealed = EXCLUDED.sealed, photos = EXCLUDED.photos, "
        "enrolled_at = now(), enrolled_by = EXCLUDED.enrolled_by",
        (member_ref, facility_id, version, kid, sealed, len(descriptors), enrolled_by),
    )
    return kid


def withdraw(conn: Conn, *, member_ref: str, withdrawn_by: str) -> bool:
    """Consent withdrawn: mark it and delete the template at once; True if one was deleted."""
    conn.execute(
        "UPDATE face_consents SET withdrawn_at = now(), withdrawn_by = %s "
        "WHERE member_ref = %s AND withdrawn_at IS NULL",
        (withdrawn_by, member_ref),
    )
    deleted = conn.execute("DELETE FROM face_templates WHERE member_ref = %s", (member_ref,))
    return deleted.rowcount > 0


def status(conn: Conn, *, member_ref: str) -> FaceStatus:
    """The consent record and whether a template is enrolled (never the template)."""
    row = conn.execute(
        "SELECT c.form_id, c.granted_at, c.recorded_by, c.recorded_at, c.withdrawn_at, "
        "c.withdrawn_by, t.enrolled_at, t.enrolled_by, t.photos FROM members m "
        "LEFT JOIN face_consents c USING (member_ref) "
        "LEFT JOIN face_templates t USING (member_ref) WHERE m.member_ref = %s",
        (member_ref,),
    ).fetchone()
    if row is None:
        raise LookupError(member_ref)
    consent = (
        None
        if row[0] is None
        else {
            "form_id": row[0],
            "granted_at": row[1],
            "recorded_by": row[2],
            "recorded_at": row[3],
            "withdrawn_at": row[4],
            "withdrawn_by": row[5],
            "active": row[4] is None,
        }
    )
    return FaceStatus(
        member_ref=member_ref,
        consent=consent,
        enrolled=row[6] is not None,
        enrolled_at=row[6],
        enrolled_by=row[7],
        photos=row[8],
    )


def sealed_templates(
    conn: Conn, *, facility_id: str, member_refs: Sequence[str], key_versions: Sequence[int]
) -> dict[str, tuple[str, bytes]]:
    """Sealed templates of these active, consenting members (key id, blob), for a roster.

    Only templates sealed under a key the facility still uses: a kiosk could not open others.
    """
    rows = conn.execute(
        "SELECT t.member_ref, t.key_id, t.sealed FROM face_templates t "
        "JOIN face_consents c USING (member_ref) JOIN members m USING (member_ref) "
        "WHERE t.facility_id = %s AND m.facility_id = %s AND m.status = 'active' "
        "AND c.withdrawn_at IS NULL AND t.member_ref = ANY(%s) AND t.key_version = ANY(%s)",
        (facility_id, facility_id, list(member_refs), list(key_versions)),
    ).fetchall()
    return {str(r[0]): (str(r[1]), bytes(r[2])) for r in rows}
