"""`welfare edge …`: run a kiosk's agent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from edge_agent.link import LinkServer
from edge_agent.store import roster_from_json

_LOG = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `edge` command group."""
    edge = sub.add_parser("edge", help="the kiosk's edge agent")
    cmds = edge.add_subparsers(dest="edge_command", required=True)
    run = cmds.add_parser(
        "run", help="run the agent (settings from WELFARE_EDGE_* and WELFARE_MQTT_*)"
    )
    run.add_argument("--roster", type=Path, help="load this roster JSON file before starting")
    run.set_defaults(handler=_run)
    status = cmds.add_parser("status", help="print the outbox state of a device database")
    status.set_defaults(handler=_status)


async def _serve(args: argparse.Namespace) -> None:
    """Run until interrupted, serving the kiosk UI's link when a socket is configured."""
    settings = EdgeSettings()  # from the environment
    async with EdgeAgent(settings) as agent:
        if args.roster:
            await agent.load_roster(roster_from_json(args.roster.read_bytes()))
        _LOG.info("edge agent %s/%s running", settings.facility_id, settings.device_id)
        if settings.link_socket is None:
            await asyncio.Event().wait()
        else:
            settings.link_socket.parent.mkdir(parents=True, exist_ok=True)
            async with LinkServer(agent, settings.link_socket):
                _LOG.info("kiosk link on %s", settings.link_socket)
                await asyncio.Event().wait()


def _run(args: argparse.Namespace) -> int:
    """`welfare edge run`."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


def _status(args: argparse.Namespace) -> int:
    """`welfare edge status`."""

    async def show() -> None:
        settings = EdgeSettings()
        async with EdgeAgent(settings.model_copy(update={"mqtt": None})) as agent:
            stats = await agent.store.stats()
            print(f"pending={stats.pending} confirmed={stats.confirmed}")

    asyncio.run(show())
    return 0
