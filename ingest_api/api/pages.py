"""Server-rendered pages for staff and operators (plain HTML, no script needed)."""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from ingest_api.api.deps import ConnDep
from ingest_api.db import reads

router = APIRouter()
_SEOUL = ZoneInfo("Asia/Seoul")

_STYLE = """
body{font-family:'NanumGothic','Noto Sans KR',sans-serif;margin:2rem;color:#111;background:#fff}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #555;padding:.4rem .8rem}
th{background:#e8eef7}td.n{text-align:right}.bad{color:#a00;font-weight:bold}
"""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """An HTML table; numbers right-aligned, everything escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{v}</td>' if isinstance(v, int) else f"<td>{escape(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


@router.get("/", response_class=HTMLResponse)
def overview(conn: ConnDep, day: Annotated[date | None, Query()] = None) -> str:
    """Today's (or a day's) figures per center and program, and the fleet's health."""
    shown = day or datetime.now(_SEOUL).date()
    figures = reads.daily_figures(conn, start=shown, end=shown)
    fig_rows = [
        [
            f["facility_id"],
            f["program_id"] or "(기관 합계)",
            f["unique_persons"],
            f["person_visits"],
        ]
        for f in figures
    ]
    device_rows = [
        [
            d["facility_id"],
            d["device_id"],
            d["last_seen_at"].astimezone(_SEOUL).strftime("%Y-%m-%d %H:%M:%S"),
            d["outbox_pending"],
        ]
        for d in reads.devices(conn)
    ]
    return (
        "<!doctype html><html lang='ko'><head><meta charset='utf-8'>"
        f"<title>Smart Welfare 실적 현황</title><style>{_STYLE}</style></head><body>"
        f"<h1>출석 실적 현황 — {shown.isoformat()}</h1>"
        + _table(["기관", "프로그램", "실인원", "연인원"], fig_rows)
        + "<h2>키오스크 상태</h2>"
        + _table(["기관", "기기", "마지막 수신", "미확인 이벤트"], device_rows)
        + "</body></html>"
    )
