"""The test bed: one PostgreSQL cluster and one Mosquitto broker for the whole run.

Every comparison of a run uses these same servers (each side gets its own database), so that
a noisy machine slows both sides alike. Consumers and load generators run as subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker.auth import INGEST_USER, DeviceIdentity
from welfare.services.mosquitto import MosquittoServer
from welfare.services.postgres import PostgresServer

BENCH_FACILITY = "B"


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process (Linux /proc), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class RssSampler:
    """Peak resident memory of processes, sampled every `interval` seconds in a thread."""

    def __init__(self, pids: Sequence[int], interval: float = 0.1) -> None:
        """Start sampling at once."""
        self.peak: dict[int, int] = dict.fromkeys(pids, 0)
        self._pids = list(pids)
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self._pids:
                rss = rss_bytes(pid)
                if rss is not None:
                    self.peak[pid] = max(self.peak[pid], rss)
            self._stop.wait(self._interval)

    def stop(self) -> dict[int, int]:
        """Stop and return the peak RSS in bytes per pid."""
        self._stop.set()
        self._thread.join()
        return self.peak


class Bed:
    """PostgreSQL + Mosquitto with accounts for `devices` simulated kiosks."""

    def __init__(
        self,
        *,
        devices: int,
        extra: Sequence[DeviceIdentity] = (),
        work_dir: Path | None = None,
    ) -> None:
        """Prepare (nothing runs until `with`)."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="welfare-bench-")
            work_dir = Path(self._tmp.name)
        self.dir = work_dir
        self.devices = [DeviceIdentity(BENCH_FACILITY, f"bench-{i:03d}") for i in range(devices)]
        self.broker = MosquittoServer(self.dir / "mosquitto", devices=[*self.devices, *extra])
        self.pg = PostgresServer(self.dir / "pg", fsync=True)
        self.pg_version: str | None = None
        self._procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Self:
        """Start both servers."""
        self.pg.start()
        self.broker.start()
        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            self.pg_version = str(row[0]) if row else None
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop every process we started, then the servers; remove the files."""
        self.stop(self._procs)
        self.broker.stop()
        self.pg.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def ingest_password(self) -> str:
        """The ingest account's broker password."""
        return self.broker.passwords[INGEST_USER]

    def device_specs(self, devices: Sequence[DeviceIdentity]) -> list[dict[str, str]]:
        """What a load generator needs to log in as each device."""
        return [
            {
                "facility": d.facility_id,
                "device": d.device_id,
                "password": self.broker.passwords[d.username],
            }
            for d in devices
        ]

    def new_database(self, prefix: str) -> str:
        """A fresh database with every migration applied; returns its URL."""
        from ingest_api.core.migrate import migrate

        url = self.pg.create_database(f"{prefix}_{uuid.uuid4().hex[:8]}")
        migrate(url)
        return url

    # -- processes ----------------------------------------------------------------------

    def _env(self, url: str, consumer_id: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=url,
            WELFARE_MQTT__HOST="127.0.0.1",
            WELFARE_MQTT__PORT=str(self.broker.port),
            WELFARE_MQTT__PASSWORD=self.ingest_password,
            WELFARE_CONSUMER_ID=consumer_id,
            WELFARE_SHARED_SUBSCRIPTION="true",
        )
        return env

    def start_consumers(
        self, url: str, ids: Sequence[str], *, naive: bool = False
    ) -> list[subprocess.Popen[str]]:
        """Start `welfare ingest consume` (or the naive bridge) once per id; wait until online."""
        module = ["welfare.bench.naive"] if naive else ["welfare.cli", "ingest", "consume"]
        procs = []
        for cid in ids:
            log = (self.dir / f"{cid}.log").open("a")
            proc = subprocess.Popen(
                [sys.executable, "-m", *module],
                env=self._env(url, cid),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            procs.append(proc)
            self._procs.append(proc)
        for cid in ids:
            self._wait_client(cid)
        time.sleep(0.5)  # subscribe follows the CONNACK
        return procs

    def _wait_client(self, client_id: str, timeout: float = 30.0) -> None:
        """Until the broker's log shows the client connected."""
        log = self.broker.data_dir / "mosquitto.log"
        deadline = time.monotonic() + timeout
        needle = f" as {client_id} "
        while time.monotonic() < deadline:
            if log.exists() and needle in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{client_id} did not connect to the broker; see {self.dir}")

    def stop(self, procs: Sequence[subprocess.Popen[str]]) -> None:
        """SIGTERM and wait (SIGKILL after 30 s)."""
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc in self._procs:
                self._procs.remove(proc)

    def clear_sessions(self, client_ids: Sequence[str]) -> None:
        """End the persistent sessions of stopped consumers, so no later phase queues for them."""
        for cid in client_ids:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=cid, protocol=MQTTProtocolVersion.MQTTv5
            )
            client.username_pw_set(INGEST_USER, self.ingest_password)
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            client.connect("127.0.0.1", self.broker.port, clean_start=True, properties=props)
            client.loop_start()
            time.sleep(0.2)
            client.disconnect()
            client.loop_stop()

    def run_load(self, specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run load generators together (each waits until all are ready); their results."""
        procs = []
        for n, spec in enumerate(specs):
            path = self.dir / f"load-{uuid.uuid4().hex[:6]}-{n}.json"
            path.write_text(json.dumps({**spec, "port": self.broker.port}))
            proc = subprocess.Popen(
                [sys.executable, "-m", "welfare.bench.loadgen", str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            self._procs.append(proc)
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"load generator failed to start: {line!r}")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=900)
            self._procs.remove(proc)
            if proc.returncode != 0:
                raise RuntimeError(f"load generator exited {proc.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results


def count_events(url: str) -> int:
    """Rows in attendance_events."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM attendance_events").fetchone()
        return int(row[0]) if row else 0


def wait_for_rows(url: str, expected: int, *, timeout: float) -> tuple[int, float]:
    """Poll until `expected` rows are stored or `timeout` passes; (rows, seconds waited)."""
    started = time.monotonic()
    rows = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() - started < timeout:
            row = conn.execute("SELECT count(*) FROM attendance_events").fetchone()
            rows = int(row[0]) if row else 0
            if rows >= expected:
                break
            time.sleep(0.25)
    return rows, time.monotonic() - started


def commit_span(url: str) -> tuple[float, float, int]:
    """(first, last) transaction time of the stored rows (epoch seconds) and their count."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM min(received_at)), extract(epoch FROM max(received_at)), "
            "count(*) FROM attendance_events"
        ).fetchone()
    assert row is not None
    return float(row[0] or 0), float(row[1] or 0), int(row[2])


def db_latency_ms(url: str) -> dict[str, float | None]:
    """p50/p99/max of (commit transaction time - occurred_at), occurred_at = publish time."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d) FROM ("
            "SELECT extract(epoch FROM received_at - occurred_at) * 1000 AS d "
            "FROM attendance_events) s"
        ).fetchone()
    assert row is not None
    return {
        "p50": None if row[0] is None else float(row[0]),
        "p99": None if row[1] is None else float(row[1]),
        "max": None if row[2] is None else float(row[2]),
    }
