"""Provisioned kiosks: the programs each serves, roster sync state, the facilities' keys.

No personal data: devices, versions and key ids only. Devices are created by `welfare device
add` (it writes their broker account). In the registry (`/api/v1/registry/devices…`) a center's
manager changes what its kiosks serve; in the fleet (`/api/v1/fleet/…`) operators see who is
behind and resync a kiosk, and the city administrator rotates a facility's key. A device or
facility that does not exist answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from broker.config import key_bytes
from broker.vocabulary import EntityId
from ingest_api.core.audit import write_audit
from ingest_api.core.deps import (
    ERROR_RESPONSES,
    ConnDep,
    FleetOperator,
    FleetReader,
    KeyDep,
    KeysManager,
    RegistryManager,
    RegistryReader,
    SettingsDep,
)
from ingest_api.registry import devices, keys
from ingest_api.registry.models import Device, DeviceIn, FacilityKey, KeyRotation

router = APIRouter(responses=ERROR_RESPONSES)
Force = Annotated[bool, Query(description="Go ahead although devices or cards would be left out.")]


class Accepted(BaseModel):
    """An operator action accepted; the fleet sync carries it out within seconds."""

    accepted: bool


class Retired(BaseModel):
    """The key version retired."""

    facility_id: str
    version: int


def _device_or_404(conn: ConnDep, facility_id: str, device_id: str) -> Device:
    """The device, or a clear 404."""
    found = devices.get_device(conn, facility_id=facility_id, device_id=device_id)
    if found is None:
        raise HTTPException(
            404, f"no device {facility_id}/{device_id}: add it with `welfare device add`"
        )
    return found


def _facility_or_404(conn: ConnDep, facility_id: str) -> None:
    """A clear 404 for an unknown facility."""
    if (
        conn.execute("SELECT 1 FROM facilities WHERE facility_id = %s", (facility_id,)).fetchone()
        is None
    ):
        raise HTTPException(404, f"no facility {facility_id}")


@router.get("/api/v1/registry/devices", response_model=list[Device], tags=["registry"])
def get_devices(
    conn: ConnDep, _reader: RegistryReader, facility_id: EntityId | None = None
) -> list[Device]:
    """Every provisioned kiosk with its roster sync state (what it holds, what it should)."""
    return devices.list_devices(conn, facility_id=facility_id)


@router.get(
    "/api/v1/registry/devices/{facility_id}/{device_id}", response_model=Device, tags=["registry"]
)
def get_device(facility_id: str, device_id: str, conn: ConnDep, _reader: RegistryReader) -> Device:
    """One kiosk."""
    return _device_or_404(conn, facility_id, device_id)


@router.put(
    "/api/v1/registry/devices/{facility_id}/{device_id}", response_model=Device, tags=["registry"]
)
def put_device(
    facility_id: str, device_id: str, body: DeviceIn, conn: ConnDep, principal: RegistryManager
) -> Device:
    """Change what a kiosk serves (its programs) and its intervals; reaches it within seconds."""
    principal.check_facility(facility_id)
    _device_or_404(conn, facility_id, device_id)
    try:
        devices.update_device(conn, facility_id=facility_id, device_id=device_id, device=body)
    except devices.DeviceError as exc:
        raise HTTPException(400, str(exc)) from exc
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"device:{facility_id}/{device_id}",
        detail=body.model_dump(),
    )
    return _device_or_404(conn, facility_id, device_id)


@router.post(
    "/api/v1/fleet/devices/{facility_id}/{device_id}/resync",
    status_code=202,
    response_model=Accepted,
    tags=["fleet"],
)
def post_resync(
    facility_id: str, device_id: str, conn: ConnDep, operator: FleetOperator
) -> Accepted:
    """Send the kiosk its whole roster and configuration again."""
    _device_or_404(conn, facility_id, device_id)
    devices.request_resync(conn, facility_id=facility_id, device_id=device_id)
    write_audit(
        conn,
        actor=operator.actor,
        action="change",
        subject=f"device:{facility_id}/{device_id}:resync",
    )
    return Accepted(accepted=True)


@router.get("/api/v1/fleet/rosters/behind", response_model=list[Device], tags=["fleet"])
def get_behind(conn: ConnDep, _reader: FleetReader) -> list[Device]:
    """Kiosks that do not report holding the roster the center built for them last."""
    return devices.devices_behind(conn)


@router.get(
    "/api/v1/fleet/facilities/{facility_id}/keys",
    response_model=list[FacilityKey],
    tags=["fleet"],
)
def get_keys(
    facility_id: str, conn: ConnDep, settings: SettingsDep, _reader: FleetReader
) -> list[FacilityKey]:
    """The facility's credential key versions, how many cards each hashes, who holds each."""
    _facility_or_404(conn, facility_id)
    master = key_bytes(settings.credential_key) if settings.credential_key else None
    rows = conn.execute(
        "SELECT k.version, k.state, k.created_at, k.retired_at, "
        "(SELECT count(*) FROM member_credentials c JOIN members m USING (member_ref) "
        " WHERE m.facility_id = k.facility_id AND c.key_version = k.version "
        " AND c.revoked_at IS NULL) FROM facility_keys k WHERE k.facility_id = %s "
        "ORDER BY k.version",
        (facility_id,),
    ).fetchall()
    holders = conn.execute(
        "SELECT device_id, key_ids FROM device_sync_reports WHERE facility_id = %s",
        (facility_id,),
    ).fetchall()
    found = []
    for version, state, created_at, retired_at, count in rows:
        kid = keys.key_id_of(master, facility_id=facility_id, version=version) if master else None
        found.append(
            FacilityKey(
                version=version,
                state=state,
                key_id=kid,
                created_at=created_at,
                retired_at=retired_at,
                credentials=count,
                devices_holding=sorted(str(d) for d, ids in holders if kid in (ids or [])),
            )
        )
    return found


@router.post(
    "/api/v1/fleet/facilities/{facility_id}/keys/rotate",
    response_model=KeyRotation,
    tags=["fleet"],
)
def post_rotate(
    facility_id: str,
    conn: ConnDep,
    principal: KeysManager,
    master: KeyDep,
    force: Force = False,
) -> KeyRotation:
    """Start a new key version: every card hashed again; kiosks get the new key wrapped."""
    _facility_or_404(conn, facility_id)
    try:
        done = keys.rotate(conn, master=master, facility_id=facility_id, force=force)
    except keys.KeyRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"keys:{facility_id}",
        detail={"rotated_to": done.version, "rehashed": done.rehashed},
    )
    return KeyRotation(
        facility_id=facility_id,
        version=done.version,
        previous=done.previous,
        rehashed=done.rehashed,
        unsealed_missing=done.unsealed_missing,
    )


@router.post(
    "/api/v1/fleet/facilities/{facility_id}/keys/retire", response_model=Retired, tags=["fleet"]
)
def post_retire(
    facility_id: str,
    conn: ConnDep,
    principal: KeysManager,
    master: KeyDep,
    force: Force = False,
) -> Retired:
    """Stop using the previous key: refused while a kiosk of the facility lacks the new one."""
    _facility_or_404(conn, facility_id)
    found = keys.key_versions(conn, facility_id=facility_id)
    if "previous" not in found:
        raise HTTPException(409, f"facility {facility_id} has no previous key version to retire")
    lacking = keys.devices_lacking(conn, master=master, facility_id=facility_id)
    if lacking and not force:
        raise HTTPException(
            409,
            f"kiosks without the new key yet: {', '.join(lacking)} "
            "(they would stop recognising cards; wait for them or force)",
        )
    version = keys.retire(conn, facility_id=facility_id)
    write_audit(
        conn,
        actor=principal.actor,
        action="change",
        subject=f"keys:{facility_id}",
        detail={"retired": version, "forced_past": lacking},
    )
    return Retired(facility_id=facility_id, version=version)
