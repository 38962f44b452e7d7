"""Render what a ticket printer was sent (an ESC/POS byte stream) as the paper would look.

For the docs' picture of the visitor slip and for tests: the bytes come from python-escpos's
Dummy printer fed by `EscposTicketPrinter`, so the picture is of the very commands a real
printer gets. Only the commands our documents use are understood (initialise, print mode,
bold, alignment, code table, raster images, CODE128 barcodes and QR codes with their settings,
feed, cut);
anything else stops the rendering with an error rather than drawing something else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from hardware.printer import DEFAULT_WIDTH_PX, find_korean_font

ESC, GS = 0x1B, 0x1D
FONT_A_PX = 24  # font A is 12×24 dots
MARGIN_PX = 16


class UnknownCommandError(ValueError):
    """The stream holds a command this renderer does not know."""


@dataclass
class _State:
    """Print settings in force."""

    width_mult: int = 1
    height_mult: int = 1
    bold: bool = False
    align: int = 0  # 0 left, 1 centre, 2 right
    barcode_height: int = 162
    barcode_width: int = 3
    hri_below: bool = False
    qr_module: int = 3
    qr_data: str = ""


def _barcode(data: str, *, height: int, module: int, hri: bool) -> Image.Image:
    """A CODE128 barcode as the printer draws it (python-barcode's writer)."""
    from barcode import Code128  # type: ignore[import-untyped]
    from barcode.writer import ImageWriter  # type: ignore[import-untyped]

    out = io.BytesIO()
    Code128(data, writer=ImageWriter()).write(
        out,
        options={
            "module_width": module * 0.125,  # mm per module at 203 dpi ≈ dots × 0.125
            "module_height": height * 0.125,
            "quiet_zone": 2,
            "write_text": hri,
            "font_size": 8,
            "dpi": 203,
        },
    )
    out.seek(0)
    return Image.open(out).convert("1")


def _qr(data: str, *, module: int) -> Image.Image:
    """A QR code as the printer draws it: `module` dots a module, a 4-module quiet zone."""
    import qrcode  # type: ignore[import-untyped]

    code = qrcode.QRCode(box_size=module, border=4)
    code.add_data(data)
    image = code.make_image(fill_color="black", back_color="white")
    return image.get_image().convert("1")  # type: ignore[no-any-return]


def render_escpos(data: bytes, *, width_px: int = DEFAULT_WIDTH_PX) -> Image.Image:
    """The paper of an ESC/POS stream: one image per printed line, stacked, on white."""
    font_path = str(find_korean_font())
    state = _State()
    lines: list[tuple[Image.Image, int]] = []
    text = bytearray()
    i = 0

    def flush() -> None:
        """Draw the pending text in the current mode: font A cells of 12×24 dots times the
        size multipliers, wrapped at the paper's width as the printer wraps it."""
        if not text:
            return
        cell_w, cell_h = 12 * state.width_mult, FONT_A_PX * state.height_mult
        font = ImageFont.truetype(font_path, cell_h)
        content = text.decode("ascii", "replace")
        per_line = max(width_px // cell_w, 1)
        for start in range(0, len(content), per_line):
            chunk = content[start : start + per_line]
            left, top, right, _bottom = font.getbbox(chunk)
            drawn = Image.new("1", (max(int(right - left), 1) + 2, cell_h + cell_h // 4), 1)
            ImageDraw.Draw(drawn).text(
                (-left, cell_h // 8 - top), chunk, font=font, fill=0, stroke_width=int(state.bold)
            )
            lines.append((drawn.resize((len(chunk) * cell_w, drawn.height)), state.align))
        text.clear()

    while i < len(data):
        byte = data[i]
        if byte == ESC:
            command = data[i + 1]
            if command == ord("@"):
                state = _State()
                i += 2
            elif command == ord("!"):
                mode = data[i + 2]
                state.bold = bool(mode & 0x08)
                state.height_mult = 2 if mode & 0x10 else 1
                state.width_mult = 2 if mode & 0x20 else 1
                i += 3
            elif command == ord("E"):
                state.bold = bool(data[i + 2])
                i += 3
            elif command == ord("a"):
                state.align = data[i + 2]
                i += 3
            elif command in (ord("t"), ord("M")):
                i += 3
            elif command == ord("d"):
                flush()
                lines.append((Image.new("1", (1, FONT_A_PX * data[i + 2]), 1), 0))
                i += 3
            else:
                raise UnknownCommandError(f"ESC {command:#x} at byte {i}")
        elif byte == GS:
            command = data[i + 1]
            if command == ord("v") and data[i + 2] == ord("0"):
                flush()
                width_bytes = data[i + 4] | data[i + 5] << 8
                height = data[i + 6] | data[i + 7] << 8
                body = data[i + 8 : i + 8 + width_bytes * height]
                inverted = bytes(b ^ 0xFF for b in body)  # ESC/POS 1 = black; PIL 1 = white
                lines.append((Image.frombytes("1", (width_bytes * 8, height), inverted), 1))
                i += 8 + width_bytes * height
            elif command == ord("!"):  # character size: width and height multipliers
                state.width_mult = (data[i + 2] >> 4) + 1
                state.height_mult = (data[i + 2] & 0x0F) + 1
                i += 3
            elif command == ord("h"):
                state.barcode_height = data[i + 2]
                i += 3
            elif command == ord("w"):
                state.barcode_width = data[i + 2]
                i += 3
            elif command == ord("H"):
                state.hri_below = data[i + 2] in (2, 3)
                i += 3
            elif command == ord("f"):
                i += 3
            elif command == ord("k") and data[i + 2] == 73:  # CODE128, length-prefixed
                flush()
                length = data[i + 3]
                payload = data[i + 4 : i + 4 + length].decode("ascii")
                code = payload[2:] if payload.startswith("{") else payload
                lines.append(
                    (
                        _barcode(
                            code,
                            height=state.barcode_height,
                            module=state.barcode_width,
                            hri=state.hri_below,
                        ),
                        state.align,
                    )
                )
                i += 4 + length
            elif command == ord("(") and data[i + 2] == ord("k"):  # QR code functions
                size = data[i + 3] | data[i + 4] << 8
                params = data[i + 5 : i + 5 + size]
                function = params[1]
                if function == ord("C"):
                    state.qr_module = params[2]
                elif function == ord("P"):
                    state.qr_data = params[3:].decode("ascii")
                elif function == ord("Q"):
                    flush()
                    lines.append((_qr(state.qr_data, module=state.qr_module), state.align))
                i += 5 + size
            elif command == ord("V"):
                flush()
                i += 3
            else:
                raise UnknownCommandError(f"GS {command:#x} at byte {i}")
        elif byte == 0x0A:
            if text:
                flush()
            else:
                lines.append((Image.new("1", (1, FONT_A_PX), 1), 0))
            i += 1
        else:
            text.append(byte)
            i += 1
    flush()
    height = sum(image.height + 6 for image, _ in lines) + 2 * MARGIN_PX
    paper = Image.new("L", (width_px + 2 * MARGIN_PX, height), 255)
    y = MARGIN_PX
    for image, align in lines:
        room = width_px - image.width
        x = MARGIN_PX + (room // 2 if align == 1 else room if align == 2 else 0)
        paper.paste(image.convert("L"), (max(x, 0), y))
        y += image.height + 6
    return paper


def save_slip_picture(data: bytes, out: Path) -> Path:
    """Render an ESC/POS stream to a PNG file (the docs' visitor slip)."""
    render_escpos(data).save(out)
    return out
