"""A throw-away PostgreSQL cluster (initdb + pg_ctl) for tests and benchmarks."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from welfare.services.ports import free_port, wait_for_port

_SUPERUSER = "postgres"


def find_bindir() -> Path:
    """Directory of the server binaries: WELFARE_PG_BINDIR, else the newest installed."""
    override = os.environ.get("WELFARE_PG_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())
    raise FileNotFoundError("PostgreSQL server binaries not found: apt-get install -y postgresql")


def timescaledb_available(bindir: Path) -> bool:
    """Whether the timescaledb extension is installed beside these server binaries."""
    libdirs = {str(bindir.parent / "lib")}
    out = subprocess.run(
        [str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False
    )
    if out.returncode == 0 and not os.environ.get("WELFARE_PG_BINDIR"):
        libdirs.add(out.stdout.strip())
    return any(glob.glob(f"{libdir}/timescaledb*.so") for libdir in libdirs)


@dataclass
class PostgresServer:
    """A cluster in `data_dir` on a free port; runs as the `postgres` user when we are root."""

    data_dir: Path
    port: int = 0
    timescaledb: bool | None = None  # None: preload it when installed
    fsync: bool = True
    # More postgresql.conf lines (e.g. WAL archiving for the restore drill).
    extra_settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Resolve binaries, port and whether TimescaleDB is preloaded."""
        self.bindir = find_bindir()
        self.port = self.port or free_port()
        if self.timescaledb is None:
            # WELFARE_TIMESCALEDB=off runs the plain-PostgreSQL path even where it is installed.
            wanted = os.environ.get("WELFARE_TIMESCALEDB", "auto").lower()
            self.timescaledb = wanted != "off" and timescaledb_available(self.bindir)
            if wanted == "on" and not self.timescaledb:
                raise RuntimeError("WELFARE_TIMESCALEDB=on but timescaledb is not installed")
        self._run_as: str | None = _SUPERUSER if os.geteuid() == 0 else None

    @property
    def pgdata(self) -> Path:
        """The cluster's data directory."""
        return self.data_dir / "pgdata"

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for `dbname` on this cluster."""
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *args: str) -> list[str]:
        """Run a server binary as the unprivileged owner (initdb refuses root)."""
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *args]
        return list(args)

    def init(self) -> None:
        """initdb the cluster if it does not exist yet."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            user = pwd.getpwnam(self._run_as)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            # The owner needs to traverse the parents of a temp dir.
            for parent in self.data_dir.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
        result = subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                _SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ),
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.pgdata}: {result.stderr.strip()}")
        settings = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.data_dir}'",
            f"fsync = {'on' if self.fsync else 'off'}",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "log_min_messages = warning",
            *self.extra_settings,
        ]
        if self.timescaledb:
            settings += [
                "shared_preload_libraries = 'timescaledb'",
                "timescaledb.telemetry_level = off",
                # Tests refresh explicitly; background jobs would race them (and on PG 15.20
                # TimescaleDB 2.28's job runner fails with "cannot drop portal").
                "timescaledb.max_background_workers = 0",
            ]
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# Smart Welfare test cluster\n" + "\n".join(settings) + "\n")

    def start(self) -> None:
        """Start the server and wait for it."""
        self.init()
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.data_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`, or `immediate` for a crash-like stop)."""
        if not (self.pgdata / "postmaster.pid").exists():
            return
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"
            ),
            check=False,
            capture_output=True,
        )

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port and data."""
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import psycopg  # the central extra

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> Self:
        """Start on entry."""
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on exit; nothing is left running."""
        self.stop()
