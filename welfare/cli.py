"""The `welfare` command: one subcommand group per component (each registers its own)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Each module has `register(subparsers)`; a component whose extra is not installed is skipped,
# so a kiosk without the central extra still has `welfare edge` and `welfare kiosk`.
COMPONENT_CLIS = (
    "edge_agent.cli",
    "ingest_api.cli",
    "broker.cli",
    "kiosk_app.cli",
    "hardware.cli",
    "welfare.demo",
    "welfare.fleet",
    "welfare.provision",
    "welfare.bench.cli",
    "welfare.forms",
    "welfare.face_desk",
    "welfare.recovery",
    "welfare.faults.soak",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every installed component's subcommands."""
    parser = argparse.ArgumentParser(prog="welfare", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMPONENT_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] in name:
                continue  # the component itself is absent
            logging.getLogger(__name__).debug("skipping %s: %s", name, exc)
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `welfare` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
