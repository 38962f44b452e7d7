"""`welfare hardware ...`: list devices, test-print a ticket, make a face key, bench face match."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `hardware` command group."""
    parser = sub.add_parser("hardware", help="kiosk hardware: readers, printer, face match")
    commands = parser.add_subparsers(dest="hardware_command", required=True, metavar="ACTION")

    devices = commands.add_parser("devices", help="list input devices and serial ports")
    devices.set_defaults(handler=_devices)

    test_print = commands.add_parser("test-print", help="print a sample meal ticket and slip")
    test_print.add_argument("--printer", default="dummy", help="dummy, usb:VID:PID, serial:…")
    test_print.add_argument("--korean", choices=["image", "euc-kr"], default="image")
    test_print.add_argument("--out", type=Path, help="with --printer dummy: write the bytes here")
    test_print.set_defaults(handler=_test_print)

    slip = commands.add_parser(
        "slip", help="render a visitor slip as printed (the ESC/POS bytes drawn as paper, PNG)"
    )
    slip.add_argument("--out", type=Path, required=True, help="PNG file")
    slip.add_argument("--code", default="V-B-meal-1-20261123-0001", help="the visitor code")
    slip.add_argument("--facility-name", default="한마음종합사회복지관")
    slip.set_defaults(handler=_slip)

    key = commands.add_parser("face-key", help="generate a face template key (AES-256)")
    key.set_defaults(handler=_face_key)

    bench = commands.add_parser("bench-face", help="time 1:N face match for N enrolled")
    bench.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    bench.add_argument("--probes", type=int, default=200)
    bench.set_defaults(handler=_bench_face)


def _devices(args: argparse.Namespace) -> int:
    """Print what could be a card reader: evdev input devices and serial ports."""
    import evdev
    from serial.tools import list_ports

    print("input devices (keyboard-wedge readers):")
    for path in evdev.list_devices():
        device = evdev.InputDevice(path)
        print(f"  {path}  {device.info.vendor:04x}:{device.info.product:04x}  {device.name}")
        device.close()
    print("serial ports:")
    for port in list_ports.comports():
        print(f"  {port.device}  {port.vid or 0:04x}:{port.pid or 0:04x}  {port.description}")
    return 0


def _test_print(args: argparse.Namespace) -> int:
    """Print a sample ticket and visitor slip."""
    from escpos.printer import Dummy

    from hardware.printer import EscposTicketPrinter, MealTicket, VisitorSlip, open_printer

    raw = open_printer(args.printer)
    printer = EscposTicketPrinter(raw, korean=args.korean)
    now = datetime.now().astimezone()
    printer.print_meal_ticket(MealTicket(1, "시험 복지관", "경로식당 점심", now, "홍*동"))
    printer.print_visitor_slip(VisitorSlip("V-TEST-00000000-0001", "시험 복지관", now))
    if isinstance(raw, Dummy):
        if args.out is not None:
            args.out.write_bytes(raw.output)
        print(f"{len(raw.output)} bytes of ESC/POS")
    raw.close()
    return 0


def _slip(args: argparse.Namespace) -> int:
    """Print a visitor slip on a Dummy printer and draw its bytes (docs/screens)."""
    from escpos.printer import Dummy

    from hardware.escpos_render import save_slip_picture
    from hardware.printer import EscposTicketPrinter, VisitorSlip

    raw = Dummy(profile="TM-T88V")
    at = datetime(2026, 11, 23, 12, 0).astimezone()
    EscposTicketPrinter(raw).print_visitor_slip(VisitorSlip(args.code, args.facility_name, at))
    print(save_slip_picture(raw.output, args.out))
    return 0


def _face_key(args: argparse.Namespace) -> int:
    """Print a new key for WELFARE_FACE_KEY."""
    from hardware.face.crypto import encode_key, generate_key

    print(encode_key(generate_key()))
    return 0


def _bench_face(args: argparse.Namespace) -> int:
    """Run the face-match benchmark and print its table."""
    from hardware.face.bench import run

    run(args.sizes, probes=args.probes)
    return 0
