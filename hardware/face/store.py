"""Face consents and encrypted templates on the device (SQLite).

A template can only be stored while the member's separate face consent is on record, and
withdrawing the consent deletes the template in the same transaction. SQLite's
`secure_delete` overwrites deleted rows so the template does not linger in free pages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from hardware.face.crypto import FaceVector, TemplateCipher

_SCHEMA = """
CREATE TABLE IF NOT EXISTS face_consent (
    member_ref   TEXT PRIMARY KEY,
    consent_id   TEXT NOT NULL,      -- the signed form's reference in the center's records
    granted_at   TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,      -- staff member who took the consent
    withdrawn_at TEXT
);
CREATE TABLE IF NOT EXISTS face_template (
    member_ref  TEXT PRIMARY KEY REFERENCES face_consent(member_ref) ON DELETE CASCADE,
    sealed      BLOB NOT NULL,       -- AES-256-GCM, bound to member_ref
    enrolled_at TEXT NOT NULL
);
"""


class ConsentRequiredError(PermissionError):
    """Enrolment was attempted without a recorded, unwithdrawn face consent."""


@dataclass(frozen=True, slots=True)
class FaceConsent:
    """A member's separate consent to face match, as staff recorded it."""

    member_ref: str
    consent_id: str
    granted_at: datetime
    recorded_by: str
    withdrawn_at: datetime | None = None

    @property
    def active(self) -> bool:
        """True while the consent has not been withdrawn."""
        return self.withdrawn_at is None


class FaceTemplateStore:
    """Consents and sealed templates of one device's enrolled members."""

    def __init__(self, path: Path | str, cipher: TemplateCipher) -> None:
        """Open (or create) the store at `path` (':memory:' for a throw-away store)."""
        self.cipher = cipher
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> Self:
        """Use as a context manager."""
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the database."""
        self.close()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def record_consent(self, consent: FaceConsent) -> None:
        """Record (or renew after a withdrawal) a member's face consent."""
        self._db.execute(
            "INSERT INTO face_consent (member_ref, consent_id, granted_at, recorded_by) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (member_ref) DO UPDATE SET "
            "consent_id = excluded.consent_id, granted_at = excluded.granted_at, "
            "recorded_by = excluded.recorded_by, withdrawn_at = NULL",
            (
                consent.member_ref,
                consent.consent_id,
                consent.granted_at.isoformat(),
                consent.recorded_by,
            ),
        )

    def consent(self, member_ref: str) -> FaceConsent | None:
        """The member's consent record, withdrawn or not; None if never given."""
        row = self._db.execute(
            "SELECT member_ref, consent_id, granted_at, recorded_by, withdrawn_at "
            "FROM face_consent WHERE member_ref = ?",
            (member_ref,),
        ).fetchone()
        if row is None:
            return None
        return FaceConsent(
            member_ref=row[0],
            consent_id=row[1],
            granted_at=datetime.fromisoformat(row[2]),
            recorded_by=row[3],
            withdrawn_at=datetime.fromisoformat(row[4]) if row[4] else None,
        )

    def enrol(self, member_ref: str, encoding: FaceVector, *, at: datetime) -> None:
        """Store the member's template, sealed; refused without an active consent."""
        consent = self.consent(member_ref)
        if consent is None or not consent.active:
            raise ConsentRequiredError(f"no active face consent on record for {member_ref!r}")
        self._db.execute(
            "INSERT INTO face_template (member_ref, sealed, enrolled_at) VALUES (?, ?, ?) "
            "ON CONFLICT (member_ref) DO UPDATE SET sealed = excluded.sealed, "
            "enrolled_at = excluded.enrolled_at",
            (member_ref, self.cipher.encrypt(member_ref, encoding), at.isoformat()),
        )

    def withdraw(self, member_ref: str, *, at: datetime) -> bool:
        """Withdraw the consent and delete the template at once; True if one was deleted."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE face_consent SET withdrawn_at = ? WHERE member_ref = ?",
                (at.isoformat(), member_ref),
            )
            deleted = self._db.execute(
                "DELETE FROM face_template WHERE member_ref = ?", (member_ref,)
            ).rowcount
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return deleted > 0

    def delete_template(self, member_ref: str) -> bool:
        """Delete a template without touching the consent (member left this facility)."""
        cursor = self._db.execute("DELETE FROM face_template WHERE member_ref = ?", (member_ref,))
        return cursor.rowcount > 0

    def has_template(self, member_ref: str) -> bool:
        """True if the member has a stored template."""
        row = self._db.execute(
            "SELECT 1 FROM face_template WHERE member_ref = ?", (member_ref,)
        ).fetchone()
        return row is not None

    def count(self) -> int:
        """How many templates are stored."""
        (n,) = self._db.execute("SELECT count(*) FROM face_template").fetchone()
        return int(n)

    def sealed(self, member_ref: str) -> bytes | None:
        """The sealed blob as stored (for sync to the center and for tests)."""
        row = self._db.execute(
            "SELECT sealed FROM face_template WHERE member_ref = ?", (member_ref,)
        ).fetchone()
        return bytes(row[0]) if row else None

    def templates(self) -> Iterator[tuple[str, FaceVector]]:
        """Every enrolled member with an active consent, with the decrypted encoding."""
        rows = self._db.execute(
            "SELECT t.member_ref, t.sealed FROM face_template t "
            "JOIN face_consent c USING (member_ref) WHERE c.withdrawn_at IS NULL "
            "ORDER BY t.member_ref"
        ).fetchall()
        for member_ref, sealed in rows:
            yield member_ref, self.cipher.decrypt(member_ref, bytes(sealed))

    def enrol_many(self, items: list[tuple[str, FaceVector]], *, at: datetime) -> None:
        """Enrol many members in one transaction (bulk import, benchmark)."""
        self._db.execute("BEGIN")
        try:
            for member_ref, encoding in items:
                self.enrol(member_ref, encoding, at=at)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
