"""`welfare demo` end to end: it prints the figures engine's numbers, and they are right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.helpers import count_by_rules


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


def test_demo_prints_the_engines_figures_which_equal_an_independent_count(
    tmp_path: Path, database_url: str
) -> None:
    """Against a given DATABASE_URL, so the test can count the stored rows itself afterwards.

    The count is this test's own (tests/helpers.count_by_rules: Python over the raw rows and
    the counting rules), not the SQL the demo or the engine runs.
    """
    out = tmp_path / "figures.json"
    env = dict(os.environ, DATABASE_URL=database_url)
    result = _demo("--day", "2026-11-20", "--json", str(out), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(out.read_text())
    printed = document["figures"]
    expected = count_by_rules(database_url)
    assert {f["facility_id"] for f in printed} == {"A", "B", "C", "D", "E"}
    assert {(f["facility_id"], f["program_id"]) for f in printed} == set(expected)
    for f in printed:
        key = (f["facility_id"], f["program_id"])
        assert (f["unique_persons"], f["person_visits"]) == expected[key], key
    # The quarterly report's November column holds the same (the database has only this day).
    for f in printed:
        if f["program_id"] is None:
            month = document["report_month"][f["facility_id"]]
            assert (month["unique_persons"], month["person_visits"]) == expected[
                (f["facility_id"], None)
            ]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM attendance_events WHERE outcome <> 'accepted'"
        ).fetchone()
    refused = row[0] if row else 0
    visits = sum(v for (_, p), (_, v) in expected.items() if p is None)
    assert visits > 1000  # a realistic day, not a toy
    assert refused > 0  # unknown cards and repeats were recorded too, but not counted
    for (center, program), (unique, visits_of) in expected.items():
        if program is None:
            assert f"{unique}" in result.stdout, center
            assert f"{visits_of}" in result.stdout, center


def test_demo_on_embedded_defaults_starts_and_stops_its_own_servers(tmp_path: Path) -> None:
    """No DATABASE_URL, no broker: the bundled PostgreSQL and own Mosquitto, then nothing left."""
    # The demo's work directory (and so every server it starts) lies under this test's own
    # TMPDIR: the leftover check below sees only this run's processes, not another demo's.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TMPDIR"] = str(tmp_path)
    result = _demo(env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "column shows the same figures" in result.stdout
    assert "stopped: nothing left running" in result.stdout
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""
