"""Each facility's credential keys at the center: versions, sealed card UIDs, rotation.

The master secret (`WELFARE_CREDENTIAL_KEY`) never leaves the center; facility keys are derived
from it on demand (broker/keys.py). A card is stored as one keyed hash per key version in use
and, since migration 0021, with its UID sealed (AES-GCM under a key derived from the master,
bound to the member), because a rotation must hash every card again under the new key and a
hash cannot be re-hashed. Rotation (`rotate`) adds a version and those hashes; rosters then
carry both, and kiosks receive the new key wrapped under the old one; `retire` drops the old
version once every kiosk of the facility reports holding the new key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.hashing import credential_hash, normalize_credential
from broker.keys import facility_key, key_id
from ingest_api.core.db import Conn

FIRST_VERSION = 1


class KeyRefused(ValueError):
    """A key operation the registry refuses (a rotation in progress, cards that would break)."""


def _seal_key(master: bytes) -> bytes:
    """The AES-256 key sealing card UIDs (derived, so the database never holds a key)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"welfare sealed card uid v1", info=b""
    ).derive(master)


def seal_uid(master: bytes, *, uid: str, member_ref: str) -> bytes:
    """Encrypt a normalised card/NFC UID for storage: nonce || ciphertext."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_seal_key(master)).encrypt(
        nonce, normalize_credential(uid).encode(), member_ref.encode()
    )


def unseal_uid(master: bytes, *, sealed: bytes, member_ref: str) -> str:
    """The UID of a sealed card (ValueError with another master or member)."""
    try:
        return (
            AESGCM(_seal_key(master))
            .decrypt(sealed[:12], sealed[12:], member_ref.encode())
            .decode()
        )
    except InvalidTag as exc:
        raise ValueError("sealed card UID does not open with this master key") from exc


def key_versions(conn: Conn, *, facility_id: str) -> dict[str, int]:
    """The facility's versions in use by state ('current', 'previous'); empty before any card."""
    rows = conn.execute(
        "SELECT state, version FROM facility_keys WHERE facility_id = %s "
        "AND state IN ('current', 'previous')",
        (facility_id,),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def ensure_versions(conn: Conn, *, facility_id: str) -> list[int]:
    """Versions in use, current first; a facility's first card starts version 1 (writes)."""
    found = key_versions(conn, facility_id=facility_id)
    if "current" not in found:
        conn.execute(
            "INSERT INTO facility_keys (facility_id, version, state) VALUES (%s, %s, 'current') "
            "ON CONFLICT DO NOTHING",
            (facility_id, FIRST_VERSION),
        )
        found = key_versions(conn, facility_id=facility_id)
    return [found["current"], *([found["previous"]] if "previous" in found else [])]


def in_use(conn: Conn, *, facility_id: str) -> list[int]:
    """Versions in use, current first, without creating any (for reads)."""
    found = key_versions(conn, facility_id=facility_id)
    current = found.get("current", FIRST_VERSION)
    return [current, *([found["previous"]] if "previous" in found else [])]


def facility_keys(master: bytes, *, facility_id: str, versions: list[int]) -> list[bytes]:
    """The keys (as HMAC keys) of `versions`."""
    return [facility_key(master, facility_id=facility_id, version=v).encode() for v in versions]


def hashes_of(master: bytes, *, facility_id: str, versions: list[int], uid: str) -> dict[int, str]:
    """A card's hash under each version."""
    found = facility_keys(master, facility_id=facility_id, versions=versions)
    return {v: credential_hash(uid, key=k) for v, k in zip(versions, found, strict=True)}


@dataclass(frozen=True, slots=True)
class Rotation:
    """What `rotate` did."""

    version: int
    previous: int
    rehashed: int
    unsealed_missing: int


def rotate(conn: Conn, *, master: bytes, facility_id: str, force: bool = False) -> Rotation:
    """Start using a new key version: every card hashed again under it (call in a transaction).

    Refused while a previous version is still in use (retire it first), and — unless `force`
    — when cards exist whose UID was never sealed (they would stop working once the old
    version is retired; re-register them first).
    """
    found = key_versions(conn, facility_id=facility_id)
    if "previous" in found:
        raise KeyRefused(
            f"facility {facility_id} is still rotating to version {found['current']}: "
            f"retire version {found['previous']} first"
        )
    old = ensure_versions(conn, facility_id=facility_id)[0]
    rows = conn.execute(
        "SELECT c.member_ref, c.kind, c.issued_at, c.uid_sealed FROM member_credentials c "
        "JOIN members m USING (member_ref) WHERE m.facility_id = %s AND c.key_version = %s "
        "AND c.revoked_at IS NULL",
        (facility_id, old),
    ).fetchall()
    missing = sum(1 for r in rows if r[3] is None)
    if missing and not force:
        raise KeyRefused(
            f"{missing} card(s) of facility {facility_id} were registered before card numbers "
            "were kept sealed and cannot be re-hashed: register them again (or force)"
        )
    new = old + 1
    conn.execute(
        "UPDATE facility_keys SET state = 'previous' WHERE facility_id = %s AND version = %s",
        (facility_id, old),
    )
    conn.execute(
        "INSERT INTO facility_keys (facility_id, version, state) VALUES (%s, %s, 'current')",
        (facility_id, new),
    )
    new_key = facility_key(master, facility_id=facility_id, version=new).encode()
    rehashed = [
        (
            credential_hash(unseal_uid(master, sealed=bytes(r[3]), member_ref=r[0]), key=new_key),
            r[0],
            r[1],
            r[2],
            new,
            r[3],
        )
        for r in rows
        if r[3] is not None
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO member_credentials (credential_hash, member_ref, kind, issued_at, "
            "key_version, uid_sealed) VALUES (%s, %s, %s, %s, %s, %s)",
            rehashed,
        )
    return Rotation(version=new, previous=old, rehashed=len(rehashed), unsealed_missing=missing)


def retire(conn: Conn, *, facility_id: str) -> int:
    """Stop using the previous version: its hashes are deleted; returns the version retired."""
    found = key_versions(conn, facility_id=facility_id)
    if "previous" not in found:
        raise KeyRefused(f"facility {facility_id} has no previous key version to retire")
    old = found["previous"]
    conn.execute(
        "DELETE FROM member_credentials c USING members m WHERE c.member_ref = m.member_ref "
        "AND m.facility_id = %s AND c.key_version = %s",
        (facility_id, old),
    )
    conn.execute(
        "UPDATE facility_keys SET state = 'retired', retired_at = now() "
        "WHERE facility_id = %s AND version = %s",
        (facility_id, old),
    )
    return old


def key_id_of(master: bytes, *, facility_id: str, version: int) -> str:
    """The public id kiosks report for a version's key."""
    return key_id(facility_key(master, facility_id=facility_id, version=version).encode())


def devices_lacking(conn: Conn, *, master: bytes, facility_id: str) -> list[str]:
    """Registered devices of the facility that have not reported holding its current key."""
    current = ensure_versions(conn, facility_id=facility_id)[0]
    wanted = key_id_of(master, facility_id=facility_id, version=current)
    rows = conn.execute(
        "SELECT d.device_id, coalesce(r.key_ids, '{}') FROM devices d "
        "LEFT JOIN device_sync_reports r USING (facility_id, device_id) "
        "WHERE d.facility_id = %s ORDER BY d.device_id",
        (facility_id,),
    ).fetchall()
    return [str(r[0]) for r in rows if wanted not in r[1]]
