"""`welfare recovery backup | check | restore | replay`: the center survives losing its database.

Continuous backup is PostgreSQL's own: WAL archiving (`archive_command`, see
docs/reliability.md) plus a base backup by `pg_basebackup` every night. A backup target that is
missing, not writable or too full fails the command loudly (exit 2, the reason on stderr) and
opens the operators' `backup_failed` alert; the next success resolves it. `restore` builds a
new data directory from a base backup and the archive, to a point in time; `replay` then asks
every kiosk to resend what it had confirmed since that time (over the signed configuration).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_LOG = logging.getLogger(__name__)
# A base backup needs room for the whole cluster; this much more is left for the WAL archive.
HEADROOM = 1.5
# The recovery.conf lines a restore writes (PostgreSQL 12+: postgresql.auto.conf + a signal).
RESTORE_SETTINGS = """
# welfare recovery restore ({at}): replay the archived WAL up to the target, then promote.
restore_command = 'cp "{archive}/%f" "%p"'
recovery_target_time = '{target}'
recovery_target_action = 'promote'
"""


class BackupError(RuntimeError):
    """The backup could not be made (the message says why, for the operators)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `recovery` command group."""
    recovery = sub.add_parser("recovery", help="back up, restore, and replay from the kiosks")
    cmds = recovery.add_subparsers(dest="recovery_command", required=True)
    backup = cmds.add_parser("backup", help="a base backup (pg_basebackup) into TARGET")
    backup.add_argument("--target", type=Path, required=True, help="the backup directory")
    backup.set_defaults(handler=_backup)
    check = cmds.add_parser("check", help="is the WAL archive working and its target usable")
    check.add_argument("--archive", type=Path, required=True, help="the WAL archive directory")
    check.set_defaults(handler=_check)
    restore = cmds.add_parser("restore", help="a new data directory from a backup, to a time")
    restore.add_argument("--base", type=Path, required=True, help="a base-… backup directory")
    restore.add_argument("--archive", type=Path, required=True, help="the WAL archive")
    restore.add_argument("--pgdata", type=Path, required=True, help="the new data directory")
    restore.add_argument("--to", type=datetime.fromisoformat, required=True, help="ISO time")
    restore.add_argument("--owner", help="the server's account (default: postgres when root)")
    restore.set_defaults(handler=_restore)
    replay = cmds.add_parser("replay", help="ask the kiosks to resend what they confirmed")
    replay.add_argument("--since", type=datetime.fromisoformat, required=True, help="ISO time")
    replay.add_argument("--reason", required=True, help="why (audited)")
    replay.add_argument("--facility", help="only this facility's kiosks (default: all)")
    replay.add_argument("--keep-days", type=float, default=14.0, help="the kiosks' keep window")
    replay.set_defaults(handler=_replay)


# -- backup ----------------------------------------------------------------------------


def target_problem(target: Path, *, need_bytes: int) -> str | None:
    """Why a backup cannot go to `target` (missing, not writable, too full), or None."""
    if not target.is_dir():
        return f"백업 대상 {target}이(가) 없습니다"
    if not os.access(target, os.W_OK | os.X_OK):
        return f"백업 대상 {target}에 쓸 수 없습니다"
    free = shutil.disk_usage(target).free
    if free < need_bytes:
        return (
            f"백업 대상 {target}의 여유 공간 {free / 2**20:,.0f} MB < "
            f"필요 {need_bytes / 2**20:,.0f} MB"
        )
    return None


@dataclass(frozen=True)
class BaseBackup:
    """One base backup made."""

    path: Path
    started_at: datetime
    finished_at: datetime
    size_bytes: int


def base_backup(url: str, target: Path, *, bindir: Path | None = None) -> BaseBackup:
    """pg_basebackup of the whole cluster into a new `target/base-<UTC time>`; or BackupError."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()
    size = int(row[0]) if row and row[0] is not None else 0
    problem = target_problem(target, need_bytes=int(size * HEADROOM))
    if problem:
        raise BackupError(problem)
    started = datetime.now(UTC)
    dest = target / f"base-{started:%Y%m%dT%H%M%S%fZ}"
    binary = str(bindir / "pg_basebackup") if bindir else _server_binary("pg_basebackup")
    result = subprocess.run(
        [binary, "-d", url, "-D", str(dest), "-Fp", "-X", "stream", "-c", "fast", "-w"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)  # a partial backup must not be mistaken for one
        raise BackupError(f"pg_basebackup 실패: {result.stderr.strip()[-400:]}")
    finished = datetime.now(UTC)
    (dest / "welfare-backup.json").write_text(
        json.dumps({"started_at": started.isoformat(), "finished_at": finished.isoformat()})
    )
    return BaseBackup(dest, started, finished, size)


def _server_binary(name: str) -> str:
    """A PostgreSQL client or server binary (PATH, else the newest installed)."""
    found = shutil.which(name)
    if found:
        return found
    from welfare.services.postgres import find_bindir

    return str(find_bindir() / name)


def _alert(url: str, problem: str | None) -> None:
    """Open (a problem) or resolve (None) the operators' backup alert; never hides `problem`."""
    import psycopg

    from ingest_api.fleet.backup import raise_backup_alert, resolve_backup_alert

    now = datetime.now(UTC)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            if problem:
                raise_backup_alert(conn, detail=problem, now=now)
            else:
                resolve_backup_alert(conn, now=now)
    except psycopg.Error as exc:  # the database itself may be what failed
        print(f"warning: the backup alert could not be recorded: {exc}", file=sys.stderr)


def _backup(args: argparse.Namespace) -> int:
    """`welfare recovery backup --target DIR`."""
    from ingest_api.cli import _settings

    url = _settings().owner_url
    try:
        made = base_backup(url, args.target)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        _alert(url, str(exc))
        return 2
    _alert(url, None)
    print(f"base backup {made.path} ({made.size_bytes / 2**20:,.0f} MB of databases)")
    return 0


def _check(args: argparse.Namespace) -> int:
    """`welfare recovery check --archive DIR`: the archive target and the archiver's status."""
    import psycopg

    from ingest_api.cli import _settings
    from ingest_api.fleet.backup import archiver_problem

    url = _settings().owner_url
    with psycopg.connect(url, autocommit=True) as conn:
        # One WAL segment (16 MB) must always fit, or the archiver stops and the disk fills.
        problem = target_problem(args.archive, need_bytes=64 * 2**20) or archiver_problem(conn)
    _alert(url, problem)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print("WAL archive: ok")
    return 0


# -- restore ---------------------------------------------------------------------------


def prepare_restore(
    base: Path, archive: Path, pgdata: Path, *, to: datetime, owner: str | None = None
) -> None:
    """A new data directory from a base backup that replays the archive up to `to`.

    Start the server on it (pg_ctl start): it replays, stops at `to` and promotes itself.
    """
    if not (base / "PG_VERSION").exists():
        raise BackupError(f"{base} is not a base backup (no PG_VERSION)")
    if pgdata.exists() and any(pgdata.iterdir()):
        raise BackupError(f"{pgdata} is not empty: restore into a new directory")
    if to.tzinfo is None:
        raise BackupError("--to needs a time zone (e.g. 2026-11-20T12:30:00+09:00)")
    shutil.copytree(base, pgdata, dirs_exist_ok=True)
    (pgdata / "welfare-backup.json").unlink(missing_ok=True)
    for stale in ("postmaster.pid", "postmaster.opts"):
        (pgdata / stale).unlink(missing_ok=True)
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            RESTORE_SETTINGS.format(
                at=datetime.now(UTC).isoformat(), archive=archive, target=to.isoformat()
            )
        )
    (pgdata / "recovery.signal").touch()
    account = owner or ("postgres" if os.geteuid() == 0 else None)
    if account:
        user = pwd.getpwnam(account)
        for path in [pgdata, *pgdata.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
    pgdata.chmod(0o700)


def _restore(args: argparse.Namespace) -> int:
    """`welfare recovery restore`."""
    try:
        prepare_restore(args.base, args.archive, args.pgdata, to=args.to, owner=args.owner)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.pgdata} is ready: start PostgreSQL on it (it replays the archive to "
        f"{args.to.isoformat()} and promotes), then `welfare ingest migrate` and "
        f"`welfare recovery replay --since {args.to.isoformat()} --reason …`"
    )
    return 0


def _replay(args: argparse.Namespace) -> int:
    """`welfare recovery replay`: audited as the shell's user."""
    import psycopg

    from ingest_api.cli import _cli_actor, _settings
    from ingest_api.registry.sync import request_replay

    if args.since.tzinfo is None:
        print("error: --since needs a time zone", file=sys.stderr)
        return 2
    with psycopg.connect(_settings().owner_url) as conn:
        try:
            replay_id = request_replay(
                conn,
                since=args.since,
                reason=args.reason,
                actor=_cli_actor(),
                now=datetime.now(UTC),
                keep_days=args.keep_days,
                facility_id=args.facility,
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"replay {replay_id}: the kiosks resend what they confirmed since {args.since}")
    return 0
