"""The audit log: append-only for the service, tamper-evident for everyone, kept 3 years."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import LiteralString
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest
import pyzipper
from psycopg import sql
from psycopg.types.json import Jsonb

from ingest_api.core.audit import verify_chain, write_audit
from ingest_api.core.config import SecuritySettings, Settings
from ingest_api.core.db import login_role_problem
from ingest_api.core.maintenance import run_once
from tests.ingest_api.security.conftest import World
from welfare.cli import main


def _as_app(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection working as the service does (role welfare_app)."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET ROLE welfare_app")
    return conn


def test_the_services_role_cannot_update_delete_or_truncate_audit_rows(world: World) -> None:
    """welfare_app may append through audit_append() and read; nothing else, not even on a
    month's partition directly. The owner is stopped by the trigger."""
    world.client.get("/api/v1/registry/members/B-M1", headers=world.headers["staff_b"])
    with psycopg.connect(world.url) as owner:
        (partition,) = owner.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'audit_log'::regclass"
            " AND c.relname = 'audit_log_y' || to_char(now() AT TIME ZONE 'UTC', 'YYYY\"m\"MM')"
        ).fetchone() or ("",)
    month = sql.Identifier(partition)
    refused = []
    with _as_app(world.url) as app:
        for statement in (
            sql.SQL("UPDATE audit_log SET reason = 'x'"),
            sql.SQL("DELETE FROM audit_log"),
            sql.SQL("TRUNCATE audit_log"),
            sql.SQL("UPDATE {} SET reason = 'x'").format(month),
            sql.SQL("DELETE FROM {}").format(month),
            sql.SQL(
                "INSERT INTO audit_log (audit_id, at, actor, action, subject, prev_hash,"
                " row_hash) VALUES (999, now(), 'x', 'view', 'x', repeat('0', 64),"
                " repeat('0', 64))"
            ),
            sql.SQL("UPDATE audit_chain SET last_hash = repeat('0', 64)"),
            sql.SQL("DROP TABLE audit_log"),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
            refused.append(statement)
        row = app.execute(
            "SELECT audit_append('staff.b', 'view', 'member:B-M2', NULL, '{}')"
        ).fetchone()
        assert row is not None
    with psycopg.connect(world.url, autocommit=True) as owner:
        for statement in (
            sql.SQL("UPDATE audit_log SET reason = 'x'"),
            sql.SQL("DELETE FROM audit_log"),
            sql.SQL("TRUNCATE audit_log"),
            sql.SQL("TRUNCATE {}").format(month),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(statement)
    assert len(refused) == 8
    assert verify_chain(psycopg.connect(world.url)).ok


def test_a_login_role_that_is_only_welfare_app_is_held_the_same(world: World) -> None:
    """Production: the service logs in as a role that is a member of welfare_app only."""
    with psycopg.connect(world.url, autocommit=True) as owner:
        owner.execute("DROP ROLE IF EXISTS svc_center")
        owner.execute("CREATE ROLE svc_center LOGIN IN ROLE welfare_app")
    parts = urlsplit(world.url)
    url = urlunsplit(parts._replace(netloc=parts.netloc.replace("postgres@", "svc_center@")))
    with psycopg.connect(world.url) as owner:
        assert login_role_problem(owner) == "the service logs in as a superuser"
    try:
        with psycopg.connect(url, autocommit=True) as service:
            assert service.execute("SELECT current_user").fetchone() == ("svc_center",)
            assert login_role_problem(service) is None  # `welfare ingest run` may start
            write_audit(service, actor="x", action="view", subject="member:B-M1")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                service.execute("DELETE FROM audit_log")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                service.execute("UPDATE audit_log SET actor = 'someone else'")
    finally:
        with psycopg.connect(world.url, autocommit=True) as owner:
            owner.execute("DROP OWNED BY svc_center")
            owner.execute("DROP ROLE svc_center")


def test_an_edited_or_removed_row_fails_welfare_audit_verify(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone with the server's superuser rights bypasses the trigger and edits a row: the
    chain check names the row. Removing one, or the last one, is found too."""
    for ref in ("B-M1", "B-M2", "B-M1"):
        world.client.get(f"/api/v1/registry/members/{ref}", headers=world.headers["manager_b"])
    monkeypatch.setenv("DATABASE_URL", world.url)
    assert main(["audit", "verify"]) == 0
    assert "audit chain ok" in capsys.readouterr().out

    def tamper(statement: LiteralString, audit_id: int) -> None:
        with psycopg.connect(world.url, autocommit=True) as su:
            su.execute("SET session_replication_role = replica")  # triggers off (superuser)
            su.execute(statement, (audit_id,))

    with psycopg.connect(world.url) as conn:
        views = [
            r[0]
            for r in conn.execute(
                "SELECT audit_id FROM audit_log WHERE action = 'view' ORDER BY audit_id"
            )
        ]
    tamper("UPDATE audit_log SET actor = 'someone.else' WHERE audit_id = %s", views[1])
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN at row {views[1]}: row edited" in out
    tamper("UPDATE audit_log SET actor = 'manager.b' WHERE audit_id = %s", views[1])
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    tamper("DELETE FROM audit_log WHERE audit_id = %s", views[0])
    assert main(["audit", "verify"]) == 1
    assert f"BROKEN at row {views[1]}: link broken" in capsys.readouterr().out


def test_removing_the_newest_rows_is_found(world: World) -> None:
    """The chain's recorded end no longer matches the last row."""
    world.client.get("/api/v1/registry/members/B-M1", headers=world.headers["manager_b"])
    with psycopg.connect(world.url, autocommit=True) as su:
        su.execute("SET session_replication_role = replica")
        su.execute("DELETE FROM audit_log WHERE audit_id = (SELECT max(audit_id) FROM audit_log)")
    with psycopg.connect(world.url) as conn:
        report = verify_chain(conn)
    assert not report.ok
    assert report.problem == "rows removed at the end of the chain"


def test_retention_drops_only_months_older_than_three_years(database_url: str) -> None:
    """Rows 40 months old go with their month; 30 months old stay; the chain still checks."""
    with psycopg.connect(database_url) as owner:
        for months in (40, 40, 30):
            owner.execute(
                "SELECT audit_append_at(now() - make_interval(months => %s), 'old.staff',"
                " 'view', 'member:X-1', NULL, %s)",
                (months, Jsonb({"months": months})),
            )
        write_audit(owner, actor="today", action="view", subject="member:X-2")
    settings = Settings(database_url=database_url)
    with _as_app(database_url) as app:
        result = run_once(app, settings=settings, now=datetime.now(UTC))
    assert len(result.dropped) == 1
    with psycopg.connect(database_url) as conn:
        kept = conn.execute(
            "SELECT detail->>'months', actor FROM audit_log ORDER BY audit_id"
        ).fetchall()
        retention = conn.execute("SELECT rows, last_id FROM audit_retention").fetchall()
        report = verify_chain(conn)
    assert kept == [("30", "old.staff"), (None, "today")]
    assert retention == [(2, 2)]
    assert report.ok, report
    # A second run has nothing more to drop: 30 months is inside the 3 years.
    with _as_app(database_url) as app:
        assert run_once(app, settings=settings, now=datetime.now(UTC)).dropped == []


def test_abnormal_use_is_alerted(world: World) -> None:
    """One account reading more member records in an hour than allowed, and a download
    outside working hours, become alerts the auditor sees."""
    manager = world.headers["manager_b"]
    for ref in ("B-M1", "B-M2", "B-ERASE", "B-M1"):
        assert (
            world.client.get(f"/api/v1/registry/members/{ref}", headers=manager).status_code == 200
        )
    world.client.post(
        "/api/v1/registry/members/export",
        json={"reason": "야간 점검", "password": "night-file-pw-1"},
        headers=manager,
    )
    hour = datetime.now(ZoneInfo("Asia/Seoul")).hour
    # Working hours that leave out this hour, so the download above is outside them.
    start, end = (0, 23) if hour == 23 else (hour + 1, 24)
    settings = Settings(
        database_url=world.url,
        security=SecuritySettings(
            alert_member_reads_per_hour=2, work_start_hour=start, work_end_hour=end
        ),
    )
    with _as_app(world.url) as app:
        new = run_once(app, settings=settings, now=datetime.now(UTC)).new_alerts
        again = run_once(app, settings=settings, now=datetime.now(UTC)).new_alerts
    assert sorted((a.kind, a.actor) for a in new) == [
        ("bulk_reads", "manager.b"),
        ("off_hours_download", "manager.b"),
    ]
    assert next(a for a in new if a.kind == "bulk_reads").detail == {"members": 3}
    assert again == []  # recorded once
    seen = world.client.get("/api/v1/audit/alerts", headers=world.headers["auditor"]).json()
    assert {(a["kind"], a["actor"]) for a in seen} == {
        ("bulk_reads", "manager.b"),
        ("off_hours_download", "manager.b"),
    }


def test_the_auditor_exports_the_log_encrypted_with_a_reason(world: World) -> None:
    """The CSV export comes in an AES zip that opens with the auditor's password; the export
    itself is a download in the log, with its reason."""
    world.client.get("/api/v1/registry/members/B-M1", headers=world.headers["staff_b"])
    response = world.client.post(
        "/api/v1/audit/export",
        data={"reason": "분기 점검", "password": "audit-file-pw-1", "actor": "staff.b"},
        headers=world.headers["auditor"],
    )
    assert response.status_code == 200
    with pyzipper.AESZipFile(io.BytesIO(response.content)) as archive:
        (name,) = archive.namelist()
        archive.setpassword(b"audit-file-pw-1")
        rows = list(csv.reader(io.StringIO(archive.read(name).decode("utf-8-sig"))))
    assert rows[0][:5] == ["audit_id", "at", "actor", "action", "subject"]
    assert [(r[2], r[3], r[4]) for r in rows[1:]] == [("staff.b", "view", "member:B-M1")]
    with psycopg.connect(world.url) as conn:
        audited = conn.execute(
            "SELECT actor, reason FROM audit_log WHERE action = 'download'"
        ).fetchall()
    assert audited == [("auditor", "분기 점검")]
