"""Prometheus metrics of the ingest: this process's consumer, and the totals of all of them.

A consumer process's own registry holds what only it can see (batch latency, queue depth);
the totals every consumer adds up in `ingest_metrics`, in the same transaction as the data,
are read from the database at scrape time, so one scrape of the central service counts the
messages of every worker, across restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from ingest_api.core.db import Conn
from ingest_api.ingest import reads

# Batches are committed in milliseconds when all is well; seconds mean a queue or a slow disk.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ConsumerMetrics:
    """The metrics one consumer keeps in memory (its own registry: tests run many)."""

    def __init__(
        self, consumer_id: str, *, queue_depth: Callable[[], int], connected: Callable[[], bool]
    ) -> None:
        """Create the consumer's metrics, labelled with its id."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.batch_latency = Histogram(
            "welfare_ingest_batch_latency_seconds",
            "From the arrival of a batch's oldest message to the commit of its rows",
            ["consumer"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(consumer_id)
        self.batch_write = Histogram(
            "welfare_ingest_batch_write_seconds",
            "Validating, writing and committing one batch",
            ["consumer"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(consumer_id)
        Gauge(
            "welfare_ingest_queue_depth",
            "Messages received from the broker, waiting for the writer",
            ["consumer"],
            registry=self.registry,
        ).labels(consumer_id).set_function(queue_depth)
        Gauge(
            "welfare_ingest_broker_connected",
            "1 while the consumer is subscribed to the broker",
            ["consumer"],
            registry=self.registry,
        ).labels(consumer_id).set_function(lambda: float(connected()))


class Snapshot(Collector):
    """A collector of metric families read once (at scrape time) from the database."""

    def __init__(self, families: Iterable[object]) -> None:
        """Hold the families to expose."""
        self._families = list(families)

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        """The families, as read."""
        return iter(self._families)


def ingest_totals(conn: Conn) -> list[CounterMetricFamily]:
    """The ingest's counters of every consumer, from `ingest_metrics`."""
    counts = reads.metrics(conn)
    messages = CounterMetricFamily(
        "welfare_ingest_messages", "MQTT messages taken by the ingest (all consumers)"
    )
    messages.add_metric([], counts.get("messages", 0))
    written = CounterMetricFamily(
        "welfare_ingest_events_written", "Attendance rows written (new events)"
    )
    written.add_metric([], counts.get("events.new", 0))
    duplicates = CounterMetricFamily(
        "welfare_ingest_events_duplicate", "Events received again and skipped (already stored)"
    )
    duplicates.add_metric([], counts.get("events.duplicate", 0))
    dead = CounterMetricFamily(
        "welfare_ingest_dead_letters", "Messages kept as dead letters, by reason", labels=["reason"]
    )
    flags = CounterMetricFamily(
        "welfare_ingest_event_flags", "Events stored with a flag, by flag", labels=["flag"]
    )
    for name, value in sorted(counts.items()):
        kind, _, label = name.partition(".")
        if kind == "dead_letter":
            dead.add_metric([label], value)
        elif kind == "flag":
            flags.add_metric([label], value)
    return [messages, written, duplicates, dead, flags]
