"""The restore drill: the center loses its database and gets every figure back.

A cluster of its own with WAL archiving, the real center (API, consumer, fleet sync) and a
real kiosk on real Mosquitto. Events are stored, a base backup is taken
(`welfare recovery backup`'s code), more are stored, the time T is noted, more still are
stored and confirmed to the kiosk; then the cluster is destroyed (stopped hard, its data
directory deleted), restored from the backup and the archive to T (`welfare recovery
restore`'s code) — the events after T are gone — and a replay since T is requested
(`welfare recovery replay`'s code). The kiosk resends what it confirmed since T, the unique
event id keeps what the restore already holds once, and the figures equal those before the
loss, counted independently (tests/helpers.count_by_rules).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from broker.auth import DeviceIdentity
from ingest_api.core.config import Settings
from ingest_api.core.migrate import migrate
from ingest_api.main import create_app
from ingest_api.registry import devices, schedules, store
from ingest_api.registry.models import DeviceIn, Facility, ScheduleIn
from tests.conftest import BrokerFactory
from tests.fleet.conftest import ALL_DAY, MASTER, MEAL, Fleet, member
from tests.fleet.test_sync import holds_latest, until
from tests.helpers import count_by_rules
from tests.security_helpers import CIPHER, DATA_KEY
from welfare.recovery import BackupError, base_backup, prepare_restore
from welfare.services.postgres import PostgresServer

CARDS = [f"04D{n:05X}" for n in range(30)]


def _owned_by_server(path: Path) -> Path:
    """A directory the server's account (postgres when we are root) may write."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


@pytest.fixture
def archived(tmp_path: Path) -> Iterator[tuple[PostgresServer, Path]]:
    """A cluster whose WAL is archived (as docs/reliability.md configures production)."""
    archive = _owned_by_server(tmp_path / "wal-archive")
    server = PostgresServer(
        tmp_path / "pg",
        extra_settings=(
            "wal_level = replica",
            "archive_mode = on",
            f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'",
        ),
    )
    server.start()
    try:
        yield server, archive
    finally:
        server.stop("immediate")


def _stored(url: str) -> list[str]:
    """Every stored event id (duplicates would show twice)."""
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT event_id FROM attendance_events")]


def _archive_everything(url: str, archive: Path) -> None:
    """Close the current WAL segment and wait until the archiver has copied it."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    deadline = time.monotonic() + 60
    while not (archive / str(row[0])).exists():
        assert time.monotonic() < deadline, f"WAL {row[0]} was never archived"
        time.sleep(0.2)


async def test_restore_to_a_point_in_time_then_replay_gives_the_same_figures(
    archived: tuple[PostgresServer, Path], broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    """Back up, write, note T, write, destroy, restore to T, replay since T: figures equal."""
    server, archive = archived
    url = server.create_database("center")
    migrate(url)
    broker = broker_factory([DeviceIdentity("B", "k1")])
    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="B", name="한마음종합사회복지관"))
        store.upsert_program(conn, program=MEAL)
        schedules.set_schedule(conn, program_id="B-MEAL", schedule=ScheduleIn(sessions=ALL_DAY))
        for n, card in enumerate(CARDS):
            store.upsert_member(
                conn, member=member(f"B-M{n}", card), key=MASTER.encode(), cipher=CIPHER
            )
        devices.register_device(
            conn, facility_id="B", device_id="k1", device=DeviceIn(program_ids=["B-MEAL"])
        )
    settings = Settings(
        database_url=url,
        mqtt=broker.mqtt_settings(),
        credential_key=MASTER,
        data_key=DATA_KEY,
        refresh_interval_s=0,
        fleet_poll_s=0.2,
    )
    backups = tmp_path / "backups"
    backups.mkdir()
    with TestClient(create_app(settings)) as client:
        fleet = Fleet(url, broker, client, tmp_path, manager={}, operator={}, admin={})
        async with fleet.kiosk() as kiosk:
            await until(lambda: holds_latest(fleet, kiosk), within=120, what="the first roster")

            async def tap_and_confirm(cards: list[str]) -> None:
                """Each card once; until the center confirmed every event."""
                for card in cards:
                    await kiosk.tap(card)

                async def drained() -> bool:
                    return (await kiosk.store.stats()).pending == 0

                await until(drained, within=120, what="the center's confirmations")

            await tap_and_confirm(CARDS[:10])
            made = await asyncio.to_thread(base_backup, url, backups)
            await tap_and_confirm(CARDS[10:20])
            await asyncio.sleep(1.1)
            restore_to = datetime.now(UTC)  # T: the point in time the restore goes back to
            await asyncio.sleep(1.1)
            await tap_and_confirm(CARDS[20:])
            figures_before = count_by_rules(url)
            stored_before = sorted(_stored(url))
            await asyncio.to_thread(_archive_everything, url, archive)

            # The loss: the cluster dies and its data directory is gone.
            server.stop("immediate")
            shutil.rmtree(server.pgdata)
            prepare_restore(made.path, archive, server.pgdata, to=restore_to)
            await asyncio.to_thread(server.start)
            with psycopg.connect(url) as conn:
                while conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            restored = _stored(url)
            # The restore holds what was written up to T: the first two thirds, not the last.
            assert 0 < len(restored) < len(stored_before)
            assert count_by_rules(url) != figures_before

            from ingest_api.registry.sync import request_replay

            with psycopg.connect(url) as conn:
                request_replay(
                    conn,
                    since=restore_to,
                    reason="복구 훈련",
                    actor="test:drill",
                    now=datetime.now(UTC),
                    keep_days=14,
                )

            async def whole_again() -> bool:
                return len(await asyncio.to_thread(_stored, url)) >= len(stored_before)

            await until(whole_again, within=180, what="the replay to fill the gap")
            await asyncio.sleep(2)  # any late duplicate would show now
    after = _stored(url)
    assert sorted(after) == stored_before  # exactly the missing rows: none lost, none twice
    assert count_by_rules(url) == figures_before
    with psycopg.connect(url) as conn:
        audited = conn.execute(
            "SELECT actor, action FROM audit_log WHERE subject LIKE 'replay:%%'"
        ).fetchall()
    assert ("test:drill", "change") in audited
    totals = {key: value for key, value in figures_before.items() if key[1] is None}
    print(
        f"restore drill: events before the loss {len(stored_before)}, restored to T "
        f"{len(restored)}, after the replay {len(after)}; (unique persons, person-visits) "
        f"before {totals}, after { ({k: count_by_rules(url)[k] for k in totals}) }"
    )


def test_a_missing_or_full_backup_target_fails_loudly_and_raises_the_alert(
    tmp_path: Path, database_url: str
) -> None:
    """No target: BackupError with the reason; the command exits 2 and opens the alert."""
    import subprocess
    import sys

    with pytest.raises(BackupError, match="없습니다"):
        base_backup(database_url, tmp_path / "missing")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELFARE_")}
    env["DATABASE_URL"] = database_url
    run = subprocess.run(
        [sys.executable, "-m", "welfare.cli", "recovery", "backup", "--target", "/nonexistent"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "백업 대상 /nonexistent" in run.stderr
    with psycopg.connect(database_url) as conn:
        alerts: list[Any] = conn.execute(
            "SELECT facility_id, device_id, detail FROM device_alerts "
            "WHERE kind = 'backup_failed' AND resolved_at IS NULL"
        ).fetchall()
    assert len(alerts) == 1
    assert alerts[0][:2] == ("center", "backup")
    # Too full: a target with less room than the cluster needs is refused the same way.
    from welfare.recovery import target_problem

    target = tmp_path / "small"
    target.mkdir()
    assert "여유 공간" in (target_problem(target, need_bytes=2**62) or "")


def test_a_failing_wal_archive_raises_the_alert_and_its_recovery_resolves_it(
    archived: tuple[PostgresServer, Path],
) -> None:
    """`welfare recovery check`: ok; the archive's directory gone: exit 2 and the alert; back:
    ok again and the alert resolved."""
    import subprocess
    import sys

    server, archive = archived
    url = server.create_database("checked")
    migrate(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELFARE_")}
    env["DATABASE_URL"] = url

    def check() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "welfare.cli", "recovery", "check", "--archive"]
        return subprocess.run(
            [*command, str(archive)], env=env, capture_output=True, text=True, check=False
        )

    def open_alerts() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM device_alerts WHERE kind = 'backup_failed' "
                "AND resolved_at IS NULL"
            ).fetchone()
        return int(row[0]) if row else -1

    assert check().returncode == 0
    moved = archive.with_name("wal-archive-away")
    archive.rename(moved)  # the backup disk unmounted
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_switch_wal()")
    failed = check()
    assert failed.returncode == 2
    assert "백업 대상" in failed.stderr
    assert open_alerts() == 1
    moved.rename(archive)
    deadline = time.monotonic() + 60
    while (ok := check()).returncode != 0:  # the archiver retries the segment it could not copy
        assert time.monotonic() < deadline, ok.stderr
        time.sleep(1)
    assert open_alerts() == 0
