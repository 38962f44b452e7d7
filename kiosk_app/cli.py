"""`welfare kiosk ...`: run the kiosk UI, render its screenshots, benchmark tap-to-screen."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk_app.boot import prepare_kivy
from kiosk_app.pin import hash_pin
from kiosk_app.settings import KioskSettings

if TYPE_CHECKING:
    from kiosk_app.app import KioskApp


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `kiosk` command group."""
    parser = sub.add_parser("kiosk", help="the kiosk touch UI (Kivy)")
    kiosk = parser.add_subparsers(dest="kiosk_command", required=True, metavar="SUBCOMMAND")

    run = kiosk.add_parser("run", help="show the kiosk UI, connected to the edge agent's link")
    run.add_argument("--socket", type=Path, help="the agent's link socket (default: settings)")
    run.add_argument("--fullscreen", action="store_true", help="fill the screen (the kiosk)")
    run.add_argument(
        "--demo",
        action="store_true",
        help="run a demo agent in this process (center B's meal hall, fixed clock)",
    )
    run.set_defaults(handler=_run)

    shots = kiosk.add_parser("screenshots", help="render every screen as PNG (Xvfb if no X)")
    shots.add_argument("--out", type=Path, default=Path("docs/screens"))
    shots.set_defaults(handler=_screenshots)

    bench = kiosk.add_parser("bench", help="tap-to-success-screen latency through the link")
    bench.add_argument("--taps", type=int, default=300, help="number of taps (one per member)")
    bench.set_defaults(handler=_bench)

    pin = kiosk.add_parser("hash-pin", help="print the hash to set as WELFARE_KIOSK_STAFF_PIN_HASH")
    pin.set_defaults(handler=_hash_pin)


def _stop_on_signals(app: KioskApp) -> None:
    """systemd stops the kiosk with SIGTERM, a terminal with Ctrl-C: close the window cleanly."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, app.stop)


def _run(args: argparse.Namespace) -> int:
    """Run the kiosk UI until closed."""
    settings = KioskSettings()
    updates: dict[str, object] = {}
    if args.socket:
        updates["link_socket"] = args.socket
    if args.fullscreen:
        updates["fullscreen"] = True
    if updates:
        settings = settings.model_copy(update=updates)
    prepare_kivy(settings)
    from kiosk_app.app import KioskApp

    async def main() -> None:
        """Run the app, with an in-process demo agent if asked."""
        if not args.demo:
            app = KioskApp(settings)
            _stop_on_signals(app)
            await app.async_run(async_lib="asyncio")
            await app.link.close()
            return
        from kiosk_app.demo import KEYBOARD_CARDS, demo_agent

        demo_settings = settings.model_copy()
        if not settings.staff_pin_hash:
            # A fresh PIN per demo run, shown only on this terminal.
            pin = f"{secrets.randbelow(10_000):04d}"
            demo_settings.staff_pin_hash = hash_pin(pin)
            print(f"demo staff PIN: {pin}", file=sys.stderr)
        print("demo card reader: type 1-6 and Enter (1 meal, 4 two classes, 6 unknown)")
        with tempfile.TemporaryDirectory(prefix="kiosk-demo-") as tmp:
            async with demo_agent(Path(tmp)) as agent:
                demo_settings.link_socket = agent.socket
                app = KioskApp(demo_settings, keyboard_cards=KEYBOARD_CARDS)
                _stop_on_signals(app)
                await app.async_run(async_lib="asyncio")
                await app.link.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130  # Ctrl-C on a desktop; the agent (if separate) keeps running
    return 0


def _screenshots(args: argparse.Namespace) -> int:
    """Render every screen into --out."""
    prepare_kivy(KioskSettings())
    from kiosk_app.harness import SCREENS, screenshots

    paths = screenshots(args.out)
    names = dict(SCREENS)
    for path in paths:
        print(f"{path}  {names.get(path.name, '')}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    """Print p50/p99 of tap-to-success and check that every tap was recorded."""
    prepare_kivy(KioskSettings())
    from kiosk_app.harness import bench

    result = bench(args.taps)
    print(result.report())
    return 0 if result.recorded == result.taps else 1


def _hash_pin(_args: argparse.Namespace) -> int:
    """Read a PIN without echo and print its hash."""
    pin = getpass.getpass("staff PIN (4-12 digits): ") if sys.stdin.isatty() else input()
    print(hash_pin(pin.strip()))
    return 0
