"""Durable device store (SQLite, WAL, synchronous=FULL): outbox, served log, roster."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar
from uuid import UUID

import aiosqlite

from broker.models import (
    AttendanceEvent,
    DeviceConfig,
    PeerServe,
    ProgramSession,
    Roster,
    RosterMember,
    TicketNumbering,
)
from broker.vocabulary import Outcome
from edge_agent.models import OutboxRow, OutboxStats, ParkedEvent
from edge_agent.roster_store import RosterTables, migrate_roster_tables

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    payload       TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_sent_at  REAL,
    send_count    INTEGER NOT NULL DEFAULT 0,
    confirmed_at  REAL
);
CREATE INDEX IF NOT EXISTS outbox_unconfirmed ON outbox (seq) WHERE confirmed_at IS NULL;
-- The publisher counts what is in flight before every batch; without this it scans the backlog.
CREATE INDEX IF NOT EXISTS outbox_in_flight ON outbox (last_sent_at) WHERE confirmed_at IS NULL;
CREATE TABLE IF NOT EXISTS served (
    member_ref   TEXT NOT NULL,
    program_id   TEXT NOT NULL,
    service_date TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    ticket_no    INTEGER,
    sitting      TEXT NOT NULL DEFAULT '',  -- start (HH:MM) of the day's sitting ('' unknown)
    PRIMARY KEY (member_ref, program_id, service_date)
);
-- Serves another kiosk of the hall made for a member this kiosk had served too (the kiosks
-- could not reach each other): both stay recorded; staff see them flagged (docs/kiosk.md).
CREATE TABLE IF NOT EXISTS served_conflicts (
    other_event_id TEXT PRIMARY KEY,
    member_ref     TEXT NOT NULL,
    program_id     TEXT NOT NULL,
    service_date   TEXT NOT NULL,
    own_event_id   TEXT NOT NULL,
    other_device   TEXT NOT NULL,
    noted_at       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    program_id   TEXT NOT NULL,
    service_date TEXT NOT NULL,
    last_no      INTEGER NOT NULL,
    PRIMARY KEY (program_id, service_date)
);
CREATE TABLE IF NOT EXISTS roster_members (
    member_ref   TEXT PRIMARY KEY,
    body         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS roster_credentials (
    credential_hash TEXT PRIMARY KEY,
    member_ref      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


async def _migrate_outbox(db: aiosqlite.Connection) -> None:
    """Add the parking columns (contract 1.4) to a device database from before them."""
    cur = await db.execute("PRAGMA table_info(outbox)")
    columns = {str(r[1]) for r in await cur.fetchall()}
    if "parked_at" not in columns:
        # An event the center refused for good: kept with the reason, never sent again.
        await db.execute("ALTER TABLE outbox ADD COLUMN parked_at REAL")
        await db.execute("ALTER TABLE outbox ADD COLUMN park_reason TEXT")
    await db.execute(
        "CREATE INDEX IF NOT EXISTS outbox_parked ON outbox (seq) WHERE parked_at IS NOT NULL"
    )


EventBuilder = Callable[[Outcome, int | None], AttendanceEvent]
T = TypeVar("T")

# What a member and staff are told when nothing can be kept (the views show it as is).
STORAGE_FULL_MESSAGE = (
    "기기 저장 공간이 가득 찼습니다. 직원에게 알려 주세요 (출석이 기록되지 않았습니다)."
)


class StorageFull(RuntimeError):
    """Nothing can be kept: the device's disk is full even after freeing what the center has."""


def _is_full(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for lack of room (SQLITE_FULL)."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)


class EventOutbox(ABC):
    """The small interface the publisher needs: put, get a batch, acknowledge."""

    @abstractmethod
    async def put(self, event: AttendanceEvent) -> None:
        """Store one event durably; it stays until acknowledged."""

    @abstractmethod
    async def due(self, *, limit: int, resend_before: float) -> list[OutboxRow]:
        """Oldest unconfirmed events never sent or last sent before `resend_before`."""

    @abstractmethod
    async def mark_sent(self, seqs: Iterable[int], *, at: float) -> None:
        """Remember that these events went out at `at`."""

    @abstractmethod
    async def acknowledge(self, event_ids: Iterable[UUID], *, at: float) -> int:
        """Mark events confirmed by the center; returns how many were newly confirmed."""


class EdgeStore(RosterTables, EventOutbox):
    """The device's SQLite database; one writer at a time, every commit durable."""

    def __init__(
        self, db: aiosqlite.Connection, reader: aiosqlite.Connection | None = None
    ) -> None:
        """Wrap open connections; use `EdgeStore.open`."""
        self._db = db
        # Roster reads (every tap) go through a connection of their own: they see the last
        # committed roster, never one half-way through an update on the writer's connection.
        self._reader = reader or db
        self._write = asyncio.Lock()
        # Set by the agent: where the database lives and the room always left free on its
        # file system (WELFARE_STORAGE_RESERVE_MB), so SQLite never meets a full disk mid-write.
        self.path: Path | None = None
        self.reserve_bytes = 0
        self.freed_for_room = 0  # confirmed events pruned early to make room (counted)

    @classmethod
    async def open(cls, path: Path | str) -> EdgeStore:
        """Open (or create) the store at `path`."""
        db = await aiosqlite.connect(str(path), isolation_level=None)
        # WAL lets readers run during a write; FULL makes every COMMIT survive a power cut.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.executescript(SCHEMA)
        await _migrate_outbox(db)
        await migrate_roster_tables(db)
        cur = await db.execute("PRAGMA table_info(served)")
        if "sitting" not in {str(r[1]) for r in await cur.fetchall()}:
            # A device database from before capacity per sitting (docs/kiosk.md).
            await db.execute("ALTER TABLE served ADD COLUMN sitting TEXT NOT NULL DEFAULT ''")
        if str(path) == ":memory:":
            return cls(db)
        reader = await aiosqlite.connect(str(path), isolation_level=None)
        await reader.execute("PRAGMA busy_timeout=5000")
        await reader.execute("PRAGMA query_only=ON")
        store = cls(db, reader)
        store.path = Path(path)
        return store

    # -- room -----------------------------------------------------------------------------

    def free_bytes(self) -> int | None:
        """Free bytes on the database's file system (None for an in-memory store)."""
        if self.path is None:
            return None
        try:
            return shutil.disk_usage(self.path.resolve().parent).free
        except OSError:
            return None

    async def _make_room(self) -> bool:
        """Free what the center already holds (confirmed events, oldest first); whether any.

        Never an unconfirmed or parked event: those exist nowhere else. Pruning confirmed
        events early only shortens the window a replay after a center restore can reach.
        """
        freed = await self.prune_confirmed(before=time.time() + 1)
        if freed:
            self.freed_for_room += freed
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return freed > 0

    async def _with_room(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run a write that keeps an event; make room first or refuse (StorageFull), clearly.

        Below the reserve, or when SQLite reports a full disk, the confirmed events are freed
        and the write is tried again; if there is still no room, StorageFull: the tap is
        refused with a message, nothing already kept is dropped.
        """
        free = self.free_bytes()
        if free is not None and free < self.reserve_bytes:
            await self._make_room()
            free = self.free_bytes()
            if free is not None and free < self.reserve_bytes:
                raise StorageFull(STORAGE_FULL_MESSAGE)
        try:
            return await write()
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
        if not await self._make_room():
            raise StorageFull(STORAGE_FULL_MESSAGE)
        try:
            return await write()
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise StorageFull(STORAGE_FULL_MESSAGE) from exc
            raise

    async def close(self) -> None:
        """Close the connections."""
        if self._reader is not self._db:
            await self._reader.close()
        await self._db.close()

    async def __aenter__(self) -> Self:
        """Use as an async context manager."""
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close on exit."""
        await self.close()

    # -- roster -------------------------------------------------------------------------

    async def member_by_credential(self, credential_hash: str) -> RosterMember | None:
        """Find the member holding a credential."""
        cur = await self._reader.execute(
            "SELECT m.body FROM roster_credentials c JOIN roster_members m USING (member_ref)"
            " WHERE c.credential_hash = ?",
            (credential_hash,),
        )
        row = await cur.fetchone()
        return RosterMember.model_validate_json(row[0]) if row else None

    async def member(self, member_ref: str) -> RosterMember | None:
        """Find a member by reference."""
        cur = await self._reader.execute(
            "SELECT body FROM roster_members WHERE member_ref = ?", (member_ref,)
        )
        row = await cur.fetchone()
        return RosterMember.model_validate_json(row[0]) if row else None

    async def programs(self) -> list[ProgramSession]:
        """All programs this device serves."""
        cur = await self._reader.execute("SELECT body FROM roster_schedule ORDER BY seq")
        return [ProgramSession.model_validate_json(r[0]) for r in await cur.fetchall()]

    async def roster_version(self) -> str | None:
        """Version of the roster in force, if any."""
        return await self._read_meta("roster_version")

    async def save_config(self, config: DeviceConfig) -> None:
        """Keep the last configuration the center sent."""
        async with self._write:
            await self._set_meta("config", config.model_dump_json())

    async def config(self) -> DeviceConfig | None:
        """The last configuration the center sent."""
        raw = await self._read_meta("config")
        return DeviceConfig.model_validate_json(raw) if raw else None

    # -- decisions ----------------------------------------------------------------------

    async def check_in(
        self,
        *,
        member_ref: str,
        program_id: str,
        service_date: date,
        numbered: bool,
        override: bool,
        build: EventBuilder,
        sitting: str = "",
        capacity: int | None = None,
        numbering: TicketNumbering | None = None,
    ) -> AttendanceEvent:
        """Record a check-in in one durable transaction (or refuse it: StorageFull).

        One serve per member, program and day (a service); `sitting` (its start, HH:MM) names
        which sitting of the day, whose `capacity` counts the hall's serves (peers' included);
        a full sitting is recorded as such and serves nobody.
        """
        return await self._with_room(
            lambda: self._check_in(
                member_ref=member_ref,
                program_id=program_id,
                service_date=service_date,
                numbered=numbered,
                override=override,
                build=build,
                sitting=sitting,
                capacity=capacity,
                numbering=numbering,
            )
        )

    async def _check_in(
        self,
        *,
        member_ref: str,
        program_id: str,
        service_date: date,
        numbered: bool,
        override: bool,
        build: EventBuilder,
        sitting: str,
        capacity: int | None,
        numbering: TicketNumbering | None,
    ) -> AttendanceEvent:
        """Record a check-in in one durable transaction: served log, ticket number, outbox."""
        day = service_date.isoformat()
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._db.execute(
                    "SELECT ticket_no FROM served WHERE member_ref=? AND program_id=? "
                    "AND service_date=?",
                    (member_ref, program_id, day),
                )
                row = await cur.fetchone()
                if row is not None and not override:
                    event = build(Outcome.ALREADY_SERVED, row[0])
                elif (
                    capacity is not None
                    and not override
                    and await self._served_in(program_id, day, sitting) >= capacity
                ):
                    event = build(Outcome.SITTING_FULL, None)
                else:
                    ticket = (
                        await self._next_ticket(program_id, day, sitting, numbering)
                        if numbered
                        else None
                    )
                    event = build(Outcome.ACCEPTED, ticket)
                    await self._db.execute(
                        "INSERT OR IGNORE INTO served VALUES (?, ?, ?, ?, ?, ?)",
                        (member_ref, program_id, day, str(event.event_id), ticket, sitting),
                    )
                await self._insert_outbox(event)
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return event

    async def _served_in(self, program_id: str, day: str, sitting: str) -> int:
        """Serves of one sitting, by every kiosk of the hall this kiosk has heard of."""
        cur = await self._db.execute(
            "SELECT count(*) FROM served WHERE program_id=? AND service_date=? AND sitting=?",
            (program_id, day, sitting),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def served_in_sitting(self, program_id: str, service_date: date, sitting: str) -> int:
        """Serves of one sitting known here (staff's seats left)."""
        return await self._served_in(program_id, service_date.isoformat(), sitting)

    async def apply_peer_serve(self, serve: PeerServe) -> str:
        """Enter another kiosk's serve in the served log: 'applied', 'known', or 'conflict'.

        'conflict': this kiosk had served the member in the same sitting under another event
        (the kiosks could not talk): both serves stay recorded and the pair is kept for staff.
        """
        day = serve.service_date.isoformat()
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._db.execute(
                    "SELECT event_id FROM served WHERE member_ref=? AND program_id=? "
                    "AND service_date=?",
                    (serve.member_ref, serve.program_id, day),
                )
                row = await cur.fetchone()
                if row is None:
                    await self._db.execute(
                        "INSERT INTO served VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            serve.member_ref,
                            serve.program_id,
                            day,
                            str(serve.event_id),
                            serve.ticket_no,
                            f"{serve.sitting:%H:%M}" if serve.sitting else "",
                        ),
                    )
                    outcome = "applied"
                elif row[0] == str(serve.event_id):
                    outcome = "known"
                else:
                    await self._db.execute(
                        "INSERT OR IGNORE INTO served_conflicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            str(serve.event_id),
                            serve.member_ref,
                            serve.program_id,
                            day,
                            row[0],
                            serve.device_id,
                            time.time(),
                        ),
                    )
                    outcome = "conflict"
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return outcome

    async def served_conflicts(self, service_date: date) -> list[tuple[str, str, str]]:
        """(member_ref, program_id, other kiosk) of the day's double serves, for staff."""
        cur = await self._db.execute(
            "SELECT member_ref, program_id, other_device FROM served_conflicts "
            "WHERE service_date = ? ORDER BY noted_at",
            (service_date.isoformat(),),
        )
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]

    async def served_ticket(
        self, member_ref: str, program_id: str, service_date: date
    ) -> int | None:
        """The ticket of a member's serve in a sitting (-1: served without a ticket; None: not)."""
        cur = await self._db.execute(
            "SELECT ticket_no FROM served WHERE member_ref=? AND program_id=? AND service_date=?",
            (member_ref, program_id, service_date.isoformat()),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return -1 if row[0] is None else int(row[0])

    async def _next_ticket(
        self, program_id: str, day: str, sitting: str, numbering: TicketNumbering | None
    ) -> int:
        """Next number ticket of a sitting; called inside the check-in transaction.

        The counter counts this kiosk's tickets of the sitting; the number is the kiosk's own
        `numbering` of it (an interleaved sequence or a block), so kiosks never repeat one.
        """
        key = f"{program_id}@{sitting}" if sitting else program_id
        cur = await self._db.execute(
            "INSERT INTO tickets VALUES (?, ?, 1) ON CONFLICT (program_id, service_date) "
            "DO UPDATE SET last_no = last_no + 1 RETURNING last_no",
            (key, day),
        )
        row = await cur.fetchone()
        assert row is not None
        return (numbering or TicketNumbering()).number(int(row[0]))

    async def next_counter(self, name: str) -> int:
        """Next value of a named daily counter (visitor codes), committed durably."""
        async with self._write:
            cur = await self._db.execute(
                "INSERT INTO tickets VALUES (?, '', 1) ON CONFLICT (program_id, service_date) "
                "DO UPDATE SET last_no = last_no + 1 RETURNING last_no",
                (name,),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

    async def served_count(self, service_date: date) -> dict[str, int]:
        """Accepted check-ins per program on a day (the staff screen's counts)."""
        cur = await self._db.execute(
            "SELECT program_id, count(*) FROM served WHERE service_date = ? GROUP BY program_id",
            (service_date.isoformat(),),
        )
        return {r[0]: int(r[1]) for r in await cur.fetchall()}

    # -- outbox -------------------------------------------------------------------------

    async def put(self, event: AttendanceEvent) -> None:
        """Store one event durably (e.g. an unknown card) outside a check-in, or StorageFull."""
        await self._with_room(lambda: self._put(event))

    async def _put(self, event: AttendanceEvent) -> None:
        """Store one event durably in its own transaction."""
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await self._insert_outbox(event)
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def _insert_outbox(self, event: AttendanceEvent) -> None:
        """Append an event to the outbox inside the caller's transaction."""
        await self._db.execute(
            "INSERT INTO outbox (event_id, payload, created_at) VALUES (?, ?, ?)",
            (str(event.event_id), event.model_dump_json(exclude_none=True), time.time()),
        )

    async def due(self, *, limit: int, resend_before: float) -> list[OutboxRow]:
        """Oldest unconfirmed events never sent or last sent before `resend_before`."""
        cur = await self._db.execute(
            "SELECT seq, event_id, payload FROM outbox WHERE confirmed_at IS NULL "
            "AND (last_sent_at IS NULL OR last_sent_at < ?) AND parked_at IS NULL "
            "ORDER BY seq LIMIT ?",
            (resend_before, limit),
        )
        return [OutboxRow(int(r[0]), UUID(r[1]), r[2]) for r in await cur.fetchall()]

    async def in_flight(self, *, resend_before: float) -> int:
        """Events sent recently and still waiting for their confirmation."""
        cur = await self._db.execute(
            "SELECT count(*) FROM outbox WHERE confirmed_at IS NULL AND last_sent_at >= ? "
            "AND parked_at IS NULL",
            (resend_before,),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def mark_sent(self, seqs: Iterable[int], *, at: float) -> None:
        """Remember that these events went out at `at` (one transaction, one fsync per batch)."""
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await self._db.executemany(
                    "UPDATE outbox SET last_sent_at = ?, send_count = send_count + 1 WHERE seq = ?",
                    [(at, s) for s in seqs],
                )
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def resend_all(self) -> None:
        """Make every unconfirmed event due again (after a reconnect)."""
        async with self._write:
            await self._db.execute(
                "UPDATE outbox SET last_sent_at = NULL WHERE confirmed_at IS NULL "
                "AND last_sent_at IS NOT NULL AND parked_at IS NULL"
            )

    async def acknowledge(self, event_ids: Iterable[UUID], *, at: float) -> int:
        """Mark events confirmed by the center; returns how many were newly confirmed."""
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._db.executemany(
                    "UPDATE outbox SET confirmed_at = ? WHERE event_id = ? "
                    "AND confirmed_at IS NULL",
                    # Ids are TEXT in SQLite, written by str() in _insert_outbox: same form.
                    [(at, str(e)) for e in event_ids],
                )
                changed = cur.rowcount
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return max(changed, 0)

    async def park(self, refused: Iterable[tuple[UUID, str]], *, at: float) -> int:
        """Park events the center refused for good: kept with the reason, never resent."""
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._db.executemany(
                    "UPDATE outbox SET parked_at = ?, park_reason = ? WHERE event_id = ? "
                    "AND confirmed_at IS NULL AND parked_at IS NULL",
                    [(at, reason[:300], str(e)) for e, reason in refused],
                )
                changed = cur.rowcount
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return max(changed, 0)

    async def parked(self) -> list[ParkedEvent]:
        """Every parked event, oldest first, with the center's reason (for staff)."""
        cur = await self._db.execute(
            "SELECT event_id, payload, parked_at, park_reason FROM outbox "
            "WHERE parked_at IS NOT NULL ORDER BY seq"
        )
        return [
            ParkedEvent(UUID(r[0]), r[1], float(r[2]), str(r[3] or ""))
            for r in await cur.fetchall()
        ]

    async def replay_confirmed(self, *, since: float, replay_id: str) -> int | None:
        """Make events confirmed at or after `since` unconfirmed and due again, once per id.

        Returns how many, or None when this replay was already done. The ids and the count are
        committed with the change, so a restart neither repeats nor loses it.
        """
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                done = await self._get_meta("replays_done")
                ids: list[str] = json.loads(done) if done else []
                if replay_id in ids:
                    await self._db.rollback()
                    return None
                cur = await self._db.execute(
                    "UPDATE outbox SET confirmed_at = NULL, last_sent_at = NULL "
                    "WHERE confirmed_at IS NOT NULL AND confirmed_at >= ?",
                    (since,),
                )
                count = max(cur.rowcount, 0)
                await self._set_meta("replays_done", json.dumps([*ids[-19:], replay_id]))
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return count

    async def prune_confirmed(self, *, before: float) -> int:
        """Delete events confirmed before `before`; the center holds them now."""
        async with self._write:
            cur = await self._db.execute(
                "DELETE FROM outbox WHERE confirmed_at IS NOT NULL AND confirmed_at < ?", (before,)
            )
            return max(cur.rowcount, 0)

    async def stats(self) -> OutboxStats:
        """Pending and confirmed counts, and the age of the oldest pending event."""
        cur = await self._db.execute(
            "SELECT count(*) FILTER (WHERE confirmed_at IS NULL AND parked_at IS NULL), "
            "min(created_at) FILTER (WHERE confirmed_at IS NULL AND parked_at IS NULL), "
            "count(*) FILTER (WHERE confirmed_at IS NOT NULL), "
            "count(*) FILTER (WHERE parked_at IS NOT NULL) FROM outbox"
        )
        row = await cur.fetchone()
        assert row is not None
        return OutboxStats(int(row[0]), row[1], int(row[2]), int(row[3]))

    async def events_since(self, since: float) -> int:
        """How many events were recorded since `since` (device clock)."""
        cur = await self._db.execute("SELECT count(*) FROM outbox WHERE created_at >= ?", (since,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def all_events(self) -> list[AttendanceEvent]:
        """Every event still on the device, oldest first (for audits and tests)."""
        cur = await self._db.execute("SELECT payload FROM outbox ORDER BY seq")
        return [AttendanceEvent.model_validate_json(r[0]) for r in await cur.fetchall()]

    # -- meta ---------------------------------------------------------------------------

    async def _set_meta(self, key: str, value: str) -> None:
        """Set a meta value (caller holds the write lock)."""
        await self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    async def _read_meta(self, key: str) -> str | None:
        """Read a committed meta value (outside any transaction)."""
        cur = await self._reader.execute("SELECT value FROM meta WHERE key = ?", (key,))
        row = await cur.fetchone()
        return str(row[0]) if row else None

    async def _get_meta(self, key: str) -> str | None:
        """Read a meta value."""
        cur = await self._db.execute("SELECT value FROM meta WHERE key = ?", (key,))
        row = await cur.fetchone()
        return str(row[0]) if row else None


def roster_from_json(raw: str | bytes) -> Roster:
    """Parse a roster document (as sent on .../roster or loaded from a file)."""
    return Roster.model_validate(json.loads(raw))
