"""Drains the outbox to the broker (QoS 1, persistent session) until the center confirms."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from broker.const import QOS_AT_LEAST_ONCE
from broker.models import BatchHeader, DevicePresence, IngestAck, encode_batch
from broker.topics import Channel, topic
from edge_agent.const import (
    MAX_IN_FLIGHT,
    PUBLISH_BATCH,
    RECONNECT_MAX_S,
    RECONNECT_MIN_S,
    SESSION_EXPIRY_S,
)
from edge_agent.models import OutboxRow
from edge_agent.sync import RosterSync

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

_LOG = logging.getLogger(__name__)


class Publisher:
    """One MQTT connection per device; paho's network thread, asyncio for everything else."""

    def __init__(self, *, agent: EdgeAgent) -> None:
        """Bind to the agent whose store is drained."""
        settings = agent.settings
        if settings.mqtt is None:
            raise ValueError("publisher needs MQTT settings")
        self._agent = agent
        self._mqtt = settings.mqtt
        self._facility = settings.facility_id
        self._device = settings.device_id
        self._topic = topic(self._facility, self._device, Channel.ATTENDANCE)
        self._health_topic = topic(self._facility, self._device, Channel.HEALTH)
        self._presence_topic = topic(self._facility, self._device, Channel.PRESENCE)
        self._will_delay = settings.will_delay_s
        self._downstream = {
            topic(self._facility, self._device, ch): ch
            for ch in (Channel.ACK, Channel.ROSTER, Channel.CONFIG)
        }
        self._sync_topic = topic(self._facility, self._device, Channel.SYNC)
        self._client_ref: mqtt.Client | None = None
        self.sync = RosterSync(agent, self._send_sync)
        self._connected = asyncio.Event()
        self._health_now = asyncio.Event()
        self._incoming: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=1000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent_messages = 0
        self._sharing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="peer-share")
        self._peer_mid: int | None = None
        # Set once the broker confirmed the subscription to the hall's peer messages.
        self.peers_heard = asyncio.Event()

    def _client(self) -> mqtt.Client:
        """A paho client with a persistent session named after the device."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self._facility}.{self._device}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if self._mqtt.username:
            client.username_pw_set(self._mqtt.username, self._mqtt.password_value())
        if (context := self._mqtt.ssl_context()) is not None:
            client.tls_set_context(context)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_queued_messages_set(0)
        # The last will: "offline", published by the broker only if the connection is lost
        # and not re-made within the will delay (so a flaky link announces nothing).
        will_props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
        will_props.WillDelayInterval = self._will_delay
        client.will_set(
            self._presence_topic,
            self._presence("offline", "connection_lost"),
            qos=QOS_AT_LEAST_ONCE,
            retain=True,
            properties=will_props,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    async def run(self) -> None:
        """Connect (retrying forever) and drain, receive and report until cancelled."""
        self._loop = asyncio.get_running_loop()
        client = self._client()
        self._client_ref = client
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(
            self._mqtt.host,
            self._mqtt.port,
            keepalive=self._mqtt.keepalive,
            clean_start=False,
            properties=props,
        )
        client.loop_start()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._drain(client))
                tg.create_task(self._receive())
                tg.create_task(self._report_health(client))
                tg.create_task(self.sync.run(self._connected))
        finally:
            self._sharing.shutdown(wait=True)  # serves decided before the stop still go out
            await self._say_goodbye(client)
            client.disconnect()
            client.loop_stop()

    def _presence(self, state: str, reason: str) -> str:
        """This device's presence document."""
        return DevicePresence(
            facility_id=self._facility,
            device_id=self._device,
            state=state,
            reason=reason,
        ).model_dump_json()

    async def _say_goodbye(self, client: mqtt.Client) -> None:
        """A clean stop says so (no will then: a normal disconnect discards it)."""
        if not client.is_connected():
            return
        info = client.publish(
            self._presence_topic,
            self._presence("offline", "shutdown"),
            qos=QOS_AT_LEAST_ONCE,
            retain=True,
        )
        with contextlib.suppress(RuntimeError, ValueError):
            await asyncio.to_thread(info.wait_for_publish, 2.0)

    # -- paho thread callbacks ------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None
    ) -> None:
        """Subscribe to this device's downstream topics, then let the drain run."""
        if reason.is_failure:
            _LOG.warning("broker refused %s: %s", self._device, reason)
            return
        client.subscribe([(t, QOS_AT_LEAST_ONCE) for t in self._downstream])
        # The hall's other kiosks (no-local: our own serves are not echoed back).
        _rc, self._peer_mid = client.subscribe(
            self._agent.peers.subscription,
            options=SubscribeOptions(qos=QOS_AT_LEAST_ONCE, noLocal=True),
        )
        client.publish(
            self._presence_topic,
            self._presence("online", "connected"),
            qos=QOS_AT_LEAST_ONCE,
            retain=True,
        )
        self._call(self._set_connected, True)

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None
    ) -> None:
        """Pause the drain; paho reconnects with backoff by itself."""
        self._call(self._set_connected, False)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        """The broker confirmed a subscription: the peer one means the hall is heard."""
        if mid == self._peer_mid:
            self._call(self.peers_heard.set)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """Hand a downstream message to the asyncio side."""
        self._call(self._enqueue, msg.topic, bytes(msg.payload))

    def _call(self, fn: Any, *args: Any) -> None:
        """Run `fn` on the agent's event loop from paho's thread."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(fn, *args)

    # -- asyncio side -------------------------------------------------------------------

    def _set_connected(self, up: bool) -> None:
        """Track the connection; on reconnect everything unconfirmed goes out again."""
        self._agent.online = up
        if up:
            self._agent.online_since = self._agent.clock()
            self._agent.clock_estimator.reset()
            self._connected.set()
            self._resend_pending = True
            self._agent.publisher_wake.set()
            self._health_now.set()  # a heartbeat at once: the center sees it back
            # Every connection starts with what the device holds: a device back from a week
            # offline gets one delta to the latest roster (docs/contract.md, roster sync).
            self.sync.reconnected.set()
        else:
            self._agent.online_since = None
            self._connected.clear()
            self.peers_heard.clear()

    def _enqueue(self, topic_name: str, payload: bytes) -> None:
        """Queue a downstream message; drop with a log if the agent is overwhelmed."""
        try:
            self._incoming.put_nowait((topic_name, payload))
        except asyncio.QueueFull:
            _LOG.warning("downstream queue full, dropped message on %s", topic_name)

    _resend_pending = False

    def _send_sync(self, payload: str) -> None:
        """Publish a SyncRequest (QoS 1); a disconnected client keeps it for the reconnect."""
        if self._client_ref is not None:
            self._client_ref.publish(self._sync_topic, payload, qos=QOS_AT_LEAST_ONCE)

    def share(self, payload: str) -> None:
        """Tell the hall's other kiosks of a serve (QoS 1; queued by paho while disconnected).

        Handed to a thread of its own, in order: paho's publish takes locks its network thread
        holds while it writes a backlog batch, and the event loop must not wait for them.
        """
        client = self._client_ref
        if client is None:
            return
        try:
            self._sharing.submit(
                client.publish, self._agent.peers.topic, payload, QOS_AT_LEAST_ONCE
            )
        except RuntimeError:  # the publisher has stopped: the serve is recorded, not shared
            _LOG.warning("peer sharing stopped; a serve was not shared")

    def payload(self, rows: list[OutboxRow]) -> str:
        """The AttendanceBatch document of stored events, sent now (events not re-validated)."""
        header = BatchHeader(
            facility_id=self._facility, device_id=self._device, sent_at=self._agent.clock()
        )
        return encode_batch(header, [row.payload for row in rows])

    async def _drain(self, client: mqtt.Client) -> None:
        """Send due events in order, in batches, within the in-flight window."""
        store = self._agent.store
        wake = self._agent.publisher_wake
        while True:
            await self._connected.wait()
            if self._resend_pending:
                self._resend_pending = False
                await store.resend_all()
            now = time.time()
            resend_before = now - self._agent.resend_after_s
            in_flight = await store.in_flight(resend_before=resend_before)
            room = min(PUBLISH_BATCH, MAX_IN_FLIGHT - in_flight)
            rows = await store.due(limit=room, resend_before=resend_before) if room > 0 else []
            if not rows:
                wake.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
                # arrives as the event fires (a tap just before SIGTERM), and the agent hangs.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(1.0, self._agent.resend_after_s)):
                        await wake.wait()
                continue
            payload = self.payload(rows)
            info = client.publish(self._topic, payload, qos=QOS_AT_LEAST_ONCE)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # Not connected after all: the rows stay due, wait for the reconnect.
                await asyncio.sleep(0.2)
                continue
            await store.mark_sent((r.seq for r in rows), at=now)
            self._agent.clock_estimator.sent(
                rows[0].event_id, wall=self._agent.clock().timestamp(), mono=time.monotonic()
            )
            self.sent_messages += 1

    async def _receive(self) -> None:
        """Apply acks, rosters and configs from the center."""
        store = self._agent.store
        while True:
            topic_name, payload = await self._incoming.get()
            channel = self._downstream.get(topic_name)
            if channel is None and self._agent.peers.is_peer_topic(topic_name):
                try:
                    await self._agent.peers.receive(topic_name, payload)
                except Exception:
                    # A peer's serve that cannot be applied must not stop the publisher.
                    _LOG.exception("peer message on %s not applied", topic_name)
                continue
            try:
                if channel is Channel.ACK:
                    ack = IngestAck.model_validate_json(payload)
                    self._agent.last_ack_at = ack.acked_at
                    if ack.committed:
                        self._agent.clock_estimator.acked(
                            ack.committed, ack.acked_at, mono=time.monotonic()
                        )
                        await store.acknowledge(ack.committed, at=time.time())
                    if ack.rejected:
                        # Refused for good: parked with the reason (kept, counted in the
                        # heartbeat, never resent), so nothing waits behind it.
                        parked = await store.park(
                            ((r.event_id, f"{r.reason}: {r.detail}") for r in ack.rejected),
                            at=time.time(),
                        )
                        _LOG.warning(
                            "the center refused %d event(s); parked %d: %s",
                            len(ack.rejected),
                            parked,
                            "; ".join(f"{r.event_id} {r.reason}" for r in ack.rejected[:5]),
                        )
                        self._health_now.set()  # staff see the parked count at once
                    self._agent.publisher_wake.set()
                elif channel is Channel.ROSTER:
                    await self.sync.on_roster(payload)
                elif channel is Channel.CONFIG:
                    await self.sync.on_config(payload)
            except (ValidationError, ValueError) as exc:
                _LOG.warning("ignored invalid %s message: %s", channel, exc)

    async def _report_health(self, client: mqtt.Client) -> None:
        """The heartbeat: at each connection, then every interval while connected (a stale
        one is never queued); also prunes what the center has long confirmed."""
        while True:
            await self._connected.wait()
            self._health_now.clear()
            health = await self._agent.health()
            client.publish(
                self._health_topic,
                health.model_dump_json(exclude_none=True),
                qos=QOS_AT_LEAST_ONCE,
            )
            await self._agent.store.prune_confirmed(
                before=time.time() - self._agent.settings.keep_confirmed_days * 86400
            )
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as it times out, and the agent would then hang on SIGTERM.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._agent.health_interval_s):
                    await self._health_now.wait()
