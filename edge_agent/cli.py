"""`welfare edge …`: run a kiosk's agent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from edge_agent.link import LinkServer
from edge_agent.metrics import serve_metrics
from edge_agent.store import roster_from_json
from edge_agent.systemd import service

if TYPE_CHECKING:
    from hardware.face.matcher import FaceMatch

_LOG = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `edge` command group."""
    edge = sub.add_parser("edge", help="the kiosk's edge agent")
    cmds = edge.add_subparsers(dest="edge_command", required=True)
    run = cmds.add_parser(
        "run",
        help="run the agent (settings from WELFARE_FACILITY_ID, WELFARE_DEVICE_ID, "
        "WELFARE_CREDENTIAL_KEY, WELFARE_MQTT__*, WELFARE_HARDWARE__*, ...)",
    )
    run.add_argument("--roster", type=Path, help="load this roster JSON file before starting")
    run.add_argument(
        "--no-hardware", action="store_true", help="do not open readers, buzzer or printer"
    )
    run.set_defaults(handler=_run)
    status = cmds.add_parser("status", help="print the outbox state of a device database")
    status.set_defaults(handler=_status)


async def _serve(args: argparse.Namespace) -> None:
    """Run until interrupted: the hardware (settings.hardware), and the UI's link if configured."""
    settings = EdgeSettings()  # the environment, and the TOML and secrets files it names
    async with EdgeAgent(settings) as agent, contextlib.AsyncExitStack() as stack:
        if args.roster:
            await agent.load_roster(roster_from_json(args.roster.read_bytes()))
        _LOG.info("edge agent %s/%s running", settings.facility_id, settings.device_id)
        if settings.metrics_port is not None:
            port = await stack.enter_async_context(
                serve_metrics(agent, host=settings.metrics_host, port=settings.metrics_port)
            )
            if port is not None:
                _LOG.info("metrics on http://%s:%d/metrics", settings.metrics_host, port)
        link: LinkServer | None = None
        if settings.link_socket is not None:
            settings.link_socket.parent.mkdir(parents=True, exist_ok=True)
            link = await stack.enter_async_context(LinkServer(agent, settings.link_socket))
            _LOG.info("kiosk link on %s", settings.link_socket)
        if settings.hardware.face:
            stack.enter_context(_face_task(agent, settings, link))

        async def alive() -> bool:
            """The loop runs and the device database answers (the watchdog's check)."""
            await agent.store.roster_version()
            return True

        ident = f"{settings.facility_id}/{settings.device_id}"
        await stack.enter_async_context(service(alive, status=f"kiosk {ident} deciding"))
        if args.no_hardware:
            await asyncio.Event().wait()
        try:
            from edge_agent.devices import run_hardware
        except ImportError:
            _LOG.warning("the hardware extra is not installed: no readers")
            await asyncio.Event().wait()
        else:
            await run_hardware(agent, settings.hardware)


@contextlib.contextmanager
def _face_task(
    agent: EdgeAgent, settings: EdgeSettings, link: LinkServer | None
) -> Iterator[asyncio.Task[None]]:
    """Watch the camera alongside the card readers (docs/face.md); stopped on exit."""
    from edge_agent.face import run_face

    async def no_screen(_match: FaceMatch) -> bool:
        """Without a screen to ask "is this you?", a face records nothing."""
        return False

    confirm = link.confirm_face if link is not None else no_screen
    task = asyncio.create_task(run_face(agent, settings.hardware, confirm=confirm), name="face")
    _LOG.info("face match on (camera %s)", settings.hardware.camera)
    try:
        yield task
    finally:
        task.cancel()


def _run(args: argparse.Namespace) -> int:
    """`welfare edge run`: SIGTERM (systemd stop) and Ctrl-C shut down cleanly."""

    async def main() -> None:
        """Serve until cancelled; SIGTERM cancels this task."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await _serve(args)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def _status(args: argparse.Namespace) -> int:
    """`welfare edge status`."""

    async def show() -> None:
        """Open the device database without a broker and print its outbox counts."""
        settings = EdgeSettings()
        async with EdgeAgent(settings.model_copy(update={"mqtt": None})) as agent:
            stats = await agent.store.stats()
            print(f"pending={stats.pending} confirmed={stats.confirmed} parked={stats.parked}")
            for event in await agent.store.parked():
                # Refused by the center for good: kept here, never resent (docs/contract.md).
                print(f"parked {event.event_id}: {event.reason}")

    asyncio.run(show())
    return 0
