"""The device's roster tables: a whole roster or a delta applied atomically, checked by hash.

An update is written inside one SQLite transaction; before it commits, the content hash of
what the device would then hold (broker/roster.py, over the stored rows) must equal the
update's `content_hash`, else the transaction rolls back and the last good roster stays. Taps
keep being decided throughout: readers see the last committed roster (WAL).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from zoneinfo import ZoneInfo

import aiosqlite

from broker.models import ProgramSession, Roster, Sitting
from broker.roster import content_hash_of_lines, member_digest

ROSTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS roster_schedule (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS roster_schedule_program ON roster_schedule (program_id);
CREATE TABLE IF NOT EXISTS roster_sittings (
    program_id TEXT NOT NULL,
    on_date    TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS roster_sittings_day ON roster_sittings (on_date);
CREATE TABLE IF NOT EXISTS credential_keys (
    key_id   TEXT PRIMARY KEY,
    key_text TEXT NOT NULL,
    added_at REAL NOT NULL
);
"""


class RosterRefused(Exception):
    """An update the device does not apply; it keeps the roster it holds.

    `behind`: the delta is for another version than the one held (ask for a delta from it);
    `refused`: the result would not match the update's hash (ask for a whole roster).
    """

    def __init__(self, reason: str, detail: str) -> None:
        """Keep the reason (a `SyncReason` value) and a short detail."""
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


async def migrate_roster_tables(db: aiosqlite.Connection) -> None:
    """Bring a device database from before per-member digests and sittings up to date."""
    await db.executescript(ROSTER_SCHEMA)
    cur = await db.execute("PRAGMA table_info(roster_members)")
    if "digest" not in {str(r[1]) for r in await cur.fetchall()}:
        await db.execute("ALTER TABLE roster_members ADD COLUMN digest TEXT")
    cur = await db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'roster_programs'"
    )
    if await cur.fetchone() is not None:
        # One row per program could not hold a program held at different times on
        # different days; the rows move to roster_schedule as they are.
        await db.execute("BEGIN IMMEDIATE")
        await db.execute(
            "INSERT INTO roster_schedule (program_id, body) "
            "SELECT program_id, body FROM roster_programs"
        )
        await db.execute("DROP TABLE roster_programs")
        await db.commit()


class RosterTables:
    """Roster methods of the device store (mixed into `EdgeStore`, same connection and lock)."""

    _db: aiosqlite.Connection
    _reader: aiosqlite.Connection
    _write: asyncio.Lock

    async def _set_meta(self, key: str, value: str) -> None:
        """Provided by the store."""
        raise NotImplementedError

    async def _get_meta(self, key: str) -> str | None:
        """Provided by the store."""
        raise NotImplementedError

    async def _read_meta(self, key: str) -> str | None:
        """Provided by the store."""
        raise NotImplementedError

    async def _del_meta(self, key: str) -> None:
        """Remove a meta value (caller holds the write lock)."""
        await self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- writing ------------------------------------------------------------------------

    async def replace_roster(self, roster: Roster) -> str:
        """Install a whole roster (a file, the demo, tests); returns its content hash."""
        if roster.is_delta:
            raise ValueError("a delta needs the roster it applies to: use apply_roster")
        return await self.apply_roster(roster, counted=False)

    async def apply_roster(self, update: Roster, *, counted: bool = True) -> str:
        """Apply a whole roster or a delta in one transaction; returns the new content hash.

        Raises RosterRefused (nothing changed) when a delta's base is not the version held or
        when the result does not hash to `update.content_hash` (when the update carries one).
        """
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                if update.is_delta:
                    held = await self._get_meta("roster_version")
                    if held != update.base_version:
                        raise RosterRefused(
                            "behind", f"delta from {update.base_version}, holding {held}"
                        )
                    await self._write_delta(update)
                else:
                    await self._write_whole(update)
                await self._write_schedule(update)
                digest = await self._content_hash()
                if update.content_hash is not None and digest != update.content_hash:
                    raise RosterRefused(
                        "refused", f"content hash {digest[:12]}… is not {update.content_hash[:12]}…"
                    )
                await self._set_meta("roster_version", update.version)
                await self._set_meta("roster_hash", digest)
                if counted:
                    applied = int(await self._get_meta("roster_updates") or 0)
                    await self._set_meta("roster_updates", str(applied + 1))
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return digest

    async def _write_whole(self, roster: Roster) -> None:
        """Replace every member (inside the caller's transaction)."""
        await self._db.execute("DELETE FROM roster_members")
        await self._db.execute("DELETE FROM roster_credentials")
        await self._upsert_members(roster)

    async def _write_delta(self, update: Roster) -> None:
        """Upsert changed members, delete removed ones (inside the caller's transaction)."""
        gone = [(ref,) for ref in update.removed or []]
        changed = [(m.member_ref,) for m in update.members]
        await self._db.executemany("DELETE FROM roster_members WHERE member_ref = ?", gone)
        await self._db.executemany(
            "DELETE FROM roster_credentials WHERE member_ref = ?", gone + changed
        )
        await self._upsert_members(update)

    async def _upsert_members(self, roster: Roster) -> None:
        """Write the roster's members with their digests and credential hashes."""
        await self._db.executemany(
            "INSERT OR REPLACE INTO roster_members (member_ref, body, digest) VALUES (?, ?, ?)",
            [(m.member_ref, m.model_dump_json(), member_digest(m)) for m in roster.members],
        )
        await self._db.executemany(
            "INSERT OR REPLACE INTO roster_credentials VALUES (?, ?)",
            [(h, m.member_ref) for m in roster.members for h in m.credential_hashes],
        )

    async def _write_schedule(self, roster: Roster) -> None:
        """Programs and sittings are always sent whole: replace them."""
        await self._db.execute("DELETE FROM roster_schedule")
        await self._db.execute("DELETE FROM roster_sittings")
        await self._db.executemany(
            "INSERT INTO roster_schedule (program_id, body) VALUES (?, ?)",
            [(p.program_id, p.model_dump_json()) for p in roster.programs],
        )
        await self._db.executemany(
            "INSERT INTO roster_sittings (program_id, on_date, body) VALUES (?, ?, ?)",
            [(s.program_id, s.on.isoformat(), s.model_dump_json()) for s in roster.sittings or []],
        )
        await self._set_meta("roster_timezone", roster.timezone)
        await self._set_meta("roster_identity", f"{roster.facility_id}/{roster.device_id}")
        if roster.sittings_until is None:
            await self._del_meta("sittings_until")
            await self._del_meta("sittings_from")
        else:
            await self._set_meta("sittings_until", roster.sittings_until.isoformat())
            # The center lists sittings from the day it built the roster (its local date).
            built = roster.issued_at.astimezone(ZoneInfo(roster.timezone)).date()
            await self._set_meta("sittings_from", min(built, roster.sittings_until).isoformat())

    async def _content_hash(self) -> str:
        """The content hash of the rows as they stand (inside the caller's transaction)."""
        facility_id, _, device_id = (await self._get_meta("roster_identity") or "/").partition("/")
        until = await self._get_meta("sittings_until")
        cur = await self._db.execute("SELECT member_ref, digest FROM roster_members")
        digests = {str(r[0]): str(r[1]) for r in await cur.fetchall()}
        cur = await self._db.execute("SELECT body FROM roster_schedule")
        programs = [str(r[0]) for r in await cur.fetchall()]
        cur = await self._db.execute("SELECT body FROM roster_sittings")
        sittings = [str(r[0]) for r in await cur.fetchall()]
        return content_hash_of_lines(
            facility_id=facility_id,
            device_id=device_id,
            timezone=await self._get_meta("roster_timezone") or "",
            sittings_until=date.fromisoformat(until) if until else None,
            program_lines=programs,
            sitting_lines=sittings if until else None,
            digests=digests,
        )

    # -- reading ------------------------------------------------------------------------

    async def roster_hash(self) -> str | None:
        """Content hash of the roster in force, if any."""
        return await self._read_meta("roster_hash")

    async def face_templates(self) -> list[tuple[str, str, str]]:
        """(member ref, key id, sealed base64) of every roster member with a face template."""
        cur = await self._reader.execute(
            "SELECT member_ref, json_extract(body, '$.face_template.key_id'), "
            "json_extract(body, '$.face_template.sealed') FROM roster_members "
            "WHERE json_extract(body, '$.face_template') IS NOT NULL ORDER BY member_ref"
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]

    async def roster_updates(self) -> int:
        """How many updates from the center this device has applied."""
        return int(await self._read_meta("roster_updates") or 0)

    async def schedule(self, day: date) -> tuple[list[ProgramSession], list[Sitting] | None]:
        """The weekly programs, and the day's sittings when the roster covers `day` (else None).

        A day outside the days the roster's sittings cover (after the last one: a kiosk offline
        for over a week) has no sittings: the kiosk decides by the weekly pattern.
        """
        cur = await self._reader.execute("SELECT body FROM roster_schedule ORDER BY seq")
        programs = [ProgramSession.model_validate_json(r[0]) for r in await cur.fetchall()]
        until = await self._read_meta("sittings_until")
        since = await self._read_meta("sittings_from")
        if until is None or day > date.fromisoformat(until):
            return programs, None
        if since is not None and day < date.fromisoformat(since):
            return programs, None  # a clock behind the center's: the weekly pattern decides
        cur = await self._reader.execute(
            "SELECT body FROM roster_sittings WHERE on_date = ?", (day.isoformat(),)
        )
        return programs, [Sitting.model_validate_json(r[0]) for r in await cur.fetchall()]

    # -- credential keys received from the center -----------------------------------------

    async def credential_keys(self) -> dict[str, str]:
        """Keys the center sent (key id -> key text), oldest first."""
        cur = await self._reader.execute(
            "SELECT key_id, key_text FROM credential_keys ORDER BY added_at"
        )
        return {str(r[0]): str(r[1]) for r in await cur.fetchall()}

    async def set_credential_keys(self, keys: dict[str, str]) -> None:
        """Keep exactly these received keys (new ones added, retired ones deleted)."""
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._db.execute("SELECT key_id FROM credential_keys")
                retired = [(r[0],) for r in await cur.fetchall() if r[0] not in keys]
                await self._db.executemany("DELETE FROM credential_keys WHERE key_id = ?", retired)
                await self._db.executemany(
                    "INSERT OR IGNORE INTO credential_keys VALUES (?, ?, ?)",
                    [(k, text, time.time()) for k, text in keys.items()],
                )
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
