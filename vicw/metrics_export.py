"""The Prometheus view of VICW's metrics, for runs outside Lambda (`vicw local`, a container).

The code records every metric once, with Powertools (`metrics.add_metric(name=M.X, ...)`). In
Lambda those calls become CloudWatch EMF lines; the provider in `vicw.observability` also hands
each call to `record()` here, which feeds a Prometheus registry served at `GET /metrics`.

How a Powertools metric becomes a Prometheus one is decided by name in `SPECS`: counters for
things that add up, histograms for per-request values (latencies in seconds, token counts).
A name missing from `SPECS` still gets exported (a counter for Count units, a histogram
otherwise), so a new metric never silently disappears locally.

Queue and outbox depths are not pushed by the code: they are read when Prometheus scrapes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from vicw.metric_names import M

if TYPE_CHECKING:
    from vicw.window_store import WindowStore

PREFIX = "vicw_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TOKEN_BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144)
SMALL_COUNT_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
RATIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25)


@dataclass(frozen=True)
class Spec:
    kind: Literal["counter", "histogram"]
    name: str  # without the vicw_ prefix; counters get "_total" from prometheus_client
    help: str
    scale: float = 1.0  # Powertools value * scale = Prometheus value (ms -> s, percent -> ratio)
    buckets: tuple[float, ...] = LATENCY_BUCKETS


def _ms(name: str, help_: str) -> Spec:
    return Spec("histogram", name, help_, scale=0.001)


SPECS: dict[str, Spec] = {
    M.CHAT_REQUESTS: Spec("counter", "chat_requests", "Chat turns answered"),
    M.CHAT_LATENCY_MS: _ms("chat_latency_seconds", "Whole chat turn, request in to reply out"),
    M.LLM_LATENCY_MS: _ms("llm_latency_seconds", "Time spent waiting for the LLM"),
    M.RETRIEVAL_LATENCY_MS: _ms("retrieval_latency_seconds", "Long-term memory retrieval before the LLM call"),
    M.HOT_PATH_LATENCY_MS: _ms("hot_path_latency_seconds", "Window update in Redis (load, relieve pressure, save)"),
    M.PROMPT_TOKENS: Spec("histogram", "prompt_tokens", "Tokens in the prompt sent to the LLM", buckets=TOKEN_BUCKETS),
    M.TOKENS_SAVED: Spec("counter", "tokens_saved", "Tokens kept out of prompts by offloading"),
    M.WINDOW_PRESSURE: Spec(
        "histogram",
        "window_pressure_ratio",
        "Window tokens / window budget after each update",
        scale=0.01,
        buckets=RATIO_BUCKETS,
    ),
    M.OFFLOADS: Spec("counter", "offloads", "Offload jobs created by the hot path"),
    M.OFFLOADED_TURNS: Spec("counter", "offloaded_turns", "Turns moved out of the window into offload jobs"),
    M.MEMORIES_INJECTED: Spec("histogram", "memories_injected", "Memories put into one prompt", buckets=SMALL_COUNT_BUCKETS),
    M.ECHO_REGENERATIONS: Spec("counter", "echo_regenerations", "Replies regenerated because they echoed earlier ones"),
    M.BOREDOM_WARNINGS: Spec("counter", "boredom_warnings", "Conversations flagged as going in circles"),
    M.LLM_ERRORS: Spec("counter", "llm_errors", "LLM calls that failed or timed out"),
    M.RECORDS_PROCESSED: Spec("counter", "cold_path_records_processed", "Cold-path SQS records processed"),
    M.RECORDS_FAILED: Spec("counter", "cold_path_records_failed", "Cold-path SQS records that failed (retried, then DLQ)"),
    M.EMBEDDING_LATENCY_MS: _ms("embedding_latency_seconds", "Embedding one offload job's chunks"),
    M.RATE_LIMITED: Spec("counter", "rate_limited", "Requests refused by the rate limiter"),
    M.AUTH_FAILURES: Spec("counter", "auth_failures", "Requests with a missing or unknown API key"),
    M.MEMORY_UNAVAILABLE: Spec(
        "counter", "memory_unavailable", "Turns answered without (part of) long-term memory: retrieval, a store or the model failed"
    ),
    M.TURNS_QUARANTINED: Spec(
        "counter", "cold_path_turns_quarantined", "Turns the cold path could not process and left out of their job (logged with traceback)"
    ),
    M.STREAMS_ABANDONED: Spec("counter", "streams_abandoned", "Streamed replies cut off by a client disconnect (not stored)"),
    M.MCP_TOOL_CALLS: Spec("counter", "mcp_tool_calls", "MCP tool calls that reached a tool"),
    M.MCP_TOOL_ERRORS: Spec("counter", "mcp_tool_errors", "MCP tool calls answered with a tool error (bad input, an outage, a crash)"),
}
# Read at scrape time by LiveCollector, never pushed through add_metric.
SCRAPED = {M.DLQ_DEPTH: "dlq_depth", M.OUTBOX_PENDING: "outbox_pending"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def derive_spec(name: str, unit: str) -> Spec:
    """A Prometheus shape for a metric name `SPECS` does not list."""
    snake = _snake(name)
    if unit == "Count":
        return Spec("counter", snake, f"{name} (Count)")
    if unit == "Milliseconds":
        return _ms(re.sub(r"_ms$", "", snake) + "_seconds", f"{name} in seconds")
    if unit == "Seconds":
        return Spec("histogram", re.sub(r"_s$", "", snake) + "_seconds", f"{name} in seconds")
    return Spec("histogram", snake, f"{name} ({unit})", buckets=TOKEN_BUCKETS)


class LiveCollector:
    """Gauges read when scraped: SQS queue depths (visible, in flight, DLQ) and the Redis outbox.

    Its sources (the queues, the window store) are given by the composition root through
    `PrometheusBridge.use_sources`; until then both read as down."""

    def __init__(self) -> None:
        self.queue_depths: Callable[[], dict[str, dict[str, Any]]] | None = None
        self.window_store: Callable[[], WindowStore] | None = None

    def collect(self) -> Any:
        depth = GaugeMetricFamily(PREFIX + "queue_messages", "Messages in a cold-path queue", labels=["queue", "state"])
        dlq = GaugeMetricFamily(PREFIX + SCRAPED[M.DLQ_DEPTH], "Messages in a cold-path dead-letter queue", labels=["queue"])
        up = GaugeMetricFamily(PREFIX + "scrape_source_up", "1 when a scraped source answered", labels=["source"])
        try:
            assert self.queue_depths is not None, "no queues given"
            depths = self.queue_depths()
            ok = True
            for name, entry in depths.items():
                ok = ok and "error" not in entry
                for state in ("visible", "in_flight"):
                    if entry.get(state) is not None:
                        depth.add_metric([name, state], entry[state])
                if entry.get("dlq") is not None:
                    dlq.add_metric([name], entry["dlq"])
            up.add_metric(["sqs"], 1 if ok else 0)
        except Exception:  # noqa: BLE001 - a scrape must answer even when SQS is down
            up.add_metric(["sqs"], 0)
        yield depth
        yield dlq
        outbox = GaugeMetricFamily(PREFIX + SCRAPED[M.OUTBOX_PENDING], "Offload jobs waiting in the Redis outbox")
        unconfirmed = GaugeMetricFamily(
            PREFIX + "outbox_unconfirmed", "Offload jobs sent but not yet confirmed by every cold-path function"
        )
        try:
            assert self.window_store is not None, "no window store given"
            ws = self.window_store()
            outbox.add_metric([], ws.outbox_size())
            unconfirmed.add_metric([], ws.outbox_unconfirmed_size())
            up.add_metric(["redis"], 1)
            yield outbox
            yield unconfirmed
        except Exception:  # noqa: BLE001
            up.add_metric(["redis"], 0)
        yield up


class PrometheusBridge:
    def __init__(self, registry: CollectorRegistry | None = None, *, live: bool = True) -> None:
        disable_created_metrics()  # the *_created series only add noise to every counter and histogram
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self._metrics: dict[str, tuple[Spec, Any]] = {}
        self._lock = threading.Lock()
        self.live: LiveCollector | None = None
        if live:
            self.live = LiveCollector()
            self.registry.register(self.live)

    def use_sources(self, queue_depths: Callable[[], dict[str, dict[str, Any]]], window_store: Callable[[], WindowStore]) -> None:
        """Where the scrape-time gauges read from (the composition root's builders)."""
        if self.live is not None:
            self.live.queue_depths, self.live.window_store = queue_depths, window_store

    def _metric(self, name: str, unit: str) -> tuple[Spec, Any]:
        found = self._metrics.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._metrics:
                spec = SPECS.get(name) or derive_spec(name, unit)
                if spec.kind == "counter":
                    metric: Any = Counter(PREFIX + spec.name, spec.help, registry=self.registry)
                else:
                    metric = Histogram(PREFIX + spec.name, spec.help, buckets=spec.buckets, registry=self.registry)
                self._metrics[name] = (spec, metric)
            return self._metrics[name]

    def record(self, name: str, unit: Any, value: float) -> None:
        unit_name = getattr(unit, "value", unit)
        spec, metric = self._metric(name.strip(), str(unit_name))
        scaled = float(value) * spec.scale
        if spec.kind == "counter":
            if scaled > 0:  # counters only go up; a zero (e.g. 0 failed records) still creates the series
                metric.inc(scaled)
        else:
            metric.observe(scaled)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_bridge: PrometheusBridge | None = None
_bridge_lock = threading.Lock()


def bridge() -> PrometheusBridge:
    """The process-wide bridge (one registry per process, like the Powertools metric set)."""
    global _bridge
    if _bridge is None:
        with _bridge_lock:
            if _bridge is None:
                _bridge = PrometheusBridge()
    return _bridge


def record(name: str, unit: Any, value: float) -> None:
    """Called for every `metrics.add_metric`; never raises into the code that measured something."""
    try:
        bridge().record(name, unit, value)
    except Exception:  # noqa: BLE001 - a metric must never fail a request
        return
