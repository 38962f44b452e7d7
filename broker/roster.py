"""A roster's content hash, its deltas and what is signed: the same code on kiosk and center.

The content hash covers what a device decides with — its identity, time zone, programs,
sittings and members — and nothing about how it got there (version, issue time, delta or
whole). Each member contributes its own digest, so a device applying a delta of three members
recomputes three digests, not five thousand, and the center keeps only digests of the versions
devices hold to build the delta from any of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date

from broker.models import DeviceConfig, ProgramSession, Roster, RosterMember, Sitting


def member_digest(member: RosterMember) -> str:
    """SHA-256 of one member's canonical JSON (the model's own, field order fixed).

    Unset optional fields are left out, so a member without a face template hashes as before
    face templates existed (kiosks and the center agree across the upgrade).
    """
    return hashlib.sha256(member.model_dump_json(exclude_none=True).encode()).hexdigest()


def content_hash(
    *,
    facility_id: str,
    device_id: str,
    timezone: str,
    programs: Iterable[ProgramSession],
    sittings: Iterable[Sitting] | None,
    sittings_until: date | None,
    digests: Mapping[str, str],
) -> str:
    """The hash of a roster's content from its parts; member order and list order do not count."""
    return content_hash_of_lines(
        facility_id=facility_id,
        device_id=device_id,
        timezone=timezone,
        sittings_until=sittings_until,
        program_lines=(p.model_dump_json() for p in programs),
        sitting_lines=None if sittings is None else (s.model_dump_json() for s in sittings),
        digests=digests,
    )


def content_hash_of_lines(
    *,
    facility_id: str,
    device_id: str,
    timezone: str,
    sittings_until: date | None,
    program_lines: Iterable[str],
    sitting_lines: Iterable[str] | None,
    digests: Mapping[str, str],
) -> str:
    """`content_hash` from the models' JSON as stored (a device hashes its rows unparsed)."""
    h = hashlib.sha256()
    until = sittings_until.isoformat() if sittings_until else None
    h.update(json.dumps([facility_id, device_id, timezone, until]).encode() + b"\n")
    for line in sorted(program_lines):
        h.update(b"P" + line.encode() + b"\n")
    if sitting_lines is None:
        h.update(b"S-\n")
    else:
        for line in sorted(sitting_lines):
            h.update(b"S" + line.encode() + b"\n")
    for ref in sorted(digests):
        h.update(f"M{ref}:{digests[ref]}\n".encode())
    return h.hexdigest()


def roster_hash(roster: Roster) -> str:
    """The content hash of a whole roster."""
    if roster.is_delta:
        raise ValueError("a delta has no content of its own: hash the roster it produces")
    return content_hash(
        facility_id=roster.facility_id,
        device_id=roster.device_id,
        timezone=roster.timezone,
        programs=roster.programs,
        sittings=roster.sittings,
        sittings_until=roster.sittings_until,
        digests={m.member_ref: member_digest(m) for m in roster.members},
    )


def delta(latest: Roster, *, base_version: str, base_digests: Mapping[str, str]) -> Roster:
    """The update taking a device from `base_version` (its member digests) to `latest`."""
    if latest.is_delta:
        raise ValueError("deltas are made from a whole roster")
    current = {m.member_ref: m for m in latest.members}
    changed = [m for ref, m in current.items() if base_digests.get(ref) != member_digest(m)]
    removed = sorted(ref for ref in base_digests if ref not in current)
    return latest.model_copy(
        update={"base_version": base_version, "members": changed, "removed": removed}
    )


def roster_signing_bytes(roster: Roster) -> bytes:
    """What a roster's signatures cover: who it is for, which version, from which, its hash."""
    if roster.content_hash is None:
        raise ValueError("a signed roster needs its content_hash")
    fields = [
        "roster",
        roster.facility_id,
        roster.device_id,
        roster.version,
        roster.base_version or "",
        roster.content_hash,
    ]
    return json.dumps(fields).encode()


def config_signing_bytes(config: DeviceConfig) -> bytes:
    """What a configuration's signatures cover: the whole document except the signatures."""
    unsigned = config.model_copy(update={"signatures": None})
    return unsigned.model_dump_json(exclude_none=True).encode()
