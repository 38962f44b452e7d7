"""`welfare ingest …`: migrate, consume, serve the API."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from ingest_api.core.config import IngestSettings

_LOG = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `ingest` command group."""
    ingest = sub.add_parser("ingest", help="the central ingest service")
    cmds = ingest.add_subparsers(dest="ingest_command", required=True)
    cmds.add_parser("migrate", help="apply pending database migrations").set_defaults(
        handler=_migrate
    )
    consume = cmds.add_parser("consume", help="run the MQTT consumer only (no HTTP)")
    consume.set_defaults(handler=_consume)
    run = cmds.add_parser("run", help="run the API and the consumer")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--no-consume", action="store_true", help="serve the API only")
    run.set_defaults(handler=_run)


def _settings() -> IngestSettings:
    """Settings from the environment."""
    return IngestSettings()


def _migrate(_args: argparse.Namespace) -> int:
    """`welfare ingest migrate`."""
    from ingest_api.db.migrate import migrate

    applied = migrate(_settings().database_url)
    print(f"applied {len(applied)} migration(s): {applied}")
    return 0


def _consume(_args: argparse.Namespace) -> int:
    """`welfare ingest consume`: until SIGTERM/SIGINT."""
    from ingest_api.consumer import IngestConsumer

    consumer = IngestConsumer(_settings())
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    consumer.start()
    _LOG.info("consumer %s started", consumer.settings.consumer_id)
    done.wait()
    consumer.stop()
    return 0


def _run(args: argparse.Namespace) -> int:
    """`welfare ingest run`."""
    import uvicorn

    from ingest_api.main import create_app

    uvicorn.run(
        create_app(_settings(), consume=not args.no_consume), host=args.host, port=args.port
    )
    return 0
