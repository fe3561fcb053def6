"""The gateway's Prometheus metrics, read from the store and supervisor at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from edge.runtime import Runtime
from edge.stats import Sample
from edge.store import COMMIT_BUCKETS


class GatewayCollector(Collector):
    """Turns the runtime's counters into metric families on each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        stats = self._runtime.store.stats()
        writer = stats.writer
        yield CounterMetricFamily(
            "edge_readings_written", "Readings committed to the store.", writer.readings_written
        )
        yield CounterMetricFamily(
            "edge_readings_refused",
            "Readings refused because too many waited for the disk.",
            writer.readings_refused,
        )
        yield GaugeMetricFamily(
            "edge_writer_queue_depth", "Readings accepted but not yet committed.",
            stats.queued_readings,
        )  # fmt: skip
        cumulative, running = [], 0
        for bound, count in zip(
            (*COMMIT_BUCKETS, float("inf")), writer.commit_buckets, strict=True
        ):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else str(bound), running))
        yield HistogramMetricFamily(
            "edge_writer_commit_seconds", "Duration of write transactions.",
            buckets=cumulative, sum_value=writer.commit_seconds_sum,
        )  # fmt: skip
        yield CounterMetricFamily(
            "edge_writer_failures", "Write transactions that failed or were refused by the disk.",
            writer.write_failures,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "edge_disk_full", "1 while the disk refuses writes.",
            0 if writer.disk_full_since_ms is None else 1,
        )  # fmt: skip
        size = GaugeMetricFamily(
            "edge_database_bytes", "Size of the database files.", labels=["file"]
        )
        size.add_metric(["db"], stats.file_bytes)
        size.add_metric(["wal"], stats.wal_bytes)
        yield size
        yield GaugeMetricFamily(
            "edge_readings_last_seq", "Sequence number of the newest reading.", stats.last_seq
        )
        yield GaugeMetricFamily(
            "edge_readings_synced_seq", "Highest sequence acknowledged upstream.", stats.synced_seq
        )
        restarts = CounterMetricFamily(
            "edge_task_restarts", "Restarts of supervised tasks after a crash.", labels=["task"]
        )
        up = GaugeMetricFamily(
            "edge_task_running", "1 while a supervised task runs.", labels=["task"]
        )
        for task in self._runtime.supervisor.tasks:
            restarts.add_metric([task.name], task.restarts)
            up.add_metric([task.name], int(task.running))
        yield restarts
        yield up
        yield from _families(
            sample for source in self._runtime.stats_sources for sample in source.samples()
        )


def _families(samples: Iterable[Sample]) -> Iterator[Metric]:
    """Group samples by metric name into families, keeping first-seen order."""
    families: dict[str, Metric] = {}
    for sample in samples:
        family = families.get(sample.name)
        if family is None:
            cls = CounterMetricFamily if sample.kind == "counter" else GaugeMetricFamily
            family = cls(sample.name, sample.help, labels=list(sample.labels))
            families[sample.name] = family
        family.add_metric(list(sample.labels.values()), sample.value)
    yield from families.values()


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)


def registry_for(runtime: Runtime) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding the gateway's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(runtime))
    return registry
