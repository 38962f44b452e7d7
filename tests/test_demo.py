"""`welfare demo` end to end: its printed figures equal a direct count over the stored events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg


def _demo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the demo command as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "welfare.cli", "demo", "--pace", "0", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_demo_figures_equal_a_direct_sql_count(tmp_path: Path, database_url: str) -> None:
    """Against a given DATABASE_URL, so the test can count the rows itself afterwards."""
    out = tmp_path / "figures.json"
    env = dict(os.environ, DATABASE_URL=database_url)
    result = _demo("--day", "2026-11-20", "--json", str(out), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = json.loads(out.read_text())["figures"]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT facility_id, program_id, count(DISTINCT member_ref), count(*) "
            "FROM attendance_events WHERE outcome = 'accepted' AND service_date = '2026-11-20' "
            "GROUP BY facility_id, program_id"
        ).fetchall()
        totals = conn.execute(
            "SELECT facility_id, count(DISTINCT member_ref), count(*) FROM attendance_events "
            "WHERE outcome = 'accepted' GROUP BY facility_id"
        ).fetchall()
        refused = conn.execute(
            "SELECT count(*) FROM attendance_events WHERE outcome <> 'accepted'"
        ).fetchone()
    per_program = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    per_center = {r[0]: (r[1], r[2]) for r in totals}
    assert {f["facility_id"] for f in printed} == {"A", "B", "C", "D", "E"}
    for f in printed:
        expected = (
            per_center[f["facility_id"]]
            if f["program_id"] is None
            else per_program[(f["facility_id"], f["program_id"])]
        )
        assert (f["unique_persons"], f["person_visits"]) == expected
    assert sum(v for _, v in per_center.values()) > 1000  # a realistic day, not a toy
    assert refused is not None
    assert refused[0] > 0  # unknown cards and repeats were recorded too, but not counted
    for center, (unique, visits) in per_center.items():
        assert f"{unique}" in result.stdout, center
        assert f"{visits}" in result.stdout, center


def test_demo_on_embedded_defaults_starts_and_stops_its_own_servers() -> None:
    """No DATABASE_URL, no broker: the bundled PostgreSQL and own Mosquitto, then nothing left."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = _demo(env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "EQUAL a direct SQL count" in result.stdout
    assert "stopped: nothing left running" in result.stdout
    leftovers = subprocess.run(
        ["pgrep", "-f", "welfare-demo-"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""
