"""Prometheus metrics, read at scrape time from the components' own counters.

Components keep plain integer counters (cheap on hot paths, no global registry); this collector
turns them into metric families when ``/metrics`` is scraped. A source is a name and a callable
returning ``{metric: value}``; names ending in ``_total`` are exported as counters, the rest as
gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["StatsCollector", "build_registry"]

StatsSource = Callable[[], Mapping[str, float]]


class StatsCollector(Collector):
    def __init__(self, sources: Mapping[str, StatsSource], *, namespace: str = "ctiserver") -> None:
        self._sources = dict(sources)
        self._namespace = namespace

    def collect(self) -> Iterator[Metric]:
        for source, read in self._sources.items():
            for name, value in sorted(read().items()):
                full = f"{self._namespace}_{source}_{name}"
                if name.endswith("_total"):
                    # prometheus_client appends _total itself.
                    counter = CounterMetricFamily(full[: -len("_total")], f"{source} {name}")
                    counter.add_metric([], value)
                    yield counter
                else:
                    gauge = GaugeMetricFamily(full, f"{source} {name}")
                    gauge.add_metric([], value)
                    yield gauge


def build_registry(sources: Mapping[str, StatsSource]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(sources))
    return registry
