"""`welfare edge …`: run a kiosk's agent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
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
    """Run until interrupted; the link for the kiosk UI starts when available."""
    settings = EdgeSettings()  # from the environment
    async with EdgeAgent(settings) as agent:
        if args.roster:
            await agent.load_roster(roster_from_json(args.roster.read_bytes()))
        _LOG.info("edge agent %s/%s running", settings.facility_id, settings.device_id)
        try:
            from edge_agent.link import serve_link  # type: ignore[attr-defined]
        except ImportError:
            await asyncio.Event().wait()
        else:
            await serve_link(agent)


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
