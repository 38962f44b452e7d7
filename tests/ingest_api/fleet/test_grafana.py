"""The Grafana dashboard in docs/: every panel's SQL runs on the real schema, and reads no
personal data."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingest_api.core.config import FleetSettings
from welfare.sample.fleet import seed_fleet

DASHBOARD = Path(__file__).parents[3] / "docs" / "grafana" / "fleet.json"
PERSONAL = ("members", "member_ref", "visitor", "contacts", "credential", "audit")


def _expand(sql: str, *, start: datetime, end: datetime) -> str:
    """Grafana's PostgreSQL macros, expanded as Grafana does for a 5-minute interval."""

    def group(match: re.Match[str]) -> str:
        column, interval = match[1], match[2].strip()
        seconds = {"$__interval": 300, "1h": 3600}[interval]
        return (
            f'to_timestamp(floor(extract(epoch FROM {column}) / {seconds}) * {seconds}) AS "time"'
        )

    sql = re.sub(r"\$__timeGroupAlias\((\w+),\s*([^)]+)\)", group, sql)
    return re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'",
        sql,
    )


def test_every_panel_runs_on_the_schema_and_shows_the_sample_day(database_url: str) -> None:
    """Each query is valid here (plain PostgreSQL) and every panel finds the day's data."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "smart-welfare-fleet"
    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["grafana-postgresql-datasource"]
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        seed_fleet(conn, now=now, rules=FleetSettings())
        conn.execute(
            "INSERT INTO dead_letters (received_at, topic, reason, detail, payload) VALUES "
            "(%s, 'welfare/v1/B/meal-1/health', 'topic_mismatch', 'health of B/meal-2', '{}')",
            (now - timedelta(hours=1),),
        )
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${DS_WELFARE}", panel["title"]
            for target in panel["targets"]:
                sql = target["rawSql"]
                assert not any(word in sql for word in PERSONAL), panel["title"]
                expanded = _expand(sql, start=now - timedelta(hours=24), end=now)
                assert "$__" not in expanded, panel["title"]
                try:
                    rows = conn.execute(expanded.encode()).fetchall()
                except psycopg.Error as exc:
                    pytest.fail(f"panel {panel['title']!r}: {exc}")
                assert rows, panel["title"]
                if target["format"] == "time_series":
                    assert {type(r[0]) for r in rows} == {datetime}, panel["title"]
                    assert [r[0] for r in rows] == sorted(r[0] for r in rows), panel["title"]
