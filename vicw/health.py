"""Health checks (each dependency, with a short timeout) and operator statistics.

What each caller sees: `/health` without an admin tenant's key answers statuses only (overall and
per dependency: no provider, model, host, latency, error text or version); an admin tenant
(VICW_ADMIN_TENANTS) gets the details. `/stats` shows a tenant its own figures (sessions,
outbox jobs, points, graph nodes); queue depths, cold-path worker counters and the whole outbox
are everyone's activity, so only admin tenants see them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from vicw import container
from vicw.queues import queue_depths
from vicw.redaction import mask_credentials

_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")


def _timed(check: Callable[[], dict | None]) -> dict:
    started = time.perf_counter()
    timeout = container.settings().health_check_timeout  # HEALTH_CHECK_TIMEOUT
    future = _pool.submit(check)
    try:
        info = future.result(timeout=timeout) or {}
        status = info.pop("status", "ok")
    except FutureTimeout:
        return {"status": "error", "error": f"no answer within {timeout:g}s (HEALTH_CHECK_TIMEOUT)"}
    except Exception as exc:  # noqa: BLE001 - a failing dependency is reported, never raised
        return {"status": "error", "error": type(exc).__name__, "detail": mask_credentials(" ".join(str(exc).split()))[:300]}
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


def _embedder() -> dict:
    """The embedding model: the cold path needs it for every turn, retrieval for every query."""
    return container.embedder().check()


def _graph() -> dict:
    store = container.graph_store()
    if store is None:
        return {"status": "not_configured"}
    store.ping()
    return {}


CHECKS: dict[str, Callable[[], dict | None]] = {
    "redis": _redis, "queue": _queue, "llm": _llm, "vectors": _vectors, "graph": _graph, "embedder": _embedder,
}


def check_health(detail: bool = False) -> dict:
    """The overall status and each dependency's; with `detail` (admin callers) what each check found."""
    results = {name: _timed(fn) for name, fn in CHECKS.items()}
    failing = sorted(name for name, r in results.items() if r["status"] == "error")
    report = {"status": "unhealthy" if failing else "healthy", "failing": failing}
    if not detail:
        return {**report, "checks": {name: {"status": r["status"]} for name, r in results.items()}}
    return {**report, "checks": results, "version": __import__("vicw").__version__}


def _safe(fn: Callable[[], dict]) -> dict:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - stats are best effort per part
        return {"error": type(exc).__name__}


def outbox_jobs_of(ws, tenant: str) -> int:  # noqa: ANN001 - a WindowStore
    """How many jobs waiting to be sent in the (shared) outbox belong to `tenant`."""
    return outbox_counts_of(ws, tenant)[0]


def outbox_counts_of(ws, tenant: str) -> tuple[int, int]:  # noqa: ANN001 - a WindowStore
    """(waiting to be sent, sent and waiting for the consumers' confirmations) for `tenant`."""
    from vicw.window_store import OUTBOX, OUTBOX_SENT

    needle = json.dumps(tenant)
    ids = []
    for job_id, raw in ws.r.hscan_iter(OUTBOX, count=500):
        text = raw.decode() if isinstance(raw, bytes) else raw
        if needle in text and json.loads(text).get("tenant") == tenant:
            ids.append(job_id)
    if not ids:
        return 0, 0
    with ws.r.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.zscore(OUTBOX_SENT, job_id)
        sent = sum(score is not None for score in pipe.execute())
    return len(ids) - sent, sent


def collect_stats(tenant: str, admin: bool = False) -> dict:
    """The caller's own figures; with `admin`, also every tenant's queues, workers and outbox."""
    ws = container.window_store()
    s = container.settings()

    def window() -> dict:
        sessions = list(ws.sessions(tenant))
        out = {"sessions": len(sessions), "budget": s.window_budget, "max_context_tokens": s.max_context_tokens,
               "offload_threshold": s.offload_threshold, "target_after_relief": s.target_after_relief,
               "hysteresis_threshold": s.hysteresis_threshold}
        out["outbox_pending"], out["outbox_unconfirmed"] = outbox_counts_of(ws, tenant)
        if admin:
            out["outbox_pending_all_tenants"] = ws.outbox_size()
            out["outbox_unconfirmed_all_tenants"] = ws.outbox_unconfirmed_size()
        return out

    def vectors() -> dict:
        store = container.vector_store()
        return {"points": store.count(tenant=tenant)} if store is not None else {"points": None, "status": "not_configured"}

    def graph() -> dict:
        store = container.graph_store()
        return store.counts(tenant) if store is not None else {"nodes": None, "edges": None, "status": "not_configured"}

    def workers() -> dict:
        from vicw.worker_stats import read_worker_stats

        return read_worker_stats(ws.r)

    report = {"tenant": tenant, "scope": "all tenants" if admin else "tenant", "window": _safe(window)}
    if admin:
        report["queues"] = queue_depths(container.queues())
        report["workers"] = _safe(workers)
    return {**report, "vectors": _safe(vectors), "graph": _safe(graph)}
