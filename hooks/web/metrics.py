"""Prometheus metrics for the hook (`GET /metrics`).

Under gunicorn every worker is a process; with PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py
sets it) each one writes its samples to that directory and `/metrics` adds them up, so a
scrape sees the whole server whichever worker answers it. Without it (tests, the CLI) the
metrics live in this app's own registry.
"""
import os

import prometheus_client
from prometheus_client import multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Hook calls take a millisecond or so; Metacontroller gives up at 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        r = self.registry
        self.requests = prometheus_client.Counter(
            "dittofs_hook_requests_total", "Hook calls by route and outcome.", ["route", "outcome"], registry=r)
        self.latency = prometheus_client.Histogram(
            "dittofs_hook_request_duration_seconds", "Hook call latency by route and outcome.",
            ["route", "outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self.children = prometheus_client.Counter(
            "dittofs_hook_children_total", "Children returned by /sync, by kind.", ["kind"], registry=r)
        self.port_conflicts = prometheus_client.Counter(
            "dittofs_hook_port_conflicts_total", "Ports left out of a sync answer because they clashed.", registry=r)
        self.unknown_adapter_state = prometheus_client.Counter(
            "dittofs_hook_unknown_adapter_state_total", "Syncs answered with adapter state unknown.", registry=r)
        self.discovery_polls = prometheus_client.Counter(
            "dittofs_hook_discovery_polls_total", "Adapter discovery polls by outcome.", ["outcome"], registry=r)

        # Labelled children by their label values. `labels()` checks and converts its values on
        # every call; routes, outcomes and kinds are few and fixed, so each is looked up once.
        self._calls: dict[tuple[str, str], tuple] = {}
        self._kinds: dict[str, prometheus_client.Counter] = {}

    def observe_call(self, route: str, outcome: str, seconds: float) -> None:
        pair = self._calls.get((route, outcome))
        if pair is None:
            pair = self._calls[route, outcome] = (self.requests.labels(route, outcome),
                                                  self.latency.labels(route, outcome))
        pair[0].inc()
        pair[1].observe(seconds)

    def observe_sync(self, kinds: tuple[tuple[str, int], ...], status: dict) -> None:
        """Count one sync answer: its children by kind (`kinds`: (kind, count) pairs), and its status."""
        # One increment per kind, not per child: each is a write to a shared file under gunicorn.
        for kind, count in kinds:
            counter = self._kinds.get(kind)
            if counter is None:
                counter = self._kinds[kind] = self.children.labels(kind)
            counter.inc(count)
        conditions = {c["type"]: c for c in status["conditions"]}
        if "PortConflict" in conditions:
            self.port_conflicts.inc(conditions["PortConflict"]["message"].count("; ") + 1)
        if conditions["AdaptersKnown"]["status"] != "True":
            self.unknown_adapter_state.inc()

    def exposition(self) -> bytes:
        if os.environ.get(MULTIPROC_ENV):
            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return prometheus_client.generate_latest(registry)
        return prometheus_client.generate_latest(self.registry)
