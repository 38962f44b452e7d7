"""The MQTT consumer: validate, write a batch, commit, then PUBACK and confirm to the devices."""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker.const import QOS_AT_LEAST_ONCE
from broker.models import IngestAck, RejectedEvent
from broker.topics import UPSTREAM, Channel, ingest_subscription, topic
from broker.vocabulary import RejectReason
from ingest_api.core.config import Settings
from ingest_api.core.mqtt import center_client
from ingest_api.fleet.store import Heartbeat, Presence, record_heartbeats, record_presence
from ingest_api.ingest.const import ACK_CHUNK, ROSTER_UNKNOWN, SESSION_EXPIRY_S, DeadLetterReason
from ingest_api.ingest.metrics import ConsumerMetrics
from ingest_api.ingest.validation import (
    DeadLetter,
    EventRow,
    ParsedAttendance,
    ParsedHealth,
    ParsedPresence,
    ParsedSync,
    RefusedEvent,
    parse_message,
)
from ingest_api.ingest.writes import (
    add_metrics,
    audit_refused_replays,
    flag_unknown_rosters,
    insert_dead_letters,
    insert_events_isolating,
    upsert_sync_reports,
)

_LOG = logging.getLogger(__name__)
Device = tuple[str, str]


@dataclass
class Committed:
    """What a batch did, per device (facility, device): what each device is told."""

    stored: dict[Device, list[UUID]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[Device, list[RejectedEvent]] = field(default_factory=lambda: defaultdict(list))

    def add(self, other: Committed) -> None:
        """Take in another part's outcome."""
        for key, ids in other.stored.items():
            self.stored[key].extend(ids)
        for key, events in other.refused.items():
            self.refused[key].extend(events)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as paho delivered it, not yet acknowledged to the broker."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime


@dataclass
class ConsumerStats:
    """Live counters (also persisted in ingest_metrics)."""

    messages: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    dead_letters: int = 0
    batches: int = 0
    db_errors: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)


class IngestConsumer:
    """Consumes attendance and health from the broker into PostgreSQL, exactly once per event."""

    def __init__(self, settings: Settings) -> None:
        """Prepare; `start()` connects."""
        self.settings = settings
        self.stats = ConsumerStats()
        # Bounded: when the database is slow, paho's thread blocks here and TCP pushes back.
        self._queue: queue.Queue[Incoming] = queue.Queue(maxsize=settings.queue_size)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._writer: threading.Thread | None = None
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._client = self._make_client()
        self.metrics = ConsumerMetrics(
            settings.consumer_id, queue_depth=self._queue.qsize, connected=self._connected.is_set
        )

    # -- lifecycle ----------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        """A v5 client with manual acknowledgement and a persistent session."""
        client = center_client(self.settings, client_id=self.settings.consumer_id, manual_ack=True)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect to the database and broker and start the writer thread."""
        self._stop.clear()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._writer.start()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            keepalive=self.settings.mqtt.keepalive,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float = 20.0) -> bool:
        """Block until subscribed to the broker."""
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Stop taking messages; unacknowledged ones will be redelivered to the next consumer."""
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        if self._writer is not None:
            self._writer.join(timeout=30)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected.is_set()

    # -- paho callbacks (network thread) --------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        """Subscribe to every device's attendance, health and presence."""
        if reason.is_failure:
            _LOG.error("broker refused the ingest: %s", reason)
            return
        shared = self.settings.shared_subscription
        client.subscribe(
            [(ingest_subscription(ch, shared=shared), QOS_AT_LEAST_ONCE) for ch in UPSTREAM]
        )
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        """Note the outage; paho reconnects with backoff."""
        self._connected.clear()
        if not self._stop.is_set():
            _LOG.warning("ingest lost the broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """Queue for the writer; blocks (back-pressure) when the writer is behind."""
        item = Incoming(msg.mid, msg.qos, msg.topic, bytes(msg.payload), datetime.now(UTC))
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- writer thread --------------------------------------------------------------------

    def _write_loop(self) -> None:
        """Collect a batch, store it (retrying through database outages), then acknowledge."""
        linger = self.settings.batch_linger_ms / 1000
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + linger
            while len(batch) < self.settings.batch_max_messages:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            started = time.perf_counter()
            committed = self._store_with_retry(batch)
            if committed is None:
                return  # stopping: nothing acknowledged, the broker redelivers
            self.metrics.batch_write.observe(time.perf_counter() - started)
            self.metrics.batch_latency.observe(
                (datetime.now(UTC) - batch[0].received_at).total_seconds()
            )
            self._acknowledge(batch, committed)

    def _store_with_retry(self, batch: list[Incoming]) -> Committed | None:
        """Store a batch; on database errors reconnect with backoff and try again."""
        delay = 0.2
        while not self._stop.is_set():
            try:
                return self._store(batch)
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                # Not an outage: some message holds data the database refuses. Store one by
                # one so a single bad message cannot block the stream (it becomes a dead letter).
                _LOG.warning("database refused a batch (%s); storing one by one", exc)
                return self._store_one_by_one(batch)
            except psycopg.Error as exc:
                self.stats.db_errors += 1
                _LOG.warning("database write failed (%s); retrying in %.1fs", exc, delay)
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        return None

    def _store_one_by_one(self, batch: list[Incoming]) -> Committed:
        """Store each message alone; one the database refuses becomes a dead letter."""
        committed = Committed()
        for item in batch:
            try:
                result = self._store([item])
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                letter = DeadLetter(
                    item.topic, DeadLetterReason.DB_REJECTED, str(exc)[:1000], item.payload
                )
                assert self._conn is not None
                with self._conn.transaction(), self._conn.cursor() as cur:
                    insert_dead_letters(cur, letters=[letter], consumer=self.settings.consumer_id)
                    add_metrics(cur, counts=Counter({f"dead_letter.{letter.reason}": 1}))
                self.stats.dead_letters += 1
                continue
            committed.add(result)
        return committed

    def _store(self, batch: list[Incoming]) -> Committed:
        """Validate and write one batch in one transaction; returns committed ids per device."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.settings.database_url, connect_timeout=5)
        events = []
        topics: dict[Device, str] = {}
        letters: list[DeadLetter] = []
        beats: list[Heartbeat] = []
        presence: list[Presence] = []
        syncs: list[ParsedSync] = []
        refused: list[tuple[str, Device, RefusedEvent]] = []
        committed = Committed()
        counts: Counter[str] = Counter()
        for item in batch:
            parsed = parse_message(item.topic, item.payload, received_at=item.received_at)
            if isinstance(parsed, DeadLetter):
                letters.append(parsed)
                counts[f"dead_letter.{parsed.reason}"] += 1
            elif isinstance(parsed, ParsedHealth):
                beats.append(Heartbeat(parsed.health, parsed.received_at))
            elif isinstance(parsed, ParsedPresence):
                presence.append(Presence(parsed.presence, parsed.received_at))
            elif isinstance(parsed, ParsedSync):
                syncs.append(parsed)
            else:
                assert isinstance(parsed, ParsedAttendance)
                events.extend(parsed.rows)
                device = (parsed.facility_id, parsed.device_id)
                topics[device] = item.topic
                refused.extend((item.topic, device, r) for r in parsed.refused)
                for row in parsed.rows:
                    for flag in row.flags:
                        counts[f"flag.{flag}"] += 1
        with self._conn.transaction(), self._conn.cursor() as cur:
            counts[f"flag.{ROSTER_UNKNOWN}"] += flag_unknown_rosters(cur, rows=events)
            new, db_refused = insert_events_isolating(cur, rows=events)
            refused_ids = {row.event_id for row, _ in db_refused}
            refused += [
                (
                    topics[(row.facility_id, row.device_id)],
                    (row.facility_id, row.device_id),
                    RefusedEvent(
                        row.event_id, RejectReason.DB_REJECTED, why, _row_json(row).encode()
                    ),
                )
                for row, why in db_refused
            ]
            events = [row for row in events if row.event_id not in refused_ids]
            for row in events:
                committed.stored[(row.facility_id, row.device_id)].append(row.event_id)
            for topic_name, device, event in refused:
                committed.refused[device].append(
                    RejectedEvent(event_id=event.event_id, reason=event.reason, detail=event.detail)
                )
                letters.append(
                    DeadLetter(
                        topic_name,
                        _LETTER_REASONS[event.reason],
                        event.detail,
                        event.payload,
                        event_id=event.event_id,
                    )
                )
                counts["events.refused"] += 1
            insert_dead_letters(cur, letters=letters, consumer=self.settings.consumer_id)
            record_heartbeats(cur, beats=beats)
            record_presence(cur, items=presence)
            upsert_sync_reports(cur, reports=syncs)
            audit_refused_replays(self._conn, reports=syncs)
            counts["messages"] += len(batch)
            counts["events.new"] += new
            counts["events.duplicate"] += len(events) - new
            add_metrics(cur, counts=+counts)  # unary + drops zero counters
        self.stats.messages += len(batch)
        self.stats.batches += 1
        self.stats.events_new += new
        self.stats.events_duplicate += len(events) - new
        self.stats.dead_letters += len(letters)
        self.stats.by_reason.update({d.reason: 1 for d in letters})
        return committed

    def _acknowledge(self, batch: list[Incoming], committed: Committed) -> None:
        """PUBACK in arrival order, then tell each device which events are stored or refused.

        Refusals go in messages of their own: an ack of stored events stays what a 1.2 kiosk
        reads (docs/contract.md, 1.4), so an older kiosk still confirms them.
        """
        for item in batch:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)
        now = datetime.now(UTC)
        for (facility_id, device_id), ids in committed.stored.items():
            for start in range(0, len(ids), ACK_CHUNK):
                ack = IngestAck(
                    facility_id=facility_id,
                    device_id=device_id,
                    committed=ids[start : start + ACK_CHUNK],
                    acked_at=now,
                )
                self._send_ack(ack)
        for (facility_id, device_id), events in committed.refused.items():
            for start in range(0, len(events), ACK_CHUNK):
                ack = IngestAck(
                    facility_id=facility_id,
                    device_id=device_id,
                    rejected=events[start : start + ACK_CHUNK],
                    acked_at=now,
                )
                self._send_ack(ack)

    def _send_ack(self, ack: IngestAck) -> None:
        """Publish one ack to its device (QoS 1)."""
        self._client.publish(
            topic(ack.facility_id, ack.device_id, Channel.ACK),
            ack.model_dump_json(exclude_none=True),
            qos=QOS_AT_LEAST_ONCE,
        )


# The dead-letter reason of an event refused on its own.
_LETTER_REASONS = {
    RejectReason.INVALID: DeadLetterReason.INVALID,
    RejectReason.DB_REJECTED: DeadLetterReason.DB_REJECTED,
}


def _row_json(row: EventRow) -> str:
    """An event row as JSON, kept as the dead letter of an event the database refused."""
    return json.dumps(dataclasses.asdict(row), default=str, ensure_ascii=False)
