"""`welfare forms`: the quarterly report as the centers print it, rendered for the docs.

`welfare forms render --out docs/screens` starts a throw-away PostgreSQL, loads the sample city
(`welfare.sample.city`), builds center B's and the city's report for a quarter, writes them as
.xlsx, converts each workbook to PDF with LibreOffice (as a center would print it) and the PDF's
pages to PNG with pdftoppm. The same conversion and page reading serve the test that checks
the workbook prints one page wide on A3 landscape.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

A3_LANDSCAPE_PT = (1190.55, 841.89)  # 420 × 297 mm in PostScript points
_PAGE = re.compile(r"^Page\s+(\d+) size:\s+([\d.]+) x ([\d.]+) pts", re.M)


@dataclass(frozen=True, slots=True)
class PdfPage:
    """One page of a PDF: its size in points and its text."""

    number: int
    width: float
    height: float
    text: str


def office() -> str:
    """The LibreOffice executable (libreoffice-calc-nogui from system-packages.txt)."""
    found = shutil.which("libreoffice") or shutil.which("soffice")
    if found is None:
        raise FileNotFoundError("LibreOffice is missing: apt-get install libreoffice-calc-nogui")
    return found


def to_pdf(xlsx: Path, outdir: Path) -> Path:
    """Convert a workbook to PDF with LibreOffice (every sheet, as printed)."""
    profile = outdir / "lo-profile"
    subprocess.run(
        [
            office(),
            "--headless",
            f"-env:UserInstallation=file://{profile}",
            "--convert-to",
            "pdf",
            "--outdir",
            str(outdir),
            str(xlsx),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = outdir / (xlsx.stem + ".pdf")
    if not pdf.exists():
        raise RuntimeError(f"LibreOffice wrote no {pdf.name}")
    return pdf


def pages(pdf: Path) -> list[PdfPage]:
    """Every page's size and text (poppler's pdfinfo and pdftotext)."""
    info = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", "9999", str(pdf)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    found = []
    for number, width, height in _PAGE.findall(info):
        text = subprocess.run(
            ["pdftotext", "-layout", "-f", number, "-l", number, str(pdf), "-"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        found.append(PdfPage(int(number), float(width), float(height), text))
    return found


def to_png(pdf: Path, out: Path, *, page: int = 1, dpi: int = 110) -> Path:
    """One page of a PDF as PNG (pdftoppm)."""
    stem = out.with_suffix("")
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            "-singlefile",
            str(pdf),
            str(stem),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return stem.with_suffix(".png")


def render(out: Path, *, year: int = 2026, quarter: int = 3) -> list[Path]:
    """Render center B's and the city's report (form and chart sheet) as PNG into `out`."""
    import psycopg

    from ingest_api.core.fieldcrypto import FieldCipher
    from ingest_api.core.migrate import migrate
    from ingest_api.figures import rollup
    from ingest_api.figures.export import to_xlsx
    from ingest_api.figures.reports import build_quarterly_report
    from welfare.sample.city import build_city, load_events, load_registry
    from welfare.services.postgres import PostgresServer

    out.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory(prefix="welfare-forms-") as tmp:
        work = Path(tmp)
        with PostgresServer(work / "pg") as server:
            url = server.create_database("forms")
            migrate(url)
            sample = build_city(year=year, members_per_center=20)
            with psycopg.connect(url) as conn:
                load_registry(
                    conn,
                    sample=sample,
                    key=b"forms-render-key-0123456789abcdef",
                    # A throw-away key: the rendered forms hold aggregates only.
                    cipher=FieldCipher([secrets.token_bytes(32)]),
                )
                load_events(conn, events=sample.events)
                conn.commit()
                rollup.refresh(conn)
                reports = {
                    name: build_quarterly_report(
                        conn, facility_id=facility, year=year, quarter=quarter
                    )
                    for name, facility in (("center_B", "B"), ("city", None))
                }
        for name, report in reports.items():
            xlsx = work / f"report_{name}.xlsx"
            xlsx.write_bytes(to_xlsx(report))
            pdf = to_pdf(xlsx, work)
            printed = pages(pdf)
            made.append(to_png(pdf, out / f"report_{name}.png", page=1))
            if name == "city":
                made.append(to_png(pdf, out / "report_chart.png", page=len(printed)))
    return made


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `forms` command."""
    forms = sub.add_parser("forms", help="the quarterly report as printed (docs pictures)")
    actions = forms.add_subparsers(dest="action", required=True)
    render_cmd = actions.add_parser(
        "render",
        help="render the sample city's report (.xlsx → PDF → PNG) into docs/screens",
    )
    render_cmd.add_argument("--out", type=Path, default=Path("docs/screens"))
    render_cmd.add_argument("--year", type=int, default=2026)
    render_cmd.add_argument("--quarter", type=int, choices=(1, 2, 3, 4), default=3)
    render_cmd.set_defaults(handler=_render)


def _render(args: argparse.Namespace) -> int:
    """`welfare forms render`."""
    for path in render(args.out, year=args.year, quarter=args.quarter):
        print(path)
    return 0
