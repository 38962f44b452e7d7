"""Downloads: every file that leaves the system is encrypted with a password its user chooses.

An .xlsx is encrypted in the Office format (msoffcrypto-tool: Excel asks for the password);
anything else travels in an AES-256 zip (pyzipper: 7-Zip, Windows tools with AES support, or
`welfare` itself open it). The same rules hold for the API and the command line; the reason
typed for a download goes to the audit log (ingest_api/core/audit.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msoffcrypto.format.ooxml
import pyzipper
from fastapi import Response
from openpyxl import Workbook
from pydantic import BaseModel, ConfigDict, Field

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP: Final = "application/zip"
MIN_FILE_PASSWORD: Final = 8


class DownloadRequest(BaseModel):
    """What every download asks for: why, and the password the file will open with."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=200, description="Why (audited).")
    password: str = Field(
        min_length=MIN_FILE_PASSWORD,
        max_length=128,
        description="The file's password (chosen by the person downloading; never stored).",
    )


@dataclass(frozen=True, slots=True)
class Download:
    """An encrypted file ready to hand out."""

    filename: str
    media_type: str
    content: bytes

    def response(self) -> Response:
        """The HTTP answer that hands the file out."""
        return Response(
            self.content,
            media_type=self.media_type,
            headers={"Content-Disposition": f'attachment; filename="{self.filename}"'},
        )


def encrypt_xlsx(data: bytes, *, password: str) -> bytes:
    """An .xlsx that opens only with `password` (Office's agile encryption)."""
    out = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


def aes_zip(files: dict[str, bytes], *, password: str) -> bytes:
    """A zip whose members are AES-256 encrypted with `password`."""
    out = io.BytesIO()
    with pyzipper.AESZipFile(
        out, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(password.encode())
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def seal(filename: str, content: bytes, *, password: str) -> Download:
    """Encrypt a file for download: an .xlsx in place, anything else inside an AES zip."""
    if len(password) < MIN_FILE_PASSWORD:
        raise ValueError(f"the file password needs {MIN_FILE_PASSWORD}+ characters")
    if filename.endswith(".xlsx"):
        return Download(filename, XLSX, encrypt_xlsx(content, password=password))
    stem = filename.rsplit(".", 1)[0]
    return Download(f"{stem}.zip", ZIP, aes_zip({filename: content}, password=password))


def table_xlsx(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """A plain one-sheet workbook of a table."""
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def table_csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """A CSV of a table, UTF-8 with a BOM (Excel reads Hangul right)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode()
