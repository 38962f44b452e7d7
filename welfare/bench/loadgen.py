"""A load generator process: simulated kiosks publish AttendanceBatch messages through the broker.

Run as `python -m welfare.bench.loadgen SPEC.json`: prints `ready` when connected and built,
starts on a line on stdin, and prints one JSON result line at the end. Each device
logs in with its own broker account (per-device credentials and ACLs, as a real kiosk does).
Modes: `burst` publishes prebuilt messages as fast as the in-flight window allows; `paced`
publishes at a fixed event rate for a fixed time, stamping each event with its publish time and
(with `ack`) timing the center's end-to-end confirmation on the device's ack topic.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker.topics import Channel, topic
from welfare.bench.payloads import make_batch

_MAX_RUN_S = 600.0  # a hard bound on any one load generator


@dataclass
class _Device:
    """One simulated kiosk and its connection."""

    facility_id: str
    device_id: str
    client: mqtt.Client
    connected: threading.Event


def _connect(spec: dict[str, Any], dev: dict[str, str], on_ack: Any) -> _Device:
    """Connect one device with its own account; subscribe to its acks when asked."""
    username = f"{dev['facility']}.{dev['device']}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=username, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(username, dev["password"])
    client.max_inflight_messages_set(int(spec.get("window", 20)))
    connected = threading.Event()
    ack_topic = topic(dev["facility"], dev["device"], Channel.ACK)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            if on_ack is not None:
                c.subscribe(ack_topic, qos=1)
            connected.set()

    client.on_connect = on_connect
    if on_ack is not None:
        client.on_message = on_ack
    client.connect("127.0.0.1", int(spec["port"]), keepalive=30)
    client.loop_start()
    return _Device(dev["facility"], dev["device"], client, connected)


def _ready() -> None:
    """Tell the parent we are connected (and built), then wait for its go."""
    print("ready", flush=True)
    sys.stdin.readline()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Publish the load described by `spec` and return what was sent (and acked)."""
    sent_at: dict[str, float] = {}
    ack_ms: list[float] = []
    lock = threading.Lock()
    want_ack = bool(spec.get("ack"))

    def on_ack(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        ids = json.loads(msg.payload)["committed"]
        with lock:
            for event_id in ids:
                at = sent_at.pop(event_id, None)
                if at is not None:
                    ack_ms.append((now - at) * 1000)

    devices = [_connect(spec, d, on_ack if want_ack else None) for d in spec["devices"]]
    for dev in devices:
        if not dev.connected.wait(20):
            raise RuntimeError(f"device {dev.device_id} could not connect")
    size = int(spec["events_per_message"])
    window = int(spec.get("window", 20)) * len(devices)
    pending: deque[mqtt.MQTTMessageInfo] = deque()
    messages = events = 0
    if spec["mode"] == "burst":
        per_device = int(spec["messages_per_device"])
        now = datetime.now(UTC)
        plan = [
            (
                dev,
                make_batch(
                    facility_id=dev.facility_id,
                    device_id=dev.device_id,
                    size=size,
                    at=now,
                    serial=i * len(devices) + k,
                )[1],
            )
            for i in range(per_device)
            for k, dev in enumerate(devices)
        ]
        _ready()
        first = time.time()
        for dev, payload in plan:
            pending.append(
                dev.client.publish(
                    topic(dev.facility_id, dev.device_id, Channel.ATTENDANCE), payload, qos=1
                )
            )
            messages += 1
            events += size
            while len(pending) > window:
                pending.popleft().wait_for_publish(timeout=60)
            if time.time() - first > _MAX_RUN_S:
                break
    else:
        rate = float(spec["rate_events_per_s"])
        duration = float(spec["duration_s"])
        interval = size / rate  # seconds between two messages of this process
        _ready()
        first = time.time()
        serial = 0
        while True:
            due = first + serial * interval
            now_s = time.time()
            if due - first >= min(duration, _MAX_RUN_S):
                break
            if due > now_s:
                time.sleep(due - now_s)
            dev = devices[serial % len(devices)]
            ids, payload = make_batch(
                facility_id=dev.facility_id,
                device_id=dev.device_id,
                size=size,
                at=datetime.now(UTC),
                serial=serial,
            )
            stamp = time.time()
            if want_ack:
                with lock:
                    for event_id in ids:
                        sent_at[event_id] = stamp
            pending.append(
                dev.client.publish(
                    topic(dev.facility_id, dev.device_id, Channel.ATTENDANCE), payload, qos=1
                )
            )
            serial += 1
            messages += 1
            events += size
            while len(pending) > window:
                pending.popleft().wait_for_publish(timeout=60)
    last = time.time()
    while pending:
        pending.popleft().wait_for_publish(timeout=60)
    if want_ack:  # wait (bounded) for the last confirmations
        deadline = time.time() + float(spec.get("ack_wait_s", 30))
        while time.time() < deadline:
            with lock:
                if not sent_at:
                    break
            time.sleep(0.05)
    for dev in devices:
        dev.client.disconnect()
        dev.client.loop_stop()
    return {
        "messages": messages,
        "events": events,
        "first_publish": first,
        "last_publish": last,
        "ack_ms": ack_ms,
        "unacked": len(sent_at),
    }


def main() -> int:
    """Entry point of the process."""
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    print(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
