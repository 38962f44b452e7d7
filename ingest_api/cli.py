"""`welfare ingest …`, `welfare report …` and `welfare import …`: the central service's commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest_api.core.config import Settings

if TYPE_CHECKING:
    from tqdm import tqdm

_LOG = logging.getLogger(__name__)
_FORMATS = ("xlsx", "csv", "json")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `ingest`, `report` and `import` commands."""
    ingest = sub.add_parser("ingest", help="the central ingest service")
    cmds = ingest.add_subparsers(dest="ingest_command", required=True)
    cmds.add_parser("migrate", help="apply pending database migrations").set_defaults(
        handler=_migrate
    )
    consume = cmds.add_parser("consume", help="run the MQTT consumer only (no HTTP)")
    consume.add_argument(
        "--metrics-port",
        type=int,
        help="serve this worker's Prometheus metrics (batch latency, queue depth) on the port",
    )
    consume.add_argument("--metrics-host", default="127.0.0.1")
    consume.set_defaults(handler=_consume)
    run = cmds.add_parser("run", help="run the API and the consumer")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--no-consume", action="store_true", help="serve the API only")
    run.set_defaults(handler=_run)

    report = sub.add_parser("report", help="the quarterly performance report (xlsx, csv, json)")
    where = report.add_mutually_exclusive_group(required=True)
    where.add_argument("--facility", help="facility id, e.g. B")
    where.add_argument("--city", action="store_true", help="all centers together")
    report.add_argument("--year", type=int, required=True)
    report.add_argument("--quarter", type=int, choices=(1, 2, 3, 4), required=True)
    report.add_argument("--format", choices=_FORMATS, default="xlsx")
    report.add_argument("--out", type=Path, help="output file (default: stdout for csv/json)")
    report.add_argument("--raw", action="store_true", help="count from the raw rows (slow)")
    report.set_defaults(handler=_report)

    imp = sub.add_parser("import", help="import a members or programs list (.xlsx or .csv)")
    imp.add_argument("kind", choices=("members", "programs"))
    imp.add_argument("file", type=Path)
    imp.add_argument("--facility", required=True, help="facility id the list belongs to")
    imp.add_argument("--actor", default=os.environ.get("USER", "cli"), help="staff id (audited)")
    imp.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    imp.set_defaults(handler=_import)


def _settings() -> Settings:
    """Settings from the environment; a missing or bad one ends the command with its reason."""
    try:
        return Settings()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _migrate(_args: argparse.Namespace) -> int:
    """`welfare ingest migrate`."""
    from ingest_api.core.migrate import migrate

    applied = migrate(_settings().database_url)
    print(f"applied {len(applied)} migration(s): {applied}")
    return 0


def _consume(args: argparse.Namespace) -> int:
    """`welfare ingest consume`: until SIGTERM/SIGINT."""
    from prometheus_client import start_http_server

    from ingest_api.ingest.consumer import IngestConsumer

    consumer = IngestConsumer(_settings())
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.metrics_port is not None:
        server, _thread = start_http_server(
            args.metrics_port, addr=args.metrics_host, registry=consumer.metrics.registry
        )
        _LOG.info("metrics on http://%s:%d/metrics", args.metrics_host, server.server_port)
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


def _report(args: argparse.Namespace) -> int:
    """Write the quarterly report of a facility or the city."""
    import psycopg

    from ingest_api.figures import rollup
    from ingest_api.figures.export import to_csv, to_xlsx
    from ingest_api.figures.reports import build_quarterly_report

    with psycopg.connect(_settings().database_url) as conn:
        if not args.raw:
            rollup.refresh(conn)  # a command, not a page: it may bring the rollup up to date
        try:
            report = build_quarterly_report(
                conn,
                facility_id=None if args.city else args.facility,
                year=args.year,
                quarter=args.quarter,
                source="raw" if args.raw else "rollup",
            )
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.format == "xlsx":
        if args.out is None:
            print("error: --out is needed for xlsx", file=sys.stderr)
            return 2
        args.out.write_bytes(to_xlsx(report))
    else:
        text = to_csv(report) if args.format == "csv" else report.model_dump_json(indent=2)
        if args.out is None:
            sys.stdout.write(text.lstrip("\ufeff"))
        else:
            args.out.write_text(text, encoding="utf-8")
    if args.out is not None:
        print(f"wrote {args.out} ({len(report.rows)} rows)", file=sys.stderr)
    return 0


def _tick(bar: tqdm[Any], n: int) -> None:
    """Advance the progress bar."""
    bar.update(n)


def _import(args: argparse.Namespace) -> int:
    """Validate and import a list; prints the validation report, exit 1 if anything is bad."""
    import psycopg
    from tqdm import tqdm

    from broker.config import key_bytes
    from ingest_api.registry.importer import import_file, read_table

    if not args.file.exists():
        print(f"error: no such file {args.file}", file=sys.stderr)
        return 2
    settings = _settings()
    if args.kind == "members" and settings.credential_key is None:
        print("error: set WELFARE_CREDENTIAL_KEY to hash card identifiers", file=sys.stderr)
        return 2
    # Programs hold no card identifiers: their import never hashes anything.
    key = key_bytes(settings.credential_key) if settings.credential_key else b"\0" * 16
    try:
        rows = len(read_table(args.file).rows)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with (
        psycopg.connect(settings.database_url) as conn,
        tqdm(total=2 * rows, unit="row", desc=args.file.name, file=sys.stderr) as bar,
    ):
        result = import_file(
            conn,
            kind=args.kind,
            path=args.file,
            facility_id=args.facility,
            key=key,
            actor=args.actor,
            dry_run=args.dry_run,
            progress=lambda n: _tick(bar, n),
        )
    for issue in result.issues:
        where = issue.cell or f"row {issue.row}"
        value = "" if issue.value is None else f" {issue.value!r}"
        print(f"{where} [{issue.column or '-'}]{value}: {issue.message}")
    summary = result.model_dump(include={"ok", "rows", "inserted", "updated", "unchanged"})
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if result.ok else 1
