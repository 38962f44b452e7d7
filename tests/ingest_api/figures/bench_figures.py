"""Benchmark of the figures (not a test): a city's year of events, refresh and report timings.

Run: .venv/bin/python -m tests.ingest_api.figures.bench_figures --members 1000
It starts a throw-away PostgreSQL (TimescaleDB when installed, unless WELFARE_TIMESCALEDB=off),
loads a generated year of the five centers, and prints how long each step takes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from ingest_api.db.migrate import migrate
from ingest_api.figures import rollup
from ingest_api.figures.aggregator import Period, compute
from ingest_api.figures.reports import build_quarterly_report
from ingest_api.figures.sample import build_city, load_events, load_registry
from welfare.services.postgres import PostgresServer

KEY = b"bench-credential-key-0123456789ab"


def _timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median seconds of `repeat` runs, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    """Load, refresh, report; print the figures of the run as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000, help="members per center")
    parser.add_argument("--year", type=int, default=2026)
    args = parser.parse_args()
    out: dict[str, Any] = {"members_per_center": args.members}
    with tempfile.TemporaryDirectory() as tmp:
        server = PostgresServer(Path(tmp), fsync=False)
        server.start()
        try:
            url = server.create_database("bench")
            migrate(url)
            out["timescaledb"] = bool(server.timescaledb)
            started = time.perf_counter()
            city = build_city(year=args.year, members_per_center=args.members)
            out["generate_s"] = round(time.perf_counter() - started, 2)
            out["events"] = len(city.events)
            with psycopg.connect(url) as conn:
                started = time.perf_counter()
                load_registry(conn, sample=city, key=KEY)
                conn.commit()
                out["registry_s"] = round(time.perf_counter() - started, 2)
                # The year arrives in monthly batches, each followed by a refresh.
                refreshes = []
                load_s = 0.0
                for month in range(1, 13):
                    batch = [e for e in city.events if e[4].month == month]
                    started = time.perf_counter()
                    load_events(conn, events=batch)
                    conn.commit()
                    load_s += time.perf_counter() - started
                    refreshes.append(rollup.refresh(conn).seconds)
                out["load_s"] = round(load_s, 2)
                out["refresh_per_month_batch_s"] = round(statistics.median(refreshes), 3)
                out["refresh_nothing_new_s"] = round(_timed(lambda: rollup.refresh(conn))[0], 4)
                year = Period("year", date(args.year, 1, 1), date(args.year, 12, 1))
                for source in ("rollup", "raw"):
                    secs, _ = _timed(
                        lambda s=source: compute(  # type: ignore[misc]
                            conn, periods=[year], dims=["facility", "gender"], source=s
                        ),
                        repeat=3,
                    )
                    out[f"year_by_facility_gender_{source}_s"] = round(secs, 3)
                secs, _ = _timed(
                    lambda: build_quarterly_report(
                        conn, facility_id="D", year=args.year, quarter=4, refresh=False
                    ),
                    repeat=3,
                )
                out["quarterly_report_D_s"] = round(secs, 3)
                secs, _ = _timed(
                    lambda: build_quarterly_report(
                        conn, facility_id=None, year=args.year, quarter=4, refresh=False
                    ),
                    repeat=3,
                )
                out["quarterly_report_city_s"] = round(secs, 3)
                size = conn.execute("SELECT count(*) FROM figures_member_month").fetchone()
                out["rollup_month_rows"] = size[0] if size else None
        finally:
            server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
