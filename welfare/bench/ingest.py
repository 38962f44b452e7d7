"""Ingest: simulated kiosks -> Mosquitto -> consumer(s) -> PostgreSQL, Smart Welfare vs. naive.

Throughput: every load generator publishes its prebuilt messages as fast as its in-flight window
allows; the figure is events stored / (last commit - first publish), i.e. sustained end to end,
broker and database included. Latency: a paced load at a fixed event rate whose events carry
their publish time as `occurred_at`; publish-to-commit is `received_at - occurred_at` in the
database (received_at is now() of the inserting transaction, on the same clock), and for Smart
Welfare also publish-to-confirmation as the device sees it (the ack on its ack topic).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from welfare.bench.bed import (
    Bed,
    RssSampler,
    commit_span,
    db_latency_ms,
    wait_for_rows,
)
from welfare.bench.results import Report, Row, percentile, ratio

_LOG = logging.getLogger(__name__)
GROUP = "1. Ingest (Mosquitto → consumer → PostgreSQL)"


@dataclass(frozen=True)
class IngestScale:
    """Counts of one run."""

    load_processes: int = 2
    events_per_message: int = 100
    smart_events: int = 200_000
    naive_events: int = 10_000
    consumers: tuple[int, ...] = (1, 2, 3)
    latency_rate: float = 5_000.0
    latency_events_per_message: int = 10
    latency_duration_s: float = 15.0
    naive_latency_duration_s: float = 3.0
    drain_timeout_s: float = 180.0


QUICK = IngestScale(
    load_processes=1,
    events_per_message=20,
    smart_events=2_000,
    naive_events=300,
    consumers=(1, 2),
    latency_rate=400.0,
    latency_events_per_message=4,
    latency_duration_s=1.5,
    naive_latency_duration_s=0.5,
    drain_timeout_s=60.0,
)


def _burst_specs(bed: Bed, scale: IngestScale, events: int) -> list[dict[str, Any]]:
    """Split `events` over the devices and load processes (whole messages per device)."""
    procs = scale.load_processes
    per_msg = scale.events_per_message
    per_device = max(1, events // (len(bed.devices) * per_msg))
    return [
        {
            "mode": "burst",
            "devices": bed.device_specs(bed.devices[k::procs]),
            "events_per_message": per_msg,
            "messages_per_device": per_device,
            "window": 20,
        }
        for k in range(procs)
    ]


def _paced_specs(
    bed: Bed, scale: IngestScale, duration: float, *, ack: bool
) -> list[dict[str, Any]]:
    """A paced load of `scale.latency_rate` events/s in total."""
    procs = scale.load_processes
    return [
        {
            "mode": "paced",
            "devices": bed.device_specs(bed.devices[k::procs]),
            "events_per_message": scale.latency_events_per_message,
            "rate_events_per_s": scale.latency_rate / procs,
            "duration_s": duration,
            "window": 50,
            "ack": ack,
            "ack_wait_s": 30,
        }
        for k in range(procs)
    ]


def _throughput(
    bed: Bed, scale: IngestScale, *, consumers: int, naive: bool, events: int
) -> dict[str, Any]:
    """One throughput phase; returns rate, counts and the consumers' peak RSS."""
    url = bed.new_database("naive" if naive else f"smart{consumers}")
    ids = [f"{'naive' if naive else 'ingest'}-t{consumers}-{k}" for k in range(consumers)]
    procs = bed.start_consumers(url, ids, naive=naive)
    sampler = RssSampler([p.pid for p in procs])
    try:
        loads = bed.run_load(_burst_specs(bed, scale, events))
        sent = sum(r["events"] for r in loads)
        stored, _ = wait_for_rows(url, sent, timeout=scale.drain_timeout_s)
    finally:
        peaks = sampler.stop()
        bed.stop(procs)
        bed.clear_sessions(ids)
    first_publish = min(r["first_publish"] for r in loads)
    last_publish = max(r["last_publish"] for r in loads)
    _first_commit, last_commit, _n = commit_span(url)
    elapsed = max(last_commit - first_publish, 1e-6)
    result = {
        "consumers": consumers,
        "naive": naive,
        "sent_events": sent,
        "stored_events": stored,
        "complete": stored >= sent,
        "publish_s": last_publish - first_publish,
        "end_to_end_s": elapsed,
        "events_per_s": stored / elapsed,
        "publish_events_per_s": sent / max(last_publish - first_publish, 1e-6),
        "peak_rss_mb": max(peaks.values()) / 2**20 if peaks else None,
    }
    _LOG.info("throughput %s", result)
    return result


def _latency(bed: Bed, scale: IngestScale, *, naive: bool) -> dict[str, Any]:
    """One paced phase; publish-to-commit (database) and, for Smart Welfare, to the device's ack."""
    url = bed.new_database("naive_lat" if naive else "smart_lat")
    ids = ["naive-lat" if naive else "ingest-lat"]
    procs = bed.start_consumers(url, ids, naive=naive)
    duration = scale.naive_latency_duration_s if naive else scale.latency_duration_s
    try:
        loads = bed.run_load(_paced_specs(bed, scale, duration, ack=not naive))
        sent = sum(r["events"] for r in loads)
        stored, _ = wait_for_rows(url, sent, timeout=scale.drain_timeout_s)
    finally:
        bed.stop(procs)
        bed.clear_sessions(ids)
    first = min(r["first_publish"] for r in loads)
    last = max(r["last_publish"] for r in loads)
    acks: list[float] = [ms for r in loads for ms in r["ack_ms"]]
    result = {
        "naive": naive,
        "offered_events_per_s": sent / max(last - first, 1e-6),
        "duration_s": last - first,
        "sent_events": sent,
        "stored_events": stored,
        "db_ms": db_latency_ms(url),
        "ack_ms": {
            "p50": percentile(acks, 50),
            "p99": percentile(acks, 99),
            "max": max(acks) if acks else None,
            "acked": len(acks),
            "unacked": sum(r["unacked"] for r in loads),
        },
    }
    _LOG.info("latency %s", {k: v for k, v in result.items()})
    return result


def run(bed: Bed, scale: IngestScale, report: Report) -> None:
    """Measure the ingest and add its rows to `report`."""
    started = time.monotonic()
    naive = _throughput(bed, scale, consumers=1, naive=True, events=scale.naive_events)
    smart = {
        n: _throughput(bed, scale, consumers=n, naive=False, events=scale.smart_events)
        for n in scale.consumers
    }
    lat = _latency(bed, scale, naive=False)
    naive_lat = _latency(bed, scale, naive=True)
    report.details["ingest"] = {
        "scale": scale.__dict__,
        "devices": len(bed.devices),
        "naive_throughput": naive,
        "smart_throughput": {str(k): v for k, v in smart.items()},
        "smart_latency": lat,
        "naive_latency": naive_lat,
        "wall_s": time.monotonic() - started,
    }
    one = smart[scale.consumers[0]]
    r1 = ratio(one["events_per_s"], naive["events_per_s"])
    note = (
        f"{len(bed.devices)} devices, {scale.events_per_message} events/message; "
        f"naive commits each row"
    )
    if not one["complete"]:
        note += f"; only {one['stored_events']} of {one['sent_events']} stored in time"
    report.rows.append(
        Row(
            GROUP,
            "sustained events/s, 1 consumer (publish → commit)",
            one["events_per_s"],
            "events/s",
            "naive",
            naive["events_per_s"],
            r1,
            "≥ 20,000/s and ≥ 20× naive",
            one["events_per_s"] >= 20_000 and (r1 or 0) >= 20,
            note,
        )
    )
    for n in scale.consumers[1:]:
        res = smart[n]
        report.rows.append(
            Row(
                GROUP,
                f"sustained events/s, {n} consumers (MQTT v5 shared subscription)",
                res["events_per_s"],
                "events/s",
                "1 consumer",
                one["events_per_s"],
                ratio(res["events_per_s"], one["events_per_s"]),
                "≥ 20,000/s",
                res["events_per_s"] >= 20_000,
                f"naive ratio {ratio(res['events_per_s'], naive['events_per_s']) or 0:.0f}×",
            )
        )
    rate = f"{lat['offered_events_per_s']:,.0f} events/s offered"
    for q in ("p50", "p99"):
        value = lat["db_ms"][q]
        nval = naive_lat["db_ms"][q]
        report.rows.append(
            Row(
                GROUP,
                f"publish → commit {q} at {scale.latency_rate:,.0f} events/s",
                value,
                "ms",
                "naive",
                nval,
                ratio(nval, value),
                "p99 ≤ 250 ms" if q == "p99" else None,
                (value is not None and value <= 250) if q == "p99" else None,
                f"{rate}, {scale.latency_events_per_message} events/message; "
                f"naive offered the same rate for {scale.naive_latency_duration_s:g} s"
                + (
                    ""
                    if naive_lat["stored_events"] >= naive_lat["sent_events"]
                    else f" (stored {naive_lat['stored_events']}/{naive_lat['sent_events']})"
                ),
            )
        )
    for q in ("p50", "p99"):
        report.rows.append(
            Row(
                GROUP,
                f"publish → confirmation received by the device, {q}",
                lat["ack_ms"][q],
                "ms",
                note=f"end to end incl. the ack back through the broker; "
                f"{lat['ack_ms']['acked']:,} events, {lat['ack_ms']['unacked']:,} unconfirmed",
            )
        )
    report.rows.append(
        # Memory sits in the benchmark's own group: a run with --only replaces whole groups,
        # so a group shared by two benchmarks would lose the other's row.
        Row(
            GROUP,
            "peak RSS of one ingest consumer under full load",
            one["peak_rss_mb"],
            "MB",
            "naive bridge",
            naive["peak_rss_mb"],
            ratio(one["peak_rss_mb"], naive["peak_rss_mb"]),
            note=f"during the 1-consumer throughput run ({one['sent_events']:,} events)",
        )
    )
