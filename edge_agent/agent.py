"""The edge agent: owns the store, the decision at a tap and the publisher."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from datetime import time as clock_time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import ZoneInfo

from broker.config import key_bytes
from broker.const import SOFTWARE_VERSION, VISITOR_CODE_PATTERN
from broker.hashing import credential_hash
from broker.ids import uuid7
from broker.models import (
    AttendanceEvent,
    DeviceConfig,
    DeviceHealth,
    ProgramSession,
    ReaderState,
    Roster,
    RosterMember,
    VisitorInfo,
    mask_name,
)
from broker.vocabulary import Gender, Method, NameDisplay, Outcome, ProgramKind
from edge_agent.config import EdgeSettings
from edge_agent.const import BUSY_DAY_EVENTS, EVENT_BYTES
from edge_agent.decision import day_sittings, eligible_programs, is_active, sessions_on_now
from edge_agent.health import ClockEstimator, cpu_temperature, disk_space
from edge_agent.metrics import EdgeMetrics
from edge_agent.models import ProgramChoice, TapResult
from edge_agent.peers import PeerSharing
from edge_agent.store import EdgeStore, StorageFull

if TYPE_CHECKING:
    from edge_agent.publisher import Publisher

_LOG = logging.getLogger(__name__)
MAX_REF_CHARS = 64  # broker.const.MEMBER_REF_PATTERN: a visitor code stands where a member would

Clock = Callable[[], datetime]
TapListener = Callable[[TapResult], None]


VISITOR_CODE = re.compile(VISITOR_CODE_PATTERN)


def visitor_code(facility_id: str, device_id: str, day: date, number: int) -> str:
    """A visitor's personal ID code, unique in the city: the device numbers its own.

    A member reference holds 64 characters at most: a device id too long for that stands in
    the code as a short hash of itself (still one device, one tag).
    """
    code = f"V-{facility_id}-{device_id}-{day:%Y%m%d}-{number:04d}"
    if len(code) <= MAX_REF_CHARS:
        return code
    tag = hashlib.sha256(device_id.encode()).hexdigest()[:8]
    return f"V-{facility_id}-{tag}-{day:%Y%m%d}-{number:04d}"


def utc_now() -> datetime:
    """The real clock (aware, UTC)."""
    return datetime.now(UTC)


class EdgeAgent:
    """One kiosk's agent. Every result it returns is already committed to the device's disk."""

    def __init__(self, settings: EdgeSettings, *, clock: Clock = utc_now) -> None:
        """Prepare the agent; `async with` opens the store and starts publishing."""
        self.settings = settings
        self.clock = clock
        self._key = key_bytes(settings.credential_key)
        # Keys the center sent during a rotation (newest first), tried before the provisioned one.
        self._received_keys: list[bytes] = []
        self._config: DeviceConfig | None = None
        self._tz = ZoneInfo(settings.timezone)
        self._store: EdgeStore | None = None
        self._publisher_task: asyncio.Task[None] | None = None
        self.publisher: Publisher | None = None  # with a broker: the MQTT side, its sync
        self._listeners: list[TapListener] = []
        self._readers: dict[str, ReaderState] = {}
        self._started = time.monotonic()
        self.publisher_wake = asyncio.Event()
        # True while the publisher is connected to the broker; views show it to staff.
        self.online = False
        self.online_since: datetime | None = None
        # The center's time of the last confirmation, and the clock offset from round trips.
        self.last_ack_at: datetime | None = None
        self.clock_estimator = ClockEstimator()
        self.storage_refusals = 0  # taps refused because nothing could be kept (disk full)
        self.metrics = EdgeMetrics()
        # Face match (edge_agent/face.py): templates opened here, and members whose sealed
        # template did not open (dropped, reported in the heartbeat); None while face is off.
        self.face_templates: int | None = None
        self.face_unreadable: list[str] = []
        self.peers = PeerSharing(self)
        self._visitor_listeners: list[Callable[[VisitorInfo], None]] = []

    @property
    def store(self) -> EdgeStore:
        """The open store."""
        if self._store is None:
            raise RuntimeError("EdgeAgent is not started: use 'async with EdgeAgent(...)'")
        return self._store

    async def __aenter__(self) -> Self:
        """Open the store and start the publisher when a broker is configured."""
        self._store = await EdgeStore.open(self.settings.database)
        self._store.reserve_bytes = int(self.settings.storage_reserve_mb * 1_048_576)
        self._config = await self._store.config()
        await self._load_keys()
        if self.settings.mqtt is not None:
            from edge_agent.publisher import Publisher  # paho is only needed with a broker

            publisher = Publisher(agent=self)
            self.publisher = publisher
            self._publisher_task = asyncio.create_task(publisher.run(), name="publisher")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop publishing and close the store; nothing stored is lost."""
        if self._publisher_task is not None:
            self._publisher_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher_task
        if self._store is not None:
            await self._store.close()
            self._store = None

    # -- views --------------------------------------------------------------------------

    def add_listener(self, listener: TapListener) -> None:
        """Call `listener` with every tap result (UI, buzzer, printer)."""
        self._listeners.append(listener)

    def add_visitor_listener(self, listener: Callable[[VisitorInfo], None]) -> None:
        """Call `listener` with every visitor registered here (the printer prints the slip)."""
        self._visitor_listeners.append(listener)

    def remove_listener(self, listener: TapListener) -> None:
        """Stop calling `listener`."""
        self._listeners.remove(listener)

    def set_reader_state(self, name: str, state: ReaderState) -> None:
        """Record a reader appearing or disappearing; reported in the next health message."""
        self._readers[name] = state

    def local_now(self) -> datetime:
        """The facility's local time."""
        return self.clock().astimezone(self._tz)

    # -- the tap ------------------------------------------------------------------------

    async def load_roster(self, roster: Roster) -> None:
        """Install a roster (from the center, or loaded by the demo and tests)."""
        if (roster.facility_id, roster.device_id) != (
            self.settings.facility_id,
            self.settings.device_id,
        ):
            raise ValueError(
                f"roster is for {roster.facility_id}/{roster.device_id}, "
                f"not {self.settings.facility_id}/{self.settings.device_id}"
            )
        await self.store.replace_roster(roster)

    async def apply_roster_update(self, update: Roster) -> None:
        """Apply a roster update from the center (whole or delta, its hash checked by the store)."""
        if (update.facility_id, update.device_id) != (
            self.settings.facility_id,
            self.settings.device_id,
        ):
            raise ValueError(f"roster is for {update.facility_id}/{update.device_id}")
        await self.store.apply_roster(update)

    async def apply_config(self, config: DeviceConfig) -> None:
        """Keep and use the center's configuration of this kiosk (its keys are already stored)."""
        await self.store.save_config(config)
        self._config = config
        await self._load_keys()

    async def _load_keys(self) -> None:
        """The received credential keys, newest first."""
        received = await self.store.credential_keys()
        self._received_keys = [k.encode() for k in reversed(received.values())]

    async def credential_keys(self) -> list[bytes]:
        """Every card-hash key this kiosk holds: received ones (newest first), then its own."""
        return [*self._received_keys, self._key]

    @property
    def health_interval_s(self) -> float:
        """Health period: the center's configuration, else the settings."""
        return self._config.health_interval_s if self._config else self.settings.health_interval_s

    @property
    def resend_after_s(self) -> float:
        """Resend an unconfirmed event after this long (the center's configuration first)."""
        return self._config.resend_after_s if self._config else self.settings.resend_after_s

    @property
    def sync_interval_s(self) -> float:
        """How often the kiosk reports its roster version unasked."""
        return self._config.sync_interval_s if self._config else self.settings.sync_interval_s

    async def tap(self, credential: str, *, method: Method = Method.CARD) -> TapResult:
        """Decide on a card/NFC read locally and commit the event before answering."""
        if VISITOR_CODE.match(credential):  # a visitor's slip under the scanner
            return await self.visitor_returns(credential, method=method)
        with self.metrics.tap_seconds.time():
            member = None
            # During a key rotation the roster carries hashes under the old and the new key.
            for key in await self.credential_keys():
                try:
                    hashed = credential_hash(credential, key=key)
                except ValueError:
                    break
                member = await self.store.member_by_credential(hashed)
                if member is not None:
                    break
            return await self._kept_or_refused(self._decide(member, method=method), method)

    async def identify(self, member_ref: str, *, method: Method) -> TapResult:
        """Decide for a member identified otherwise (face match, staff picking from a list)."""
        with self.metrics.tap_seconds.time():
            member = await self.store.member(member_ref)
            return await self._kept_or_refused(self._decide(member, method=method), method)

    async def _kept_or_refused(
        self, deciding: Coroutine[Any, Any, TapResult], method: Method
    ) -> TapResult:
        """The decision, or — when the device cannot keep it — a refusal the views show.

        A tap is never answered as done without being kept, and never dropped in silence: the
        member and staff see why, the buzzer sounds the refusal, the count is in /metrics.
        """
        try:
            return await deciding
        except StorageFull as exc:
            _LOG.error("tap refused: %s", exc)
            self.storage_refusals += 1
            result = TapResult(outcome=None, method=method, problem=str(exc))
            self._notify(result)
            return result

    async def _decide(self, member: RosterMember | None, *, method: Method) -> TapResult:
        """Apply the rules of a tap to an identified (or unknown) member."""
        now = self.local_now()
        programs, sittings = await self.store.schedule(now.date())
        on_now = sessions_on_now(programs, sittings, now)
        only = on_now[0] if len(on_now) == 1 else None
        if member is None:
            return await self._record_refusal(Outcome.UNKNOWN_CREDENTIAL, method, only, None)
        if not is_active(member):
            return await self._record_refusal(Outcome.INACTIVE_MEMBER, method, only, member)
        if not on_now:
            return await self._record_refusal(Outcome.NO_SERVICE, method, None, member)
        eligible = eligible_programs(member, on_now)
        if not eligible:
            return await self._record_refusal(Outcome.NOT_ENROLLED, method, only, member)
        if len(eligible) > 1:
            # Nothing is recorded yet: the event is stored once the member picks a class.
            result = TapResult(
                outcome=None,
                method=method,
                member_ref=member.member_ref,
                display_name=self._display(member),
                choices=tuple(ProgramChoice(p.program_id, p.name, p.place) for p in eligible),
            )
            self._notify(result)
            return result
        return await self._check_in(member, eligible[0], method=method, override=False)

    async def _sitting(
        self, program_id: str, *, starts: clock_time | None = None
    ) -> ProgramSession:
        """The program as held today: the sitting on now (or starting at `starts`)."""
        now = self.local_now()
        programs, sittings = await self.store.schedule(now.date())
        if starts is None:
            on = [p for p in sessions_on_now(programs, sittings, now) if p.program_id == program_id]
        else:
            on = [s for s in day_sittings(programs, sittings, now) if s.program_id == program_id]
            on = [s for s in on if s.starts == starts]
        if on:
            return on[0]
        found = [p for p in programs if p.program_id == program_id]
        if not found:
            raise LookupError(f"program {program_id!r} is not served by this kiosk")
        return found[0]

    async def _next_sitting(self, program: ProgramSession) -> clock_time | None:
        """The start of the program's next sitting today, after `program`'s."""
        now = self.local_now()
        programs, sittings = await self.store.schedule(now.date())
        later = [
            s.starts
            for s in day_sittings(programs, sittings, now)
            if s.program_id == program.program_id and s.starts > program.starts
        ]
        return min(later) if later else None

    async def take_next_sitting(
        self, member_ref: str, program_id: str, starts: clock_time, *, method: Method = Method.CARD
    ) -> TapResult:
        """The member takes a ticket for a later sitting today (theirs was full)."""
        member = await self.store.member(member_ref)
        if member is None:
            raise LookupError(f"member {member_ref!r} is not on this kiosk's roster")
        sitting = await self._sitting(program_id, starts=starts)
        return await self._check_in(member, sitting, method=method, override=False)

    async def seats_left(self) -> dict[str, int]:
        """Seats left in each sitting on now that has a capacity (the hall's serves counted)."""
        now = self.local_now()
        programs, sittings = await self.store.schedule(now.date())
        left: dict[str, int] = {}
        for program in sessions_on_now(programs, sittings, now):
            if program.capacity is not None and program.kind is ProgramKind.MEAL:
                served = await self.store.served_in_sitting(
                    program.program_id, now.date(), f"{program.starts:%H:%M}"
                )
                left[program.program_id] = max(program.capacity - served, 0)
        return left

    async def check_in(
        self,
        member_ref: str,
        program_id: str,
        *,
        method: Method = Method.CARD,
        override: bool = False,
        reason: str | None = None,
    ) -> TapResult:
        """Check a member into a chosen program (after a choice, or a staff override, which
        needs the staff's reason: it is recorded with the event)."""
        if override and not (reason and reason.strip()):
            raise ValueError("an override needs a reason")
        member = await self.store.member(member_ref)
        if member is None:
            raise LookupError(f"member {member_ref!r} is not on this kiosk's roster")
        program = await self._sitting(program_id)
        if not override and not is_active(member):
            return await self._record_refusal(Outcome.INACTIVE_MEMBER, method, program, member)
        return await self._check_in(
            member, program, method=method, override=override, reason=reason
        )

    async def _check_in(
        self,
        member: RosterMember,
        program: ProgramSession,
        *,
        method: Method,
        override: bool,
        reason: str | None = None,
    ) -> TapResult:
        """Commit the check-in (or the 'already served' refusal) and tell the views."""
        at = self.clock()
        version = await self.store.roster_version()

        def build(outcome: Outcome, ticket: int | None) -> AttendanceEvent:
            """The event of this check-in, once the store knows its outcome and ticket."""
            return AttendanceEvent(
                event_id=uuid7(at),
                occurred_at=at,
                service_date=at.astimezone(self._tz).date(),
                program_id=program.program_id,
                member_ref=member.member_ref,
                method=method,
                outcome=outcome,
                ticket_no=ticket,
                roster_version=version,
                override_reason=reason.strip() if override and reason else None,
            )

        event = await self.store.check_in(
            member_ref=member.member_ref,
            program_id=program.program_id,
            service_date=at.astimezone(self._tz).date(),
            numbered=program.kind is ProgramKind.MEAL,
            override=override,
            build=build,
            sitting=f"{program.starts:%H:%M}",
            # Seats per sitting are the meal hall's; a class's capacity is its enrolment limit.
            capacity=program.capacity if program.kind is ProgramKind.MEAL else None,
            numbering=self._config.tickets if self._config else None,
        )
        self.publisher_wake.set()
        shared = self.peers.message(event, sitting=program.starts)
        if self.publisher is not None and shared is not None:
            self.publisher.share(shared)  # to a thread of its own: the answer never waits
        full = event.outcome is Outcome.SITTING_FULL
        result = TapResult(
            outcome=event.outcome,
            method=method,
            event_id=event.event_id,
            member_ref=member.member_ref,
            display_name=self._display(member),
            program_id=program.program_id,
            program_name=program.name,
            program_kind=program.kind,
            ticket_no=event.ticket_no,
            sitting=program.starts,
            next_sitting=await self._next_sitting(program) if full else None,
        )
        self._notify(result)
        return result

    async def _record_refusal(
        self,
        outcome: Outcome,
        method: Method,
        program: ProgramSession | None,
        member: RosterMember | None,
    ) -> TapResult:
        """Store a refused tap for staff, then tell the views."""
        at = self.clock()
        event = AttendanceEvent(
            event_id=uuid7(at),
            occurred_at=at,
            service_date=at.astimezone(self._tz).date(),
            program_id=program.program_id if program else None,
            member_ref=member.member_ref if member else None,
            method=method,
            outcome=outcome,
            roster_version=await self.store.roster_version(),
        )
        await self.store.put(event)
        self.publisher_wake.set()
        result = TapResult(
            outcome=outcome,
            method=method,
            event_id=event.event_id,
            member_ref=member.member_ref if member else None,
            display_name=self._display(member) if member else None,
            program_id=program.program_id if program else None,
            program_name=program.name if program else None,
            program_kind=program.kind if program else None,
        )
        self._notify(result)
        return result

    def _display(self, member: RosterMember) -> str:
        """The member's name as this facility shows it (the center's configuration first)."""
        shown = self._config.name_display if self._config else self.settings.name_display
        if shown is NameDisplay.FULL:
            return member.display_name
        return mask_name(member.display_name)

    def _notify(self, result: TapResult) -> None:
        """Tell every view; a failing view never undoes or blocks the record."""
        self.metrics.taps.labels(result.outcome.value if result.outcome else "choose").inc()
        for listener in list(self._listeners):
            try:
                listener(result)
            except Exception:
                _LOG.exception("tap listener %r failed", listener)

    async def register_visitor(
        self,
        *,
        gender: Gender,
        age_band: str,
        neighbourhood: str,
        purpose: str,
        program_id: str | None = None,
    ) -> VisitorInfo:
        """Staff register a one-off visitor: issue a personal ID code and record the visit."""
        at = self.clock()
        day = at.astimezone(self._tz).date()
        number = await self.store.next_counter(f"visitor:{day.isoformat()}")
        if program_id is None and self._config is not None:
            program_id = self._config.visitor_program_id
        info = VisitorInfo(
            visitor_code=visitor_code(
                self.settings.facility_id, self.settings.device_id, day, number
            ),
            gender=gender,
            age_band=age_band,
            neighbourhood=neighbourhood,
            purpose=purpose,
        )
        event = AttendanceEvent(
            event_id=uuid7(at),
            occurred_at=at,
            service_date=day,
            program_id=program_id,
            member_ref=info.visitor_code,
            method=Method.STAFF,
            outcome=Outcome.ACCEPTED,
            roster_version=await self.store.roster_version(),
            visitor=info,
        )
        await self.store.put(event)
        self.publisher_wake.set()
        for listener in list(self._visitor_listeners):
            try:
                listener(info)
            except Exception:
                _LOG.exception("visitor listener %r failed", listener)
        return info

    async def visitor_returns(self, code: str, *, method: Method = Method.CARD) -> TapResult:
        """A returning visitor shows the code printed on their slip (scanned, or typed by staff):
        the visit is recorded under the same code and the facility's visitor program."""
        if not VISITOR_CODE.match(code):
            raise ValueError(f"{code!r} is not a visitor code")
        at = self.clock()
        program_id = self._config.visitor_program_id if self._config else None
        event = AttendanceEvent(
            event_id=uuid7(at),
            occurred_at=at,
            service_date=at.astimezone(self._tz).date(),
            program_id=program_id,
            member_ref=code,
            method=method,
            outcome=Outcome.ACCEPTED if program_id else Outcome.NOT_ENROLLED,
            roster_version=await self.store.roster_version(),
        )
        await self.store.put(event)
        self.publisher_wake.set()
        result = TapResult(
            outcome=event.outcome,
            method=method,
            event_id=event.event_id,
            member_ref=code,
            display_name="방문객",
            program_id=program_id,
        )
        self._notify(result)
        return result

    # -- health -------------------------------------------------------------------------

    async def health(self) -> DeviceHealth:
        """The device's health report."""
        stats = await self.store.stats()
        oldest = (
            datetime.fromtimestamp(stats.oldest_pending_at, tz=UTC)
            if stats.oldest_pending_at is not None
            else None
        )
        free_mb, total_mb = disk_space(self.settings.database)
        days_left = None
        if free_mb is not None:
            per_day = max(await self.store.events_since(time.time() - 86_400), BUSY_DAY_EVENTS)
            room = max(0.0, free_mb - self.settings.storage_reserve_mb) * 1_048_576
            days_left = room / (EVENT_BYTES * per_day)
        return DeviceHealth(
            facility_id=self.settings.facility_id,
            device_id=self.settings.device_id,
            reported_at=self.clock(),
            software_version=SOFTWARE_VERSION,
            uptime_s=time.monotonic() - self._started,
            outbox_pending=stats.pending,
            outbox_parked=stats.parked,
            storage_days_left=days_left,
            oldest_pending_at=oldest,
            roster_version=await self.store.roster_version(),
            readers=dict(self._readers),
            disk_free_mb=free_mb,
            disk_total_mb=total_mb,
            online_since=self.online_since,
            heartbeat_interval_s=self.settings.health_interval_s,
            last_ack_at=self.last_ack_at,
            clock_offset_s=self.clock_estimator.offset_s,
            cpu_temp_c=cpu_temperature(),
            face_templates=self.face_templates,
            face_unreadable=self.face_unreadable[:100] or None,
            seats_left=await self.seats_left() or None,
        )
