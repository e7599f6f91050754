"""Health checks (each dependency, with a short timeout) and operator statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from vicw import container
from vicw.queues import queue_depths

CHECK_TIMEOUT_S = 2.0
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")


def _timed(check: Callable[[], dict | None]) -> dict:
    started = time.perf_counter()
    future = _pool.submit(check)
    try:
        info = future.result(timeout=CHECK_TIMEOUT_S) or {}
        status = info.pop("status", "ok")
    except FutureTimeout:
        return {"status": "error", "error": f"no answer within {CHECK_TIMEOUT_S}s"}
    except Exception as exc:  # a failing dependency is reported, never raised
        return {"status": "error", "error": type(exc).__name__}
    return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1), **info}


def _redis() -> dict:
    container.window_store().ping()
    return {}


def _queue() -> dict:
    s = container.settings()
    if not (s.offload_topic_arn or s.offload_queue_url):
        return {"status": "not_configured"}
    from vicw.aws import client

    if s.offload_queue_url:
        client("sqs").get_queue_attributes(QueueUrl=s.offload_queue_url, AttributeNames=["QueueArn"])
    if s.offload_topic_arn:
        client("sns").get_topic_attributes(TopicArn=s.offload_topic_arn)
    return {"outbox_pending": container.window_store().outbox_size()}


def _llm() -> dict:
    provider = container.llm()
    if provider is None:
        return {"status": "not_configured", "hint": "set VICW_LLM_API_URL or BEDROCK_MODEL_ID"}
    return provider.check()


def _vectors() -> dict:
    store = container.vector_store()
    if store is None:
        return {"status": "not_configured"}
    if not store.ping():  # the store reports unreachable instead of raising
        return {"status": "error", "error": "unreachable"}
    return {}


def _graph() -> dict:
    store = container.graph_store()
    if store is None:
        return {"status": "not_configured"}
    store.ping()
    return {}


CHECKS: dict[str, Callable[[], dict | None]] = {
    "redis": _redis, "queue": _queue, "llm": _llm, "vectors": _vectors, "graph": _graph,
}


def check_health() -> dict:
    results = {name: _timed(fn) for name, fn in CHECKS.items()}
    failing = sorted(name for name, r in results.items() if r["status"] == "error")
    return {
        "status": "unhealthy" if failing else "healthy",
        "failing": failing,
        "checks": results,
        "version": __import__("vicw").__version__,
    }


def _safe(fn: Callable[[], dict]) -> dict:
    try:
        return fn()
    except Exception as exc:  # stats are best effort per part
        return {"error": type(exc).__name__}


def collect_stats(tenant: str) -> dict:
    ws = container.window_store()
    s = container.settings()

    def window() -> dict:
        sessions = list(ws.sessions(tenant))
        return {"sessions": len(sessions), "budget": s.window_budget, "max_context_tokens": s.max_context_tokens,
                "offload_threshold": s.offload_threshold, "target_after_relief": s.target_after_relief,
                "hysteresis_threshold": s.hysteresis_threshold, "outbox_pending": ws.outbox_size()}

    def vectors() -> dict:
        store = container.vector_store()
        return {"points": store.count(tenant=tenant)} if store is not None else {"points": None, "status": "not_configured"}

    def graph() -> dict:
        store = container.graph_store()
        return store.counts(tenant) if store is not None else {"nodes": None, "edges": None, "status": "not_configured"}

    def workers() -> dict:
        from vicw.worker_stats import read_worker_stats

        return read_worker_stats(ws.r)

    return {
        "tenant": tenant,
        "window": _safe(window),
        "queues": queue_depths(container.queues()),
        "workers": _safe(workers),
        "vectors": _safe(vectors),
        "graph": _safe(graph),
    }
