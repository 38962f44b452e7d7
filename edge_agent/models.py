"""What the edge agent tells its views (kiosk UI, buzzer) about a tap."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from broker.models import Method, Outcome, ProgramKind


class Verdict(StrEnum):
    """Outcome of a tap as a view shows it; `choose` asks the member to pick a class."""

    ACCEPTED = Outcome.ACCEPTED.value
    ALREADY_SERVED = Outcome.ALREADY_SERVED.value
    UNKNOWN_CREDENTIAL = Outcome.UNKNOWN_CREDENTIAL.value
    INACTIVE_MEMBER = Outcome.INACTIVE_MEMBER.value
    NOT_ENROLLED = Outcome.NOT_ENROLLED.value
    NO_SERVICE = Outcome.NO_SERVICE.value
    CHOOSE = "choose"


@dataclass(frozen=True, slots=True)
class ProgramChoice:
    """One class a member may check into right now."""

    program_id: str
    name: str
    place: str | None


@dataclass(frozen=True, slots=True)
class TapResult:
    """The local decision at a tap, already durable on the device when returned."""

    verdict: Verdict
    method: Method
    event_id: UUID | None = None
    member_ref: str | None = None
    display_name: str | None = None  # full or masked, as the facility configures
    program_id: str | None = None
    program_name: str | None = None
    program_kind: ProgramKind | None = None
    ticket_no: int | None = None
    choices: tuple[ProgramChoice, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored event waiting for the center's confirmation."""

    seq: int
    event_id: str
    payload: str


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How far behind the device is."""

    pending: int
    oldest_pending_at: float | None
    confirmed: int
