"""The central service's commands: `welfare ingest | report | import | user | token | audit | keys`.

Commands that touch personal data act as a named user and obey the same rules as the pages:
`welfare report` and `welfare import` sign in (password, and the second factor where the
role has one), check the account's permission and center, audit, and a report file is always
encrypted with a password the user types. Account and token administration is done by whoever
runs the command on the server (audited as `cli:<login>`).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest_api.core.config import Settings
from ingest_api.core.security import Permission, Role

if TYPE_CHECKING:
    import psycopg
    from tqdm import tqdm

    from ingest_api.core.fieldcrypto import FieldCipher
    from ingest_api.core.security import Principal
    from ingest_api.registry.face import Describer

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
    report.add_argument(
        "--out", type=Path, required=True, help="the encrypted file (.xlsx, or a .zip)"
    )
    report.add_argument("--raw", action="store_true", help="count from the raw rows (slow)")
    _as_user(report)
    report.add_argument("--reason", required=True, help="why the report is downloaded (audited)")
    report.set_defaults(handler=_report)

    imp = sub.add_parser("import", help="import a members or programs list (.xlsx or .csv)")
    imp.add_argument("kind", choices=("members", "programs"))
    imp.add_argument("file", type=Path)
    imp.add_argument("--facility", required=True, help="facility id the list belongs to")
    _as_user(imp)
    imp.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    imp.set_defaults(handler=_import)
    _register_admin(sub)


def _as_user(parser: argparse.ArgumentParser) -> None:
    """--user: the account the command acts as (asks for its password and second factor)."""
    parser.add_argument(
        "--user", required=True, help="your account; the command asks for its password"
    )


def _settings() -> Settings:
    """Settings from the environment; a missing or bad one ends the command with its reason."""
    try:
        return Settings()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _cipher(settings: Settings) -> FieldCipher | None:
    """The field cipher of WELFARE_DATA_KEY (and the previous keys), if set."""
    from ingest_api.core.fieldcrypto import FieldCipher

    if settings.data_key is None:
        return None
    return FieldCipher.from_secrets(settings.data_key, settings.data_key_previous)


@contextmanager
def _connect(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the service's role (welfare_app): no command can alter the audit log."""
    import psycopg
    from psycopg import sql

    from ingest_api.core.security import APP_DB_ROLE

    with psycopg.connect(settings.database_url) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_DB_ROLE)))
        conn.commit()
        yield conn


def _migrate(_args: argparse.Namespace) -> int:
    """`welfare ingest migrate`: as the schema owner (WELFARE_MIGRATION_URL, else DATABASE_URL)."""
    from ingest_api.core.migrate import migrate

    settings = _settings()
    try:
        applied = migrate(settings.owner_url, cipher=_cipher(settings))
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"applied {len(applied)} migration(s): {applied}")
    return 0


def _sign_in(conn: psycopg.Connection[Any], settings: Settings, username: str) -> Principal:
    """Sign in at the command line as on the page (lockout, second factor, audit); or exit."""
    from ingest_api.auth import signin

    now = datetime.now(UTC)
    password = getpass.getpass(f"{username}의 비밀번호: ")
    outcome = signin.check_password(
        conn,
        typed_name=username,
        password=password,
        now=now,
        policy=settings.security,
        channel="cli",
    )
    if outcome.ok and outcome.second_factor_needed and outcome.username:
        code = input("인증 앱의 6자리 코드: ")
        outcome = signin.check_second_factor(
            conn,
            username=outcome.username,
            code=code,
            now=now,
            policy=settings.security,
            cipher=_cipher(settings),
            channel="cli",
        )
    conn.commit()  # failures are counted and audited even though the command stops
    if not outcome.ok or outcome.principal is None:
        raise SystemExit(f"error: {outcome.message}")
    if outcome.principal.must_change_password:
        raise SystemExit("error: 임시 비밀번호입니다. 먼저 로그인 화면에서 비밀번호를 바꾸세요.")
    return dataclasses.replace(outcome.principal, kind="cli")


def _allowed(principal: Principal, permission: Permission, facility_id: str | None) -> None:
    """Exit unless the principal may do this for that facility (None: the city)."""
    if not principal.can(permission) or not principal.sees_facility(facility_id):
        raise SystemExit(f"error: {principal.name} may not do this for {facility_id or 'the city'}")


def _file_password() -> str:
    """The password a downloaded file will open with, typed twice."""
    from ingest_api.core.downloads import MIN_FILE_PASSWORD

    first = getpass.getpass(f"파일 비밀번호 ({MIN_FILE_PASSWORD}자 이상): ")
    if len(first) < MIN_FILE_PASSWORD:
        raise SystemExit(f"error: the file password needs {MIN_FILE_PASSWORD}+ characters")
    if getpass.getpass("파일 비밀번호 확인: ") != first:
        raise SystemExit("error: the two file passwords differ")
    return first


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
    return serve(args)


def serve(args: argparse.Namespace, *, face_describer: Describer | None = None) -> int:
    """Serve the API (and the consumer); `welfare face serve` adds the desk's describer."""
    import uvicorn

    from ingest_api.core.db import login_role_problem
    from ingest_api.main import create_app

    settings = _settings()
    if settings.production:
        import psycopg

        with psycopg.connect(settings.database_url) as conn:
            problem = login_role_problem(conn)
        if problem:
            raise SystemExit(f"error: {problem} (docs/security.md, database roles)")
    app = create_app(settings, consume=not args.no_consume, face_describer=face_describer)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def _report(args: argparse.Namespace) -> int:
    """Write the quarterly report of a facility or the city: as a named user, encrypted."""
    from ingest_api.core.audit import write_audit
    from ingest_api.core.downloads import seal
    from ingest_api.figures import rollup
    from ingest_api.figures.export import to_csv, to_xlsx
    from ingest_api.figures.reports import build_quarterly_report

    settings = _settings()
    facility_id = None if args.city else args.facility
    with _connect(settings) as conn:
        principal = _sign_in(conn, settings, args.user)
        _allowed(principal, Permission.REPORT_DOWNLOAD, facility_id)
        password = _file_password()
        if not args.raw:
            import psycopg

            # A command, not a page: it may bring the rollup up to date (with the login role:
            # on TimescaleDB only the aggregates' owner refreshes them).
            with psycopg.connect(settings.database_url) as owner_conn:
                rollup.refresh(owner_conn)
        try:
            report = build_quarterly_report(
                conn,
                facility_id=facility_id,
                year=args.year,
                quarter=args.quarter,
                source="raw" if args.raw else "rollup",
            )
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        name = f"report_{facility_id or 'city'}_{args.year}Q{args.quarter}.{args.format}"
        if args.format == "xlsx":
            content = to_xlsx(report)
        elif args.format == "csv":
            content = to_csv(report).encode()
        else:
            content = report.model_dump_json(indent=2).encode()
        download = seal(name, content, password=password)
        write_audit(
            conn,
            actor=principal.actor,
            action="download",
            subject=f"report:{facility_id or 'city'}:{args.year}-Q{args.quarter}",
            reason=args.reason,
            detail={"format": args.format, "channel": "cli"},
        )
        args.out.write_bytes(download.content)
    print(
        f"wrote {args.out} ({download.filename}, {len(report.rows)} rows, encrypted)",
        file=sys.stderr,
    )
    return 0


def _tick(bar: tqdm[Any], n: int) -> None:
    """Advance the progress bar."""
    bar.update(n)


def _import(args: argparse.Namespace) -> int:
    """Validate and import a list; prints the validation report, exit 1 if anything is bad."""
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
    with _connect(settings) as conn:
        principal = _sign_in(conn, settings, args.user)
        _allowed(principal, Permission.MEMBERS_IMPORT, args.facility)
        if args.kind == "programs":
            _allowed(principal, Permission.REGISTRY_MANAGE, args.facility)
        with tqdm(total=2 * rows, unit="row", desc=args.file.name, file=sys.stderr) as bar:
            result = import_file(
                conn,
                kind=args.kind,
                path=args.file,
                facility_id=args.facility,
                key=key,
                cipher=_cipher(settings),
                actor=principal.actor,
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


def _cli_actor() -> str:
    """Who administers from the server's shell (audited)."""
    return f"cli:{os.environ.get('SUDO_USER') or os.environ.get('USER') or getpass.getuser()}"


def _register_admin(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`welfare user | token | audit | keys`."""
    user = sub.add_parser("user", help="accounts: add, reset, disable, role, list")
    ucmd = user.add_subparsers(dest="user_command", required=True)
    add = ucmd.add_parser("add", help="create an account (prints a temporary password once)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role if r != Role.SERVICE])
    add.add_argument("--facility", help="the center of a manager or staff member")
    add.add_argument("--program", action="append", default=[], help="staff: a program (repeat)")
    add.add_argument("--name", default="", help="display name")
    add.set_defaults(handler=_user_add)
    reset = ucmd.add_parser("reset", help="new temporary password; ends sessions and lockout")
    reset.add_argument("username")
    reset.add_argument("--second-factor", action="store_true", help="also a new TOTP secret")
    reset.set_defaults(handler=_user_reset)
    disable = ucmd.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(handler=_user_disable)
    role = ucmd.add_parser("role", help="change role, center, programs or grants (audited)")
    role.add_argument("username")
    role.add_argument("--role", required=True, choices=[r.value for r in Role if r != Role.SERVICE])
    role.add_argument("--facility")
    role.add_argument("--program", action="append", default=[])
    role.add_argument(
        "--grant", action="append", default=[], choices=["members.read", "members.sensitive"]
    )
    role.set_defaults(handler=_user_role)
    ucmd.add_parser("list", help="every account").set_defaults(handler=_user_list)

    token = sub.add_parser("token", help="service tokens for machines: add, revoke, list")
    tcmd = token.add_subparsers(dest="token_command", required=True)
    tadd = tcmd.add_parser("add", help="issue a token (printed once)")
    tadd.add_argument("name")
    tadd.add_argument("--scope", action="append", required=True, help="a permission (repeat)")
    tadd.add_argument("--facility", help="bind the token to one center")
    tadd.add_argument("--days", type=int, help="expires after this many days")
    tadd.set_defaults(handler=_token_add)
    trev = tcmd.add_parser("revoke", help="revoke a token by name")
    trev.add_argument("name")
    trev.set_defaults(handler=_token_revoke)
    tcmd.add_parser("list", help="every token").set_defaults(handler=_token_list)

    aud = sub.add_parser("audit", help="the audit log: verify the chain, maintenance, alerts")
    acmd = aud.add_subparsers(dest="audit_command", required=True)
    acmd.add_parser(
        "verify", help="recompute the hash chain (exit 1 if a row was altered)"
    ).set_defaults(handler=_audit_verify)
    acmd.add_parser("maintain", help="partitions ahead, 3-year retention, alerts").set_defaults(
        handler=_audit_maintain
    )

    keys = sub.add_parser("keys", help="the data key of personal fields")
    kcmd = keys.add_subparsers(dest="keys_command", required=True)
    kcmd.add_parser("new", help="print a new random key for WELFARE_DATA_KEY").set_defaults(
        handler=_keys_new
    )
    kcmd.add_parser("rotate", help="re-encrypt everything with WELFARE_DATA_KEY").set_defaults(
        handler=_keys_rotate
    )


def _admin(action: Any) -> int:
    """Run an administration step; a refused one exits 2 with its reason."""
    from ingest_api.auth.accounts import AccountError
    from ingest_api.auth.tokens import TokenError

    try:
        action()
    except (AccountError, TokenError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_issued(issued: Any) -> None:
    """Show a temporary password and TOTP secret once."""
    if issued.password:
        print(f"temporary password for {issued.username}: {issued.password}")
        print("  (shown once; it must be changed at the first sign-in)")
    if issued.totp_secret:
        print(f"second factor (TOTP) secret: {issued.totp_secret}")
        print(f"  authenticator app URI: {issued.totp_uri}")


def _user_add(args: argparse.Namespace) -> int:
    """`welfare user add`."""
    from ingest_api.auth.accounts import add_user

    settings = _settings()

    def step() -> None:
        with _connect(settings) as conn:
            issued = add_user(
                conn,
                username=args.username,
                role=Role(args.role),
                actor=_cli_actor(),
                facility_id=args.facility,
                program_ids=args.program,
                display_name=args.name,
                cipher=_cipher(settings),
            )
        _print_issued(issued)

    return _admin(step)


def _user_reset(args: argparse.Namespace) -> int:
    """`welfare user reset`."""
    from ingest_api.auth.accounts import reset_user

    settings = _settings()

    def step() -> None:
        with _connect(settings) as conn:
            issued = reset_user(
                conn,
                username=args.username,
                actor=_cli_actor(),
                new_second_factor=args.second_factor,
                cipher=_cipher(settings),
            )
        _print_issued(issued)

    return _admin(step)


def _user_disable(args: argparse.Namespace) -> int:
    """`welfare user disable`."""
    from ingest_api.auth.accounts import disable_user

    def step() -> None:
        with _connect(_settings()) as conn:
            changed = disable_user(conn, username=args.username, actor=_cli_actor())
        print(f"{args.username}: {'disabled' if changed else 'was disabled already'}")

    return _admin(step)


def _user_role(args: argparse.Namespace) -> int:
    """`welfare user role`."""
    from ingest_api.auth.accounts import set_role

    settings = _settings()

    def step() -> None:
        with _connect(settings) as conn:
            issued = set_role(
                conn,
                username=args.username,
                actor=_cli_actor(),
                role=Role(args.role),
                facility_id=args.facility,
                program_ids=args.program,
                grants=[Permission(g) for g in args.grant],
                cipher=_cipher(settings),
            )
        print(f"{args.username}: role set; sessions ended")
        if issued is not None:
            _print_issued(issued)

    return _admin(step)


def _user_list(_args: argparse.Namespace) -> int:
    """`welfare user list`."""
    from ingest_api.auth.accounts import list_accounts

    with _connect(_settings()) as conn:
        for a in list_accounts(conn):
            state = "disabled" if a["disabled_at"] else "active"
            print(
                f"{a['username']:<24} {a['role']:<15} {a['facility_id'] or '-':<6}"
                f" {state:<9} 2fa={'yes' if a['second_factor'] else 'no'}"
                f" grants={','.join(a['grants']) or '-'}"
            )
    return 0


def _token_add(args: argparse.Namespace) -> int:
    """`welfare token add`."""
    from ingest_api.auth.tokens import issue_token

    try:
        scopes = [Permission(s) for s in args.scope]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def step() -> None:
        with _connect(_settings()) as conn:
            token = issue_token(
                conn,
                name=args.name,
                scopes=scopes,
                actor=_cli_actor(),
                now=datetime.now(UTC),
                facility_id=args.facility,
                days=args.days,
            )
        print(token)
        print("  (shown once; send it as 'Authorization: Bearer <token>')", file=sys.stderr)

    return _admin(step)


def _token_revoke(args: argparse.Namespace) -> int:
    """`welfare token revoke`."""
    from ingest_api.auth.tokens import revoke_token

    with _connect(_settings()) as conn:
        done = revoke_token(conn, name=args.name, actor=_cli_actor(), now=datetime.now(UTC))
    print(f"{args.name}: {'revoked' if done else 'no live token of that name'}")
    return 0 if done else 2


def _token_list(_args: argparse.Namespace) -> int:
    """`welfare token list`."""
    from ingest_api.auth.tokens import list_tokens

    with _connect(_settings()) as conn:
        for t in list_tokens(conn):
            state = "revoked" if t["revoked_at"] else "live"
            print(
                f"{t['name']:<24} {state:<8} {','.join(t['scopes'])}"
                f" facility={t['facility_id'] or '-'} expires={t['expires_at'] or '-'}"
            )
    return 0


def _audit_verify(_args: argparse.Namespace) -> int:
    """`welfare audit verify`: exit 0 when every kept row is as written, 1 otherwise."""
    from ingest_api.core.audit import verify_chain

    with _connect(_settings()) as conn:
        report = verify_chain(conn)
    if report.ok:
        print(f"audit chain ok: {report.rows} rows, head {report.head}")
        return 0
    print(
        f"audit chain BROKEN at row {report.audit_id}: {report.problem}"
        f" ({report.rows} rows checked)"
    )
    return 1


def _audit_maintain(_args: argparse.Namespace) -> int:
    """`welfare audit maintain`: what the service does every few minutes, once."""
    from ingest_api.core.maintenance import run_once

    settings = _settings()
    with _connect(settings) as conn:
        result = run_once(conn, settings=settings, now=datetime.now(UTC))
    print(
        f"dropped {len(result.dropped)} expired month(s) {result.dropped};"
        f" ended {result.sessions_ended} session(s); {len(result.new_alerts)} new alert(s)"
    )
    for alert in result.new_alerts:
        print(
            f"  alert: {alert.kind} {alert.actor} {alert.window_start.isoformat()} {alert.detail}"
        )
    return 0


def _keys_new(_args: argparse.Namespace) -> int:
    """`welfare keys new`: a random key (put it in the secret store, never in git)."""
    print(secrets.token_urlsafe(48))
    return 0


def _keys_rotate(_args: argparse.Namespace) -> int:
    """`welfare keys rotate`: everything under WELFARE_DATA_KEY_PREVIOUS moves to the new key."""
    from ingest_api.core.rotation import rotate

    settings = _settings()
    cipher = _cipher(settings)
    if cipher is None:
        print(
            "error: set WELFARE_DATA_KEY (and the old key in WELFARE_DATA_KEY_PREVIOUS)",
            file=sys.stderr,
        )
        return 2
    with _connect(settings) as conn:
        result = rotate(conn, cipher=cipher)
    print(f"re-encrypted {result.rotated} value(s); {result.current} already under the current key")
    return 0
