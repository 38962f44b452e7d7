"""The center's half of roster and configuration sync: build, sign, send (docs/contract.md).

`FleetSync` runs in the central app's lifespan (a thread with its own MQTT client, logged in
as the ingest). Every `fleet_poll_s` it
1. rebuilds the rosters and configurations of the devices of every facility a registry change
   marked (`fleet_dirty`, written by triggers in the change's own transaction) — and of every
   facility once a day, when the sittings window moves;
2. for a device whose content changed, stores the new version, then pushes the update — a
   delta from the version last sent, or the whole roster — with a message expiry of
   `fleet_push_ttl_s`: a device offline longer does not get a queue of stale deltas but asks
   on reconnection with the version it holds (step 3) and converges in one update;
3. answers each device's report on `…/sync` (stored by the ingest in `device_sync_reports`):
   nothing when it holds the latest, else one update from the version it holds (the whole
   roster when it refused one or when the center no longer has that version's digests).
A configuration (retained) carries the facility's key ids and, during a key rotation, the new
key wrapped under the old one. One process leads (a PostgreSQL advisory lock), others wait.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker.config import key_bytes
from broker.const import QOS_AT_LEAST_ONCE
from broker.keys import facility_key, key_id, sign, wrap_aad, wrap_key
from broker.models import DeviceConfig, Roster, TicketNumbering
from broker.roster import config_signing_bytes, delta, roster_signing_bytes
from broker.topics import Channel, topic
from broker.vocabulary import NameDisplay
from ingest_api.core.audit import write_audit
from ingest_api.core.config import Settings
from ingest_api.core.mqtt import center_client
from ingest_api.registry import keys, rosters
from ingest_api.registry.visitors import visitor_program

_LOG = logging.getLogger(__name__)
_LEADER_LOCK = 7_305_227_311  # one fleet sync per database
_PUBLISH_TIMEOUT_S = 10.0


def ticket_numbering(
    conn: psycopg.Connection[Any], *, facility_id: str, device_id: str
) -> TicketNumbering:
    """A kiosk's ticket numbers: an interleaved sequence over the facility's kiosks (the n-th
    of n kiosks, by device id, issues n, 2n, 3n, … offset), so no two repeat a number in a
    sitting without asking the center (docs/kiosk.md)."""
    devices = [
        str(r[0])
        for r in conn.execute(
            "SELECT device_id FROM devices WHERE facility_id = %s ORDER BY device_id",
            (facility_id,),
        )
    ]
    if device_id not in devices:
        return TicketNumbering()
    return TicketNumbering(first=devices.index(device_id) + 1, step=len(devices))


@dataclass
class FleetStats:
    """What the fleet sync has done since it started."""

    cycles: int = 0
    built: int = 0
    pushed: int = 0
    answered: int = 0
    full: int = 0
    configs: int = 0
    errors: int = 0


class FleetSync:
    """Keeps every registered kiosk's roster and configuration current."""

    def __init__(self, settings: Settings) -> None:
        """Prepare; `start()` connects. Needs the master credential key (signing, wrapping)."""
        if settings.credential_key is None:
            raise ValueError("fleet sync needs WELFARE_CREDENTIAL_KEY (the master key)")
        self.settings = settings
        self._master = key_bytes(settings.credential_key)
        self._tz = ZoneInfo(settings.timezone)
        self.stats = FleetStats()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._day: date | None = None
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    # -- lifecycle ----------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        """An MQTT v5 client of the ingest account (it may write every downstream topic)."""
        client = center_client(self.settings, client_id=f"{self.settings.consumer_id}-fleet")
        client.on_connect = lambda *_a: self._connected.set()
        client.on_disconnect = lambda *_a: self._connected.clear()
        return client

    def start(self) -> None:
        """Connect to the broker and start the sync thread."""
        self._stop.clear()
        self._client.connect_async(
            self.settings.mqtt.host, self.settings.mqtt.port, keepalive=self.settings.mqtt.keepalive
        )
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="fleet-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop syncing and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def _run(self) -> None:
        """Lead (or wait to), then sync every `fleet_poll_s` until stopped."""
        conn: psycopg.Connection[Any] | None = None
        leader = False
        delay = self.settings.fleet_poll_s
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        self.settings.database_url, autocommit=True, connect_timeout=5
                    )
                    leader = False
                if not leader:
                    row = conn.execute(
                        "SELECT pg_try_advisory_lock(%s)", (_LEADER_LOCK,)
                    ).fetchone()
                    leader = bool(row and row[0])
                if leader and self._connected.is_set():
                    self.cycle(conn)
                delay = self.settings.fleet_poll_s
            except psycopg.Error as exc:
                self.stats.errors += 1
                _LOG.warning("fleet sync: database error (%s); retrying", exc)
                if conn is not None:
                    conn.close()
                conn = None
                delay = min(delay * 2, 15.0)
            except Exception:
                self.stats.errors += 1
                _LOG.exception("fleet sync cycle failed")
            self._stop.wait(delay)
        if conn is not None:
            conn.close()

    # -- one cycle ----------------------------------------------------------------------

    def cycle(self, conn: psycopg.Connection[Any]) -> None:
        """Rebuild what registry changes touched, then answer the devices' reports."""
        self.stats.cycles += 1
        now = datetime.now(UTC)
        today = now.astimezone(self._tz).date()
        row = conn.execute("SELECT max(id) FROM fleet_dirty").fetchone()
        upto = int(row[0]) if row and row[0] is not None else 0
        facilities = {
            str(r[0])
            for r in conn.execute(
                "SELECT DISTINCT facility_id FROM fleet_dirty WHERE id <= %s", (upto,)
            )
        }
        if today != self._day:  # a new day: every roster's sittings window moves
            every = conn.execute("SELECT DISTINCT facility_id FROM devices")
            facilities |= {str(r[0]) for r in every}
            self._day = today
        for facility_id in sorted(facilities):
            devices = [
                str(r[0])
                for r in conn.execute(
                    "SELECT device_id FROM devices WHERE facility_id = %s ORDER BY device_id",
                    (facility_id,),
                )
            ]
            for device_id in devices:
                self.sync_device(conn, facility_id=facility_id, device_id=device_id, now=now)
        if upto:
            conn.execute("DELETE FROM fleet_dirty WHERE id <= %s", (upto,))
        reports = conn.execute(
            "SELECT r.facility_id, r.device_id, r.roster_version, r.reason, r.received_at "
            "FROM device_sync_reports r JOIN devices d USING (facility_id, device_id) "
            "WHERE NOT r.answered ORDER BY r.received_at"
        ).fetchall()
        for facility_id, device_id, held, reason, received_at in reports:
            self.answer(
                conn,
                facility_id=facility_id,
                device_id=device_id,
                held=held,
                whole=reason == "refused",
                now=now,
            )
            conn.execute(
                "UPDATE device_sync_reports SET answered = true WHERE facility_id = %s "
                "AND device_id = %s AND received_at = %s",
                (facility_id, device_id, received_at),
            )

    def sync_device(
        self, conn: psycopg.Connection[Any], *, facility_id: str, device_id: str, now: datetime
    ) -> Roster:
        """Build the device's roster and configuration; send what changed; returns the latest."""
        today = now.astimezone(self._tz).date()
        with conn.transaction():
            latest = rosters.build_roster(
                conn,
                facility_id=facility_id,
                device_id=device_id,
                today=today,
                issued_at=now,
                timezone=self.settings.timezone,
            )
            state = conn.execute(
                "SELECT latest_version, latest_hash, sent_version, config_version "
                "FROM device_roster_state WHERE facility_id = %s AND device_id = %s",
                (facility_id, device_id),
            ).fetchone()
            changed = state is None or state[1] != latest.content_hash
            if changed:
                rosters.store_version(conn, roster=latest)
                self.stats.built += 1
            else:
                assert state is not None
                latest = latest.model_copy(update={"version": state[0]})
            sent = state[2] if state else None
            config_version = state[3] if state else None
        if sent != latest.version:
            update = self._update_from(conn, latest=latest, base=sent)
            if self._publish_roster(update):
                self.stats.pushed += 1
                self._mark_sent(conn, latest)
            else:
                self._mark_dirty(conn, facility_id)
        config = self.build_config(conn, facility_id=facility_id, device_id=device_id, now=now)
        if config is not None and config.version != config_version:
            if self._publish(
                topic(facility_id, device_id, Channel.CONFIG),
                config.model_dump_json(exclude_none=True),
                retain=True,
            ):
                self.stats.configs += 1
                conn.execute(
                    "UPDATE device_roster_state SET config_version = %s, config_sent_at = now() "
                    "WHERE facility_id = %s AND device_id = %s",
                    (config.version, facility_id, device_id),
                )
            else:
                self._mark_dirty(conn, facility_id)
        rosters.prune_contents(conn, facility_id=facility_id, device_id=device_id)
        return latest

    def answer(
        self,
        conn: psycopg.Connection[Any],
        *,
        facility_id: str,
        device_id: str,
        held: str | None,
        whole: bool,
        now: datetime,
    ) -> None:
        """Answer a device's report: one update to the latest, unless it holds it already."""
        row = conn.execute(
            "SELECT latest_version FROM device_roster_state WHERE facility_id = %s "
            "AND device_id = %s",
            (facility_id, device_id),
        ).fetchone()
        if row is not None and row[0] is not None and held == row[0] and not whole:
            return  # in step (changes were rebuilt earlier in this cycle): nothing to build
        latest = self.sync_device(conn, facility_id=facility_id, device_id=device_id, now=now)
        if held == latest.version and not whole:
            return
        update = self._update_from(conn, latest=latest, base=None if whole else held)
        if self._publish_roster(update):
            self.stats.answered += 1
            self._mark_sent(conn, latest)

    # -- building -------------------------------------------------------------------------

    def _update_from(
        self, conn: psycopg.Connection[Any], *, latest: Roster, base: str | None
    ) -> Roster:
        """A delta from `base` when its digests are kept, else the whole roster; signed."""
        update = latest
        if base is not None:
            try:
                digests = rosters.digests_of(
                    conn, facility_id=latest.facility_id, device_id=latest.device_id, version=base
                )
            except KeyError:
                pass
            else:
                update = delta(latest, base_version=base, base_digests=digests)
        if not update.is_delta:
            self.stats.full += 1
        signing = self._keys(conn, latest.facility_id)
        return update.model_copy(update={"signatures": sign(signing, roster_signing_bytes(update))})

    def _keys(self, conn: psycopg.Connection[Any], facility_id: str) -> list[bytes]:
        """The facility's keys in use, current first."""
        versions = keys.in_use(conn, facility_id=facility_id)
        return keys.facility_keys(self._master, facility_id=facility_id, versions=versions)

    def build_config(
        self, conn: psycopg.Connection[Any], *, facility_id: str, device_id: str, now: datetime
    ) -> DeviceConfig | None:
        """The device's configuration: the facility's settings, its keys in use, signed."""
        row = conn.execute(
            "SELECT f.name, f.name_display, d.health_interval_s, d.resend_after_s "
            "FROM devices d JOIN facilities f USING (facility_id) "
            "WHERE d.facility_id = %s AND d.device_id = %s",
            (facility_id, device_id),
        ).fetchone()
        if row is None:
            return None
        versions = keys.in_use(conn, facility_id=facility_id)
        texts = [facility_key(self._master, facility_id=facility_id, version=v) for v in versions]
        ids = [key_id(t.encode()) for t in texts]
        tickets = ticket_numbering(conn, facility_id=facility_id, device_id=device_id)
        visitors_under = visitor_program(conn, facility_id=facility_id)
        wrapped = (
            [
                wrap_key(
                    key_text=texts[0],
                    under=texts[1].encode(),
                    aad=wrap_aad(facility_id, device_id),
                )
            ]
            if len(texts) > 1
            else []
        )
        replay = conn.execute(
            "SELECT replay_id, since FROM replay_requests WHERE expires_at > %s "
            "AND (facility_id IS NULL OR facility_id = %s) "
            "ORDER BY requested_at DESC, replay_id LIMIT 1",
            (now, facility_id),
        ).fetchone()
        content: dict[str, Any] = {
            "facility_name": str(row[0])[:80],
            "name_display": NameDisplay(row[1]).value,
            "health_interval_s": float(row[2]),
            "resend_after_s": float(row[3]),
            "key_ids": ids,
            "wrapped": [(w.key_id, w.wrapped_with) for w in wrapped],
            "tickets": [tickets.first, tickets.step],
            "visitor_program_id": visitors_under,
        }
        if replay:  # only then: the versions of every other configuration stay as they were
            content["replay"] = [str(replay[0]), replay[1].isoformat()]
        version = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
        config = DeviceConfig(
            facility_id=facility_id,
            device_id=device_id,
            facility_name=content["facility_name"],
            name_display=NameDisplay(row[1]),
            health_interval_s=content["health_interval_s"],
            resend_after_s=content["resend_after_s"],
            issued_at=now,
            version=version,
            key_ids=ids,
            wrapped_keys=wrapped or None,
            replay_id=str(replay[0]) if replay else None,
            replay_since=replay[1] if replay else None,
            tickets=tickets,
            visitor_program_id=visitors_under,
        )
        signing = [t.encode() for t in texts]
        return config.model_copy(update={"signatures": sign(signing, config_signing_bytes(config))})

    # -- sending ----------------------------------------------------------------------------

    def _publish_roster(self, update: Roster) -> bool:
        """Send a roster update (expires after fleet_push_ttl_s); whether the broker took it."""
        return self._publish(
            topic(update.facility_id, update.device_id, Channel.ROSTER),
            update.model_dump_json(exclude_none=True),
            expiry=self.settings.fleet_push_ttl_s,
        )

    def _publish(
        self, topic_name: str, payload: str, *, retain: bool = False, expiry: int | None = None
    ) -> bool:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        props = None
        if expiry is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = expiry
        info = self._client.publish(
            topic_name, payload, qos=QOS_AT_LEAST_ONCE, retain=retain, properties=props
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(_PUBLISH_TIMEOUT_S)
        return info.is_published()

    def _mark_sent(self, conn: psycopg.Connection[Any], latest: Roster) -> None:
        """Remember the version sent (the base of the next push)."""
        conn.execute(
            "UPDATE device_roster_state SET sent_version = %s, sent_at = now() "
            "WHERE facility_id = %s AND device_id = %s",
            (latest.version, latest.facility_id, latest.device_id),
        )

    def _mark_dirty(self, conn: psycopg.Connection[Any], facility_id: str) -> None:
        """Try the facility again next cycle (the broker did not take a message)."""
        conn.execute("INSERT INTO fleet_dirty (facility_id) VALUES (%s)", (facility_id,))


def request_replay(
    conn: psycopg.Connection[Any],
    *,
    since: datetime,
    reason: str,
    actor: str,
    now: datetime,
    keep_days: float,
    facility_id: str | None = None,
) -> str:
    """Ask every kiosk (of one facility, or all) to resend what it confirmed since `since`.

    After a restore of the central database: the fleet sync carries the request in each
    kiosk's signed configuration until it expires with the kiosks' keep window. Audited as a
    change; returns the request's id.
    """
    if not reason.strip():
        raise ValueError("a replay needs a reason (audited)")
    if since > now:
        raise ValueError("since lies in the future")
    if now - since > timedelta(days=keep_days):
        raise ValueError(f"the kiosks keep confirmed events only {keep_days:g} days")
    replay_id = f"r{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    with conn.transaction():
        conn.execute(
            "INSERT INTO replay_requests (replay_id, facility_id, since, requested_at, "
            "requested_by, reason, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                replay_id,
                facility_id,
                since,
                now,
                actor,
                reason,
                since + timedelta(days=keep_days),
            ),
        )
        conn.execute(
            "INSERT INTO fleet_dirty (facility_id) SELECT facility_id FROM facilities "
            "WHERE %s::text IS NULL OR facility_id = %s",
            (facility_id, facility_id),
        )
        write_audit(
            conn,
            actor=actor,
            action="change",
            subject=f"replay:{replay_id}",
            reason=reason,
            detail={"since": since.isoformat(), "facility_id": facility_id},
        )
    return replay_id
