"""What each tap outcome looks and sounds like: Korean wording, screen, sound, timeout."""

from __future__ import annotations

from dataclasses import dataclass

from broker.vocabulary import Outcome, ProgramKind
from edge_agent.models import TapResult

IDLE_PROMPT = "카드를 대 주세요"
IDLE_HINT = "회원카드나 휴대폰을 아래 단말기에 대 주세요"
NO_SERVICE_NOW = "지금은 진행 중인 프로그램이 없습니다"
STAFF_BUTTON = "직원"
OFFLINE_BADGE = "● 센터 연결 끊김 (기록은 저장 중)"
LINK_DOWN_BADGE = "● 에이전트 연결 없음"
CONFIRM = "확인"
CANCEL = "취소"
STAFF_CHECK = "직원 확인"


@dataclass(frozen=True, slots=True)
class Presentation:
    """How the view shows one tap result."""

    screen: str  # success / already / refused / choose
    sound: str  # success / already / refused / choose
    headline: str
    name: str  # the member's name as configured (full or masked) with 님, or ""
    detail: str  # the service, or what to do next
    ticket: str  # the meal ticket number, or ""
    can_override: bool  # staff may let the member in after checking


SITTING_FULL = "이번 식사 시간은 자리가 다 찼습니다"
TAKE_NEXT = "예, 번호표 받기"
# Why staff let a member in despite "already served" (or another refusal): one is recorded.
OVERRIDE_REASONS = (
    "번호표 분실",
    "식사를 받지 못함",
    "다른 사람이 카드를 찍음",
    "직원 판단(기타)",
)
NO_THANKS = "아니요"


def next_sitting_offer(result: TapResult) -> str:
    """What a full sitting offers: a ticket for the next sitting today, or to ask staff."""
    if result.next_sitting is None:
        return "오늘은 남은 식사 시간이 없습니다 · 직원에게 문의해 주세요"
    return f"다음 시간({result.next_sitting:%H:%M}) 번호표를 드릴까요?"


def present_sample() -> Presentation:
    """What staff hear when they change the voice: a served meal with a ticket."""
    return Presentation("success", "success", "맛있게 드세요", "김*수 님", "", "57", False)


def _name(result: TapResult) -> str:
    """The member's name with the honorific, or nothing for an unknown card."""
    return f"{result.display_name} 님" if result.display_name else ""


def present(result: TapResult) -> Presentation:
    """Turn a tap result into what the member sees and hears."""
    name = _name(result)
    program = result.program_name or ""
    if result.problem is not None:  # nothing could be kept: refused, and staff must know
        return Presentation(
            "refused", "refused", "지금은 기록할 수 없습니다", name, result.problem, "", False
        )
    if result.outcome is None:  # several classes on now: the member picks one first
        return Presentation("choose", "choose", "들으실 수업을 눌러 주세요", name, "", "", False)
    if result.outcome is Outcome.ACCEPTED:
        if result.program_kind is ProgramKind.MEAL:
            return Presentation(
                "success",
                "success",
                "맛있게 드세요",
                name,
                program,
                str(result.ticket_no or ""),
                False,
            )
        return Presentation("success", "success", "출석되었습니다", name, program, "", False)
    if result.outcome is Outcome.ALREADY_SERVED:
        if result.program_kind is ProgramKind.MEAL:
            headline, detail = "오늘 이미 식사하셨습니다", f"{program} · 번호표는 한 번만 드립니다"
        else:
            headline, detail = "이미 출석하셨습니다", f"{program} · 다시 찍지 않으셔도 됩니다"
        return Presentation("already", "already", headline, name, detail, "", True)
    if result.outcome is Outcome.SITTING_FULL:
        # Its own screen: the offer of the next sitting's ticket is a button, not only words.
        return Presentation(
            "full", "refused", SITTING_FULL, name, next_sitting_offer(result), "", False
        )
    refusals = {
        Outcome.UNKNOWN_CREDENTIAL: ("등록되지 않은 카드입니다", "직원에게 문의해 주세요"),
        Outcome.INACTIVE_MEMBER: ("이용이 중지된 회원입니다", "직원에게 문의해 주세요"),
        Outcome.NOT_ENROLLED: (
            "신청하지 않은 프로그램입니다",
            f"{program} · 직원에게 문의해 주세요" if program else "직원에게 문의해 주세요",
        ),
        Outcome.NO_SERVICE: (NO_SERVICE_NOW, "시간표를 확인하시거나 직원에게 문의해 주세요"),
    }
    headline, detail = refusals[result.outcome]
    # Staff can only let in a known member into a known program.
    can_override = result.member_ref is not None and result.program_id is not None
    return Presentation("refused", "refused", headline, name, detail, "", can_override)
