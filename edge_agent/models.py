"""What the edge agent tells its views (kiosk UI, buzzer, printer) about a tap."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from uuid import UUID

from broker.vocabulary import Method, Outcome, ProgramKind


@dataclass(frozen=True, slots=True)
class ProgramChoice:
    """One class a member may check into right now."""

    program_id: str
    name: str
    place: str | None


@dataclass(frozen=True, slots=True)
class TapResult:
    """The local decision at a tap, already durable on the device when returned.

    `outcome` is the recorded event's outcome; None means nothing is decided yet because the
    member must first choose one of `choices` (several classes are on now).
    """

    outcome: Outcome | None
    method: Method
    event_id: UUID | None = None
    member_ref: str | None = None
    display_name: str | None = None  # full or masked, as the facility configures
    program_id: str | None = None
    program_name: str | None = None
    program_kind: ProgramKind | None = None
    ticket_no: int | None = None
    choices: tuple[ProgramChoice, ...] = field(default=())
    # Set when nothing could be recorded (the device's storage is full): the tap is refused
    # with this message, never silently dropped (docs/contract.md, the device's disk).
    problem: str | None = None
    sitting: time | None = None  # start of the sitting served (or found full)
    # A full sitting: the start of the program's next sitting today, offered instead.
    next_sitting: time | None = None

    def __post_init__(self) -> None:
        """Undecided means classes to choose from, or a problem that kept it from being kept."""
        if (self.outcome is None) != (bool(self.choices) or self.problem is not None):
            raise ValueError("a tap result has choices or a problem exactly when it is undecided")

    @property
    def needs_choice(self) -> bool:
        """The member must pick a class before anything is recorded."""
        return self.outcome is None and bool(self.choices)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored event waiting for the center's confirmation."""

    seq: int
    event_id: UUID
    payload: str  # the event as stored: AttendanceEvent JSON, exclude_none


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How far behind the device is."""

    pending: int
    oldest_pending_at: float | None
    confirmed: int
    parked: int = 0  # refused by the center for good: kept, never resent


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event the center refused for good, kept on the device with the reason."""

    event_id: UUID
    payload: str
    parked_at: float
    reason: str
