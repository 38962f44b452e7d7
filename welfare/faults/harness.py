"""The fault-suite harness: real servers and processes, a steady stream, Jepsen-style counts."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from broker.auth import INGEST_USER, DeviceIdentity
from welfare.faults.proxy import FlakyProxy
from welfare.services.mosquitto import MosquittoServer
from welfare.services.postgres import PostgresServer

ROOT = Path(__file__).parents[2]


@dataclass
class Counts:
    """What happened to the events of one scenario."""

    scenario: str
    attempted: int = 0  # taps started by the devices
    confirmed: int = 0  # events durably recorded on the devices (the member saw a result)
    stored: int = 0  # distinct events of these devices in the central database
    lost: int = 0  # recorded on a device, missing centrally
    duplicated: int = 0  # central rows beyond one per event, or rows no device recorded
    parked: int = 0  # refused by the center and parked on their device (never stored)
    refused_unparked: int = 0  # dead letters naming an event its device has not parked
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def row(self) -> list[object]:
        """A table row."""
        return [
            self.scenario,
            self.attempted,
            self.confirmed,
            self.stored,
            self.lost,
            self.duplicated,
            f"{self.seconds:.1f}",
            "; ".join(self.notes),
        ]


@dataclass
class Device:
    """A device process and its files."""

    ident: DeviceIdentity
    db: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    attempted: int = 0


class FaultEnv:
    """PostgreSQL, Mosquitto, a flaky proxy, ingest consumer processes and device processes."""

    def __init__(
        self,
        workdir: Path,
        *,
        devices: int,
        consumers: int = 1,
        facilities: tuple[str, ...] = ("F",),
    ) -> None:
        """Start the servers; devices (spread over `facilities`) start with `start_*`."""
        self.workdir = workdir
        self.pg = PostgresServer(workdir / "pg")
        self.pg.start()
        self.url = self.pg.create_database("faults")
        from ingest_api.core.migrate import migrate

        migrate(self.url)
        self.devices = [
            Device(
                DeviceIdentity(facilities[i % len(facilities)], f"kiosk-{i}"),
                workdir / f"kiosk-{i}.sqlite3",
                workdir / f"kiosk-{i}.log",
            )
            for i in range(devices)
        ]
        self.broker = MosquittoServer(workdir / "mq", devices=[d.ident for d in self.devices])
        self.broker.start()
        self.proxy = FlakyProxy(self.broker.port)
        self.proxy.start()
        self.consumers: dict[str, subprocess.Popen[bytes]] = {}
        self.consumer_count = consumers
        self.started = time.monotonic()

    # -- processes ------------------------------------------------------------------------

    def start_consumer(self, consumer_id: str) -> None:
        """Run `welfare ingest consume` as its own process (so it can be SIGKILLed)."""
        env = dict(
            os.environ,
            DATABASE_URL=self.url,
            WELFARE_MQTT__PORT=str(self.broker.port),
            WELFARE_MQTT__PASSWORD=self.broker.passwords[INGEST_USER],
            WELFARE_CONSUMER_ID=consumer_id,
        )
        log = (self.workdir / f"{consumer_id}.log").open("ab")
        self.consumers[consumer_id] = subprocess.Popen(
            [sys.executable, "-m", "welfare.cli", "ingest", "consume"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def start_consumers(self) -> None:
        """Start the configured number of consumers (shared subscription)."""
        for i in range(self.consumer_count):
            self.start_consumer(f"ingest-{i + 1}")

    def kill_consumer(self, consumer_id: str) -> None:
        """SIGKILL a consumer, whatever it was doing."""
        proc = self.consumers.pop(consumer_id)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def start_device(
        self,
        device: Device,
        *,
        count: int,
        rate: float,
        hours: float = 0.0,
        direct: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        """Start (or restart) a device process tapping `count` cards."""
        env = dict(
            os.environ, WELFARE_TEST_DEVICE_PASSWORD=self.broker.passwords[device.ident.username]
        )
        port = self.broker.port if direct else self.proxy.port
        device.attempted += count
        device.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "welfare.faults.device",
                "--db",
                str(device.db),
                "--facility",
                device.ident.facility_id,
                "--device",
                device.ident.device_id,
                "--port",
                str(port),
                "--count",
                str(count),
                "--rate",
                str(rate),
                "--hours",
                str(hours),
                "--log",
                str(device.log),
                *extra,
            ],
            env=env,
            cwd=ROOT,
            stdout=(self.workdir / f"{device.ident.device_id}.out").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def start_stream(self, *, count: int, rate: float) -> None:
        """Every device taps `count` cards at `rate` per second."""
        for device in self.devices:
            self.start_device(device, count=count, rate=rate)

    def power_cut(self, device: Device) -> tuple[int, int]:
        """SIGKILL a device; returns its events (unpublished, unconfirmed) at the cut."""
        assert device.proc is not None
        device.proc.send_signal(signal.SIGKILL)
        device.proc.wait()
        device.attempted = len(self.device_events(device))  # later taps never happened
        with sqlite3.connect(device.db) as db:
            row = db.execute(
                "SELECT count(*) FILTER (WHERE last_sent_at IS NULL), "
                "count(*) FILTER (WHERE confirmed_at IS NULL) FROM outbox"
            ).fetchone()
        return int(row[0]), int(row[1])

    # -- observation ----------------------------------------------------------------------

    def wait_devices(self, timeout: float) -> None:
        """Wait for every device process to finish (all its events confirmed)."""
        deadline = time.monotonic() + timeout
        for device in self.devices:
            assert device.proc is not None
            remaining = max(1.0, deadline - time.monotonic())
            try:
                code = device.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pending = self.pending(device)
                raise AssertionError(
                    f"{device.ident.username} still has {pending} unconfirmed events"
                ) from None
            assert code == 0, (self.workdir / f"{device.ident.device_id}.out").read_text()

    def pending(self, device: Device) -> int:
        """Unconfirmed events on a device (a parked one is settled: refused for good)."""
        with sqlite3.connect(device.db) as db:
            row = db.execute(
                "SELECT count(*) FROM outbox WHERE confirmed_at IS NULL AND parked_at IS NULL"
            ).fetchone()
        return int(row[0])

    def parked_events(self, device: Device) -> set[str]:
        """Event ids a device parked (refused by the center)."""
        if not device.db.exists():
            return set()
        try:
            with sqlite3.connect(device.db) as db:
                return {r[0] for r in db.execute("SELECT event_id FROM outbox WHERE parked_at")}
        except sqlite3.OperationalError:
            return set()

    def device_events(self, device: Device) -> set[str]:
        """Event ids durably recorded on a device."""
        if not device.db.exists():
            return set()
        try:
            with sqlite3.connect(device.db) as db:
                return {r[0] for r in db.execute("SELECT event_id FROM outbox")}
        except sqlite3.OperationalError:  # the process is still creating its schema
            return set()

    def wait_recorded(self, fraction: float, *, timeout: float = 60) -> None:
        """Wait until the devices have recorded `fraction` of the taps they were asked for."""
        target = fraction * sum(d.attempted for d in self.devices)
        deadline = time.monotonic() + timeout
        while sum(len(self.device_events(d)) for d in self.devices) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"devices did not reach {target:.0f} taps in {timeout}s")
            time.sleep(0.05)

    def counts(self, scenario: str) -> Counts:
        """Compare what the devices recorded with what the database holds."""
        recorded: set[str] = set()
        shown: set[str] = set()
        parked: set[str] = set()
        for device in self.devices:
            recorded |= self.device_events(device)
            parked |= self.parked_events(device)
            if device.log.exists():
                shown |= set(device.log.read_text().split())
        with psycopg.connect(self.url) as conn:
            rows = [str(r[0]) for r in conn.execute("SELECT event_id FROM attendance_events")]
            refused = {
                str(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM dead_letters WHERE event_id IS NOT NULL"
                )
            }
        stored = set(rows)
        counts = Counts(
            scenario=scenario,
            attempted=sum(d.attempted for d in self.devices),
            confirmed=len(recorded),
            stored=len(stored),
            lost=len(recorded - stored - parked),
            duplicated=(len(rows) - len(stored)) + len(stored - recorded) + len(stored & parked),
            parked=len(parked),
            refused_unparked=len(refused - parked),
            seconds=time.monotonic() - self.started,
        )
        # Every result a member was shown must be among the recorded events.
        missing_shown = shown - recorded
        if missing_shown:
            counts.notes.append(f"{len(missing_shown)} shown but not recorded")
            counts.lost += len(missing_shown)
        return counts

    def close(self) -> None:
        """Stop everything; nothing is left running."""
        for device in self.devices:
            if device.proc is not None and device.proc.poll() is None:
                device.proc.kill()
                device.proc.wait()
        for proc in self.consumers.values():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.proxy.stop()
        self.broker.stop()
        self.pg.stop()
