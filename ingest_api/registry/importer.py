"""Import of the centers' existing lists (.xlsx, .csv): validate everything, then all or nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from pydantic import ValidationError

from broker.hashing import normalize_credential
from ingest_api.core.audit import write_audit
from ingest_api.core.fieldcrypto import FieldCipher
from ingest_api.registry import keys, schedule_import, store
from ingest_api.registry.models import (
    Consent,
    ImportIssue,
    ImportResult,
    MemberIn,
    Program,
    Targets,
)

Kind = Literal["members", "programs", "schedule", "closures"]
Progress = Callable[[int], None]

# Accepted headers (English field name or the centers' Korean labels) -> field.
MEMBER_HEADERS: dict[str, str] = {
    "member_ref": "member_ref",
    "회원번호": "member_ref",
    "name": "display_name",
    "성명": "display_name",
    "이름": "display_name",
    "gender": "gender",
    "성별": "gender",
    "birth_date": "birth_date",
    "생년월일": "birth_date",
    "recipient": "recipient",
    "수급자": "recipient",
    "수급여부": "recipient",
    "disability": "disability",
    "등록장애": "disability",
    "장애여부": "disability",
    "phone": "phone",
    "연락처": "phone",
    "전화번호": "phone",
    "neighbourhood": "neighbourhood",
    "행정동": "neighbourhood",
    "거주동": "neighbourhood",
    "main_needs": "main_needs",
    "주요욕구": "main_needs",
    "status": "status",
    "상태": "status",
    "card_uid": "card_uids",
    "회원카드": "card_uids",
    "nfc_uid": "nfc_uids",
    "nfc": "nfc_uids",
    "programs": "programs",
    "이용프로그램": "programs",
    "consent_privacy": "consent:privacy",
    "개인정보동의일": "consent:privacy",
    "consent_sensitive": "consent:sensitive",
    "민감정보동의일": "consent:sensitive",
    "consent_face": "consent:face",
    "얼굴인식동의일": "consent:face",
    "consent_transfer": "consent:transfer",
    "정보이관동의일": "consent:transfer",
    "consent_sms": "consent:sms",
    "문자수신동의일": "consent:sms",
}
PROGRAM_HEADERS: dict[str, str] = {
    "program_id": "program_id",
    "프로그램코드": "program_id",
    "name": "name",
    "프로그램명": "name",
    "세부프로그램": "name",
    "function": "function",
    "기능": "function",
    "business_area": "business_area",
    "사업분야": "business_area",
    "unit_business": "unit_business",
    "단위사업": "unit_business",
    "fee_type": "fee_type",
    "요금": "fee_type",
    "유료구분": "fee_type",
    "rule": "rule_id",
    "산출기준": "rule_id",
    "purpose": "purpose",
    "목적": "purpose",
    "target_group": "target_group",
    "대상": "target_group",
    "cycle": "cycle",
    "주기": "cycle",
    "place": "place",
    "장소": "place",
    "capacity": "capacity",
    "정원": "capacity",
    "year": "year",
    "연도": "year",
    "target_unique": "target_unique",
    "목표실인원": "target_unique",
    "target_visits": "target_visits",
    "목표연인원": "target_visits",
    "target_cases": "target_cases",
    "목표건수": "target_cases",
    "kind": "kind",
    "유형": "kind",
    "구분": "kind",
    "target_male": "target_male",
    "목표남": "target_male",
    "목표실인원남": "target_male",
    "target_female": "target_female",
    "목표여": "target_female",
    "목표실인원여": "target_female",
    "team": "team",
    "팀명": "team",
    "담당팀": "team",
    "부서": "team",
    "manager": "manager",
    "담당자": "manager",
    "indicator": "indicator",
    "실적산정지표": "indicator",
    "실적_산정_지표": "indicator",
    "산정지표": "indicator",
    "operating_form": "operating_form",
    "운영형태": "operating_form",
}
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "members": ("member_ref", "display_name"),
    "programs": ("program_id", "name", "function", "business_area", "unit_business", "fee_type"),
    "schedule": schedule_import.REQUIRED_SCHEDULE,
    "closures": schedule_import.REQUIRED_CLOSURES,
}
_TRUE = {"y", "yes", "true", "1", "o", "예", "유", "해당", "수급", "등록"}
_FALSE = {"", "n", "no", "false", "0", "x", "아니오", "무", "비해당", "-"}
_GENDER = {
    "m": "M",
    "남": "M",
    "남성": "M",
    "남자": "M",
    "f": "F",
    "여": "F",
    "여성": "F",
    "여자": "F",
}
_STATUS = {
    "active": "active",
    "이용중": "active",
    "활동": "active",
    "정상": "active",
    "suspended": "suspended",
    "중지": "suspended",
    "moved_out": "moved_out",
    "전출": "moved_out",
    "이사": "moved_out",
    "deceased": "deceased",
    "사망": "deceased",
}
_FUNCTION = {
    "case_management": "case_management",
    "사례관리": "case_management",
    "사례관리기능": "case_management",
    "service_provision": "service_provision",
    "서비스제공": "service_provision",
    "서비스제공기능": "service_provision",
    "community_organizing": "community_organizing",
    "지역조직화": "community_organizing",
    "지역조직화기능": "community_organizing",
}
_FEE = {
    "paid": "paid",
    "유료": "paid",
    "reduced": "reduced",
    "감면": "reduced",
    "free": "free",
    "무료": "free",
}
_KIND = {
    "meal": "meal",
    "식사": "meal",
    "급식": "meal",
    "class": "class",
    "수업": "class",
    "교실": "class",
    "프로그램": "class",
}
_DATE_FORMATS = ("%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d", "%Y%m%d", "%Y. %m. %d", "%Y.%m.%d.")


class CellError(ValueError):
    """A cell that cannot be read as its column's type."""


@dataclass
class Sheet:
    """A table read from a file: headers and rows of text or native cell values."""

    headers: list[str]
    rows: list[list[Any]]
    digest: str


@dataclass
class _Row:
    """One data row being validated."""

    number: int
    values: dict[str, Any] = field(default_factory=dict)


def read_table(path: Path) -> Sheet:
    """Read the first sheet of an .xlsx, or a .csv (UTF-8 with or without BOM, or CP949)."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        all_rows = _rows_of(path, data)
    except ValueError:
        raise
    except Exception as exc:  # a damaged or mislabelled file: openpyxl raises many kinds
        raise ValueError(f"cannot read {path.name}: {exc}") from exc
    while all_rows and all(_blank(v) for v in all_rows[-1]):
        all_rows.pop()
    if not all_rows:
        return Sheet([], [], digest)
    headers = ["" if v is None else str(v).strip() for v in all_rows[0]]
    return Sheet(headers, all_rows[1:], digest)


def _rows_of(path: Path, data: bytes) -> list[list[Any]]:
    """All rows of the file's first sheet."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            ws = wb.worksheets[0]
            all_rows = [list(r) for r in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
    elif path.suffix.lower() in (".csv", ".txt"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp949")  # Excel on Korean Windows saves CSV in CP949
        all_rows = [list(r) for r in csv.reader(io.StringIO(text))]
    else:
        raise ValueError(f"unsupported file type {path.suffix!r}: use .xlsx or .csv")
    return all_rows


def _blank(value: Any) -> bool:
    """Whether a cell is empty."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    """A cell as trimmed text (numbers typed as numbers lose their '.0')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _bool(value: Any) -> bool:
    """Y/N, 예/아니오, O/X, 1/0."""
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CellError("expected Y or N (예/아니오)")


def _date(value: Any) -> date | None:
    """A date cell, or text in a common Korean spreadsheet format."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise CellError("expected a date like 1948-03-15")


def _choice(value: Any, table: dict[str, str], what: str) -> str | None:
    """One of a fixed set of words (English or Korean)."""
    text = _text(value).lower().replace(" ", "")
    if not text:
        return None
    if text not in table:
        raise CellError(f"unknown {what}: expected one of {', '.join(sorted(set(table)))}")
    return table[text]


def _int(value: Any) -> int | None:
    """A whole number ≥ 0, or blank."""
    text = _text(value).replace(",", "")
    if not text:
        return None
    if not re.fullmatch(r"\d+", text):
        raise CellError("expected a whole number")
    return int(text)


def _list(value: Any) -> list[str]:
    """A comma- or semicolon-separated list."""
    return [p.strip() for p in re.split(r"[,;/]", _text(value)) if p.strip()]


_MEMBER_PARSERS: dict[str, Callable[[Any], Any]] = {
    "member_ref": _text,
    "display_name": _text,
    "gender": lambda v: _choice(v, _GENDER, "gender"),
    "birth_date": _date,
    "recipient": _bool,
    "disability": _bool,
    "phone": lambda v: _text(v) or None,
    "neighbourhood": lambda v: _text(v) or None,
    "main_needs": _list,
    "status": lambda v: _choice(v, _STATUS, "status") or "active",
    "card_uids": lambda v: [normalize_credential(u) for u in _list(v)],
    "nfc_uids": lambda v: [normalize_credential(u) for u in _list(v)],
    "programs": _list,
}
_PROGRAM_PARSERS: dict[str, Callable[[Any], Any]] = {
    "program_id": _text,
    "name": _text,
    "function": lambda v: _choice(v, _FUNCTION, "function"),
    "business_area": _text,
    "unit_business": _text,
    "fee_type": lambda v: _choice(v, _FEE, "fee type"),
    "rule_id": lambda v: _text(v) or "attendance",
    "purpose": _text,
    "target_group": _text,
    "cycle": _text,
    "place": _text,
    "capacity": _int,
    "year": _int,
    "target_unique": _int,
    "target_visits": _int,
    "target_cases": _int,
    "target_male": _int,
    "target_female": _int,
    "team": _text,
    "manager": _text,
    "indicator": _text,
    "operating_form": _text,
    "kind": lambda v: _choice(v, _KIND, "kind"),
}
_SCHEDULE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "program_id": _text,
    "weekday": schedule_import.parse_weekdays,
    "starts": schedule_import.parse_time,
    "ends": schedule_import.parse_time,
    "place": _text,
    "capacity": _int,
}
_CLOSURE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "on_date": _date,
    "program_id": _text,
    "reason": _text,
}
_HEADERS: dict[Kind, dict[str, str]] = {
    "members": MEMBER_HEADERS,
    "programs": PROGRAM_HEADERS,
    "schedule": schedule_import.SCHEDULE_HEADERS,
    "closures": schedule_import.CLOSURE_HEADERS,
}
_PARSERS: dict[Kind, dict[str, Callable[[Any], Any]]] = {
    "members": _MEMBER_PARSERS,
    "programs": _PROGRAM_PARSERS,
    "schedule": _SCHEDULE_PARSERS,
    "closures": _CLOSURE_PARSERS,
}


def _map_headers(sheet: Sheet, kind: Kind, issues: list[ImportIssue]) -> dict[int, tuple[str, str]]:
    """Column index -> (field, header as written); unknown or missing headers are issues."""
    table = _HEADERS[kind]
    mapping: dict[int, tuple[str, str]] = {}
    seen: dict[str, str] = {}
    for i, header in enumerate(sheet.headers):
        if not header:
            continue
        key = table.get(header) or table.get(header.lower().replace(" ", "_"))
        ref = f"{get_column_letter(i + 1)}1"
        if key is None:
            issues.append(
                ImportIssue(row=1, column=header, cell=ref, value=header, message="unknown column")
            )
            continue
        if key in seen:
            issues.append(
                ImportIssue(
                    row=1,
                    column=header,
                    cell=ref,
                    value=header,
                    message=f"same column as {seen[key]!r}",
                )
            )
            continue
        seen[key] = header
        mapping[i] = (key, header)
    for needed in REQUIRED[kind]:
        if needed not in seen:
            issues.append(
                ImportIssue(
                    row=1,
                    column=needed,
                    cell=None,
                    value=None,
                    message="required column is missing",
                )
            )
    return mapping


def _parse_rows(
    sheet: Sheet,
    kind: Kind,
    mapping: dict[int, tuple[str, str]],
    issues: list[ImportIssue],
    progress: Progress | None,
) -> Iterator[_Row]:
    """Parse each row's cells, naming every bad cell."""
    parsers = _PARSERS[kind]
    for offset, raw in enumerate(sheet.rows):
        number = offset + 2
        if progress:
            progress(1)
        if all(_blank(v) for v in raw):
            continue
        row = _Row(number)
        for i, (key, header) in mapping.items():
            value = raw[i] if i < len(raw) else None
            parser: Callable[[Any], Any] = parsers.get(
                key, _date if key.startswith("consent:") else _text
            )
            try:
                row.values[key] = parser(value)
            except ValueError as exc:
                issues.append(
                    ImportIssue(
                        row=number,
                        column=header,
                        cell=f"{get_column_letter(i + 1)}{number}",
                        value=_text(value),
                        message=str(exc),
                    )
                )
        for needed in REQUIRED[kind]:
            if needed in row.values and not row.values[needed]:
                col = next(i for i, (k, _) in mapping.items() if k == needed)
                issues.append(
                    ImportIssue(
                        row=number,
                        column=mapping[col][1],
                        cell=f"{get_column_letter(col + 1)}{number}",
                        value="",
                        message="required value is empty",
                    )
                )
        yield row


def _cell_of(mapping: dict[int, tuple[str, str]], field_name: str, row: int) -> tuple[str, str]:
    """Header and cell reference of a field in a row (or the row if the field has no column)."""
    for i, (key, header) in mapping.items():
        if key == field_name or key.split(":")[0] == field_name:
            return header, f"{get_column_letter(i + 1)}{row}"
    return field_name, f"row {row}"


def _pydantic_issues(
    exc: ValidationError, row: _Row, mapping: dict[int, tuple[str, str]], names: dict[str, str]
) -> list[ImportIssue]:
    """Turn a model's validation errors into cell issues."""
    found = []
    for err in exc.errors():
        loc = str(err["loc"][0]) if err["loc"] else ""
        field_name = names.get(loc, loc)
        header, cell = _cell_of(mapping, field_name, row.number)
        value = row.values.get(field_name)
        found.append(
            ImportIssue(
                row=row.number,
                column=header,
                cell=cell,
                value=None if value is None else str(value),
                message=err["msg"],
            )
        )
    return found


def _member_model(
    row: _Row,
    facility_id: str,
    known_programs: set[str],
    mapping: dict[int, tuple[str, str]],
    issues: list[ImportIssue],
) -> MemberIn | None:
    """Build a member from a parsed row; every problem becomes an issue."""
    v = row.values
    programs: dict[str, str | None] = {}
    for item in v.get("programs", []):
        pid, _, fee = item.partition(":")
        fee_type = _FEE.get(fee.strip().lower()) if fee else None
        if (fee and fee_type is None) or pid not in known_programs:
            header, cell = _cell_of(mapping, "programs", row.number)
            why = f"unknown fee type {fee!r}" if fee and fee_type is None else "unknown program"
            issues.append(
                ImportIssue(row=row.number, column=header, cell=cell, value=item, message=why)
            )
            continue
        programs[pid] = fee_type
    consents = [
        Consent(kind=k.split(":")[1], granted_on=d)
        for k, d in v.items()
        if k.startswith("consent:") and d is not None
    ]
    try:
        return MemberIn(
            member_ref=v.get("member_ref", ""),
            facility_id=facility_id,
            display_name=v.get("display_name", ""),
            gender=v.get("gender"),
            birth_date=v.get("birth_date"),
            recipient=v.get("recipient", False),
            disability=v.get("disability", False),
            phone=v.get("phone"),
            neighbourhood=v.get("neighbourhood"),
            main_needs=v.get("main_needs", []),
            status=v.get("status", "active"),
            consents=consents,
            card_uids=v.get("card_uids", []),
            nfc_uids=v.get("nfc_uids", []),
            programs=programs,
        )
    except ValidationError as exc:
        issues.extend(_pydantic_issues(exc, row, mapping, {}))
        return None


def _program_model(
    row: _Row,
    facility_id: str,
    rules: set[str],
    mapping: dict[int, tuple[str, str]],
    issues: list[ImportIssue],
) -> tuple[Program, int | None, Targets] | None:
    """Build a program and its targets from a parsed row."""
    v = row.values
    if v.get("rule_id", "attendance") not in rules:
        header, cell = _cell_of(mapping, "rule_id", row.number)
        issues.append(
            ImportIssue(
                row=row.number,
                column=header,
                cell=cell,
                value=v.get("rule_id"),
                message=f"unknown counting rule: expected one of {', '.join(sorted(rules))}",
            )
        )
        return None
    fields = {k: v[k] for k in _PROGRAM_PARSERS if k in v and not k.startswith(("target", "year"))}
    fields = {
        k: val for k, val in fields.items() if val not in (None, "") or k in REQUIRED["programs"]
    }
    try:
        program = Program(facility_id=facility_id, **fields)
        targets = Targets(
            unique_persons=v.get("target_unique"),
            person_visits=v.get("target_visits"),
            cases=v.get("target_cases"),
            unique_persons_male=v.get("target_male"),
            unique_persons_female=v.get("target_female"),
        )
    except ValidationError as exc:
        issues.extend(_pydantic_issues(exc, row, mapping, {}))
        return None
    has_targets = any(x is not None for x in targets.model_dump().values())
    if has_targets and v.get("year") is None:
        header, cell = _cell_of(mapping, "year", row.number)
        issues.append(
            ImportIssue(
                row=row.number,
                column=header,
                cell=cell,
                value=None,
                message="targets need the year they are for",
            )
        )
        return None
    return program, v.get("year"), targets


def import_file(
    conn: psycopg.Connection[Any],
    *,
    kind: Kind,
    path: Path,
    facility_id: str,
    key: bytes,
    actor: str,
    cipher: FieldCipher | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Validate a whole file and, only when every row is good, apply it in one transaction.

    `cipher` encrypts members' phone, birth date and needs (needed when the file has any).
    """
    sheet = read_table(path)
    issues: list[ImportIssue] = []
    result = ImportResult(
        kind=kind, facility_id=facility_id, filename=path.name, rows=len(sheet.rows), ok=False
    )
    if (
        conn.execute("SELECT 1 FROM facilities WHERE facility_id = %s", (facility_id,)).fetchone()
        is None
    ):
        issues.append(
            ImportIssue(
                row=0, column=None, cell=None, value=facility_id, message="unknown facility"
            )
        )
        return result.model_copy(update={"issues": issues})
    mapping = _map_headers(sheet, kind, issues)
    if issues:
        return result.model_copy(update={"issues": issues})
    rows = list(_parse_rows(sheet, kind, mapping, issues, progress))
    # A schedule has several rows per program; closures check their own duplicates.
    key_field = {"members": "member_ref", "programs": "program_id"}.get(kind, "")
    first_seen: dict[str, int] = {}
    for row in rows:
        ident = row.values.get(key_field) if key_field else None
        if not ident:
            continue
        if ident in first_seen:
            header, cell = _cell_of(mapping, key_field, row.number)
            issues.append(
                ImportIssue(
                    row=row.number,
                    column=header,
                    cell=cell,
                    value=ident,
                    message=f"duplicate of row {first_seen[ident]}",
                )
            )
        else:
            first_seen[ident] = row.number
    models: list[tuple[_Row, Any]] = []
    if kind == "members":
        known = {
            r[0]
            for r in conn.execute(
                "SELECT program_id FROM programs WHERE facility_id = %s", (facility_id,)
            )
        }
        owners: dict[str, tuple[str, int]] = {}
        for row in rows:
            member = _member_model(row, facility_id, known, mapping, issues)
            if member is None:
                continue
            _check_credentials(
                conn, member=member, row=row, key=key, owners=owners, mapping=mapping, issues=issues
            )
            other = conn.execute(
                "SELECT facility_id FROM members WHERE member_ref = %s", (member.member_ref,)
            ).fetchone()
            if other is not None and other[0] != facility_id:
                header, cell = _cell_of(mapping, "member_ref", row.number)
                issues.append(
                    ImportIssue(
                        row=row.number,
                        column=header,
                        cell=cell,
                        value=member.member_ref,
                        # which center is not said: that is another center's business
                        message="member number is used by another center",
                    )
                )
            models.append((row, member))
    elif kind == "programs":
        rules = {r[0] for r in conn.execute("SELECT rule_id FROM counting_rules")}
        for row in rows:
            built = _program_model(row, facility_id, rules, mapping, issues)
            if built is None:
                continue
            other = conn.execute(
                "SELECT facility_id FROM programs WHERE program_id = %s", (built[0].program_id,)
            ).fetchone()
            if other is not None and other[0] != facility_id:
                header, cell = _cell_of(mapping, "program_id", row.number)
                issues.append(
                    ImportIssue(
                        row=row.number,
                        column=header,
                        cell=cell,
                        value=built[0].program_id,
                        message=f"program code belongs to facility {other[0]}",
                    )
                )
            models.append((row, built))
    else:
        models = _schedule_models(conn, kind, facility_id, rows, mapping, issues)
    if issues:
        issues.sort(key=lambda i: (i.row, i.cell or ""))
        return result.model_copy(update={"issues": issues})
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    try:
        with conn.transaction(force_rollback=dry_run):
            for row, model in models:
                try:
                    if kind == "members":
                        change = store.upsert_member(conn, member=model, key=key, cipher=cipher)
                    elif kind == "schedule":
                        change = schedule_import.apply_schedule(
                            conn, program_id=model[0], sessions=model[1]
                        )
                    elif kind == "closures":
                        change = schedule_import.apply_closure(
                            conn,
                            facility_id=facility_id,
                            on_date=model[0],
                            program_id=model[1],
                            reason=model[2],
                        )
                    else:
                        program, year, targets = model
                        change = store.upsert_program(
                            conn, program=program, year=year, targets=targets
                        )
                except (store.RegistryError, psycopg.DataError, psycopg.IntegrityError) as exc:
                    issues.append(
                        ImportIssue(
                            row=row.number, column=None, cell=None, value=None, message=str(exc)
                        )
                    )
                    raise _Abort from exc
                counts[change] += 1
                if progress:
                    progress(1)
            if counts["inserted"] or counts["updated"]:
                conn.execute(
                    "INSERT INTO import_batches (kind, facility_id, file_sha256, filename,"
                    " row_count,"
                    " inserted, updated) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        kind,
                        facility_id,
                        sheet.digest,
                        path.name,
                        len(models),
                        counts["inserted"],
                        counts["updated"],
                    ),
                )
                write_audit(
                    conn,
                    actor=actor,
                    action="import",
                    subject=f"{kind}:{facility_id}",
                    detail={"file": path.name, "sha256": sheet.digest, **counts},
                )
    except _Abort:
        return result.model_copy(update={"issues": issues})
    return result.model_copy(update={"ok": True, **counts})


def _schedule_models(
    conn: psycopg.Connection[Any],
    kind: Kind,
    facility_id: str,
    rows: list[_Row],
    mapping: dict[int, tuple[str, str]],
    issues: list[ImportIssue],
) -> list[tuple[_Row, Any]]:
    """What a schedule (per program) or closures (per row) file would write."""
    numbered = {row.number: row for row in rows}
    parsed = [(row.number, row.values) for row in rows]

    def cell_of(field_name: str, number: int) -> tuple[str, str]:
        """Header and cell of a field in a row."""
        return _cell_of(mapping, field_name, number)

    if kind == "schedule":
        programs = schedule_import.schedule_models(
            conn, facility_id=facility_id, rows=parsed, cell_of=cell_of, issues=issues
        )
        return [(numbered[s[0].row], (pid, s)) for pid, s in programs.items()]
    closures = schedule_import.closure_models(
        conn, facility_id=facility_id, rows=parsed, cell_of=cell_of, issues=issues
    )
    by_day = {(r.values.get("on_date"), r.values.get("program_id") or None): r for r in rows}
    return [(by_day[(day, pid)], (day, pid, reason)) for day, pid, reason in closures]


class _Abort(Exception):
    """Rolls the import transaction back after a row failed to write."""


def _check_credentials(
    conn: psycopg.Connection[Any],
    *,
    member: MemberIn,
    row: _Row,
    key: bytes,
    owners: dict[str, tuple[str, int]],
    mapping: dict[int, tuple[str, str]],
    issues: list[ImportIssue],
) -> None:
    """A card or NFC identifier may belong to one member only (in the file and the registry)."""
    current = keys.in_use(conn, facility_id=member.facility_id)[:1]
    for field_name, uids in (("card_uids", member.card_uids), ("nfc_uids", member.nfc_uids)):
        for uid in uids:
            (digest,) = keys.hashes_of(
                key, facility_id=member.facility_id, versions=current, uid=uid
            ).values()
            header, cell = _cell_of(mapping, field_name, row.number)
            if digest in owners and owners[digest][0] != member.member_ref:
                issues.append(
                    ImportIssue(
                        row=row.number,
                        column=header,
                        cell=cell,
                        value="(hidden)",
                        message=f"same identifier as row {owners[digest][1]}",
                    )
                )
                continue
            owners[digest] = (member.member_ref, row.number)
            found = conn.execute(
                "SELECT member_ref FROM member_credentials WHERE credential_hash = %s", (digest,)
            ).fetchone()
            if found is not None and found[0] != member.member_ref:
                issues.append(
                    ImportIssue(
                        row=row.number,
                        column=header,
                        cell=cell,
                        value="(hidden)",
                        message="identifier is registered to another member",
                    )
                )
