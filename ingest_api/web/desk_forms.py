"""Server-side checks of the desk and field forms: one message per field, in Korean.

A form that fails is shown again with everything typed kept and each bad field's message
beside it; nothing is recorded. Every form carries a random `form_key`, so a form sent twice
(a tablet on bad Wi-Fi) records once (registry/desk.py: claim_form).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from broker.const import MEMBER_REF_PATTERN


class FormCheck:
    """The values of a sent form, read one field at a time; `errors` holds what to fix."""

    def __init__(self, form: FormData | Mapping[str, str]) -> None:
        """Keep every value as typed (stripped), lists for repeated fields."""
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        items = form.multi_items() if isinstance(form, FormData) else list(form.items())
        for name, value in items:
            text = value.strip() if isinstance(value, str) else ""
            self.lists.setdefault(name, []).append(text)
            self.values.setdefault(name, text)
        self.errors: dict[str, str] = {}
        self._key: uuid.UUID | None = None

    @property
    def ok(self) -> bool:
        """Whether every field passed."""
        return not self.errors

    def fail(self, name: str, message: str) -> None:
        """Record a field's message (the first one stays)."""
        self.errors.setdefault(name, message)

    def text(
        self,
        name: str,
        label: str,
        *,
        required: bool = True,
        max_len: int = 40,
        pattern: str | None = None,
        hint: str = "",
    ) -> str | None:
        """A line of text: present when required, not too long, of the expected shape."""
        value = self.values.get(name, "")
        if not value:
            if required:
                self.fail(name, f"{josa(label, '을', '를')} 입력하세요.")
            return None
        if "\x00" in value or len(value) > max_len:
            self.fail(name, f"{josa(label, '은', '는')} {max_len}자 이내로 입력하세요.")
            return None
        if pattern is not None and not re.fullmatch(pattern, value):
            self.fail(name, f"{label}의 형식이 맞지 않습니다. {hint}".strip())
            return None
        return value

    def choice(
        self, name: str, label: str, choices: Mapping[str, str], *, required: bool = True
    ) -> str | None:
        """One of the offered values."""
        value = self.values.get(name, "")
        if not value:
            if required:
                self.fail(name, f"{josa(label, '을', '를')} 선택하세요.")
            return None
        if value not in choices:
            self.fail(name, f"{label}: 목록에 있는 값을 선택하세요.")
            return None
        return value

    def flag(self, name: str) -> bool:
        """A checkbox."""
        return self.values.get(name, "") in ("on", "1", "true", "yes")

    def day(self, name: str, label: str, *, required: bool = True) -> date | None:
        """A date (YYYY-MM-DD, as a date field sends it), not in the future."""
        value = self.values.get(name, "")
        if not value:
            if required:
                self.fail(name, f"{josa(label, '을', '를')} 입력하세요.")
            return None
        try:
            found = date.fromisoformat(value)
        except ValueError:
            self.fail(name, f"{josa(label, '은', '는')} 2026-01-31 처럼 입력하세요.")
            return None
        if found.year < 1900:
            self.fail(name, f"{josa(label, '이', '가')} 너무 이릅니다.")
            return None
        return found

    def moment(self, name: str, label: str, *, tz: ZoneInfo, now: datetime) -> datetime | None:
        """A local date and time (a datetime-local field), not in the future."""
        value = self.values.get(name, "")
        if not value:
            self.fail(name, f"{josa(label, '을', '를')} 입력하세요.")
            return None
        try:
            found = datetime.fromisoformat(value)
        except ValueError:
            self.fail(name, f"{josa(label, '은', '는')} 2026-01-31 14:00 처럼 입력하세요.")
            return None
        found = found.replace(tzinfo=tz) if found.tzinfo is None else found
        if found > now:
            subject = josa(label, "이", "가")
            self.fail(name, f"{subject} 지금보다 뒤입니다. 이미 한 일만 기록합니다.")
            return None
        if (now - found).days > 366:
            self.fail(name, f"{josa(label, '이', '가')} 1년보다 오래되었습니다.")
            return None
        return found

    def form_key(self) -> uuid.UUID:
        """The form's random key (a new one, kept, when missing or malformed)."""
        if self._key is None:
            try:
                self._key = uuid.UUID(self.values.get("form_key", ""))
            except ValueError:
                self._key = uuid.uuid4()
        return self._key

    def member_ref(self, name: str, label: str, *, required: bool = True) -> str | None:
        """A member number (letters, digits, '-' and '_')."""
        return self.text(
            name,
            label,
            required=required,
            max_len=64,
            pattern=MEMBER_REF_PATTERN.strip("^$"),
            hint="영문, 숫자, -, _ 만 씁니다.",
        )


def josa(word: str, after_consonant: str, after_vowel: str) -> str:
    """`word` with the particle its last syllable takes (이름을, 성별을, 나이가, 주소는)."""
    syllables = [c for c in word if "가" <= c <= "힣"]
    if not syllables:
        return f"{word}{after_consonant}({after_vowel})"
    final = (ord(syllables[-1]) - ord("가")) % 28
    return word + (after_consonant if final else after_vowel)


def new_form_key() -> str:
    """A fresh key for a form about to be shown."""
    return str(uuid.uuid4())
