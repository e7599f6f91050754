"""Forgetting a session (or a whole tenant) in every store, with a receipt of what was removed where.

What a session leaves behind, and where it goes:

* Redis: the window and every other key under its prefix (`vicw.window_store.session_prefix`);
  offload jobs still waiting in the outbox; the cold path's idempotency records for its jobs.
* S3: the archived jobs (`JobArchive.delete_session`).
* Qdrant: its points (`delete_session`); Neo4j/FalkorDB: its Session, Turn and StateItem nodes and
  the entities no other session mentions (`delete_session`).
* Jobs already on a queue: a tombstone (`vicw:tombstone:{tenant}:{session}`) holding the time of
  the deletion makes the cold path skip every job of that session created up to that time. Jobs
  created later (the session id used again) are processed normally.

The tombstone is written first, so a job picked up while the stores are being emptied is dropped
instead of writing again behind the deletion. A job already past the check when the tombstone
lands can still finish its write: calling the deletion again (it is idempotent) removes it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from vicw.models import OffloadJob
from vicw.observability import logger
from vicw.window_store import OUTBOX, session_prefix

if TYPE_CHECKING:
    from vicw.window_store import WindowStore


@dataclass(frozen=True)
class Stores:
    """Every store a deletion must reach: the composition root's builders, called when the deletion
    runs (so a store that is down fails that deletion, not the caller's set-up). Each returns None
    when its store is not configured; `memory_source` returns this process's retrieval source only
    if one was built (its cache is cleared)."""

    windows: Callable[[], WindowStore]
    archive: Callable[[], Any]
    vectors: Callable[[], Any]
    graph: Callable[[], Any]
    memory_source: Callable[[], Any]

TOMBSTONE_PREFIX = "vicw:tombstone"
# Longer than a job can wait before it is processed: 4 days on a queue, then up to 14 days in a DLQ
# before `vicw replay dlq` puts it back (template.yaml MessageRetentionPeriod).
TOMBSTONE_TTL_SECONDS = 30 * 24 * 3600


# --- tombstones (read by the cold path) ------------------------------------------------------------
def tombstone_key(tenant: str, session_id: str | None = None) -> str:
    """Per session, or (session_id None) for the whole tenant."""
    return f"{TOMBSTONE_PREFIX}:{tenant}:{session_id}" if session_id is not None else f"{TOMBSTONE_PREFIX}-tenant:{tenant}"


def write_tombstone(client: redis.Redis, tenant: str, session_id: str | None, at: float | None = None) -> float:
    at = time.time() if at is None else at
    client.set(tombstone_key(tenant, session_id), repr(at), ex=TOMBSTONE_TTL_SECONDS)
    return at


def is_forgotten(client: redis.Redis, job: OffloadJob) -> bool:
    """True if the job's session (or tenant) was deleted after the job was created.

    Raises redis.RedisError when Redis cannot answer: the caller must not write what it cannot check.
    """
    keys = [tombstone_key(job.tenant)]
    if job.session_id is not None:
        keys.append(tombstone_key(job.tenant, job.session_id))
    created = job.created_at.timestamp()
    return any(raw is not None and created <= float(raw) for raw in client.mget(keys))


# --- idempotency records ---------------------------------------------------------------------------
def idempotency_hash(job_id: str, replay_id: str = "") -> str:
    """The hash Powertools keys a cold-path record on (`<function>#<hash>`, see vicw.cold_path):
    md5 of the JSON of the `[job_id, replay]` selection, keys sorted."""
    return hashlib.md5(json.dumps([job_id, replay_id], sort_keys=True).encode(), usedforsecurity=False).hexdigest()


def delete_idempotency_records(client: redis.Redis, job_ids: Iterable[str]) -> int:
    """Remove the cold path's "already done" records for these jobs (of every function).

    Job ids are deterministic, so a session id used again after a deletion produces the same ids;
    a surviving record would make the cold path skip the new jobs. Records of archive replays
    (random replay ids) are left to expire: no new job can ever carry those ids.
    """
    wanted = {idempotency_hash(j) for j in job_ids}
    if not wanted:
        return 0
    doomed = []
    for key in client.scan_iter(match="*#*", count=1000):
        name = key.decode()
        if name.rsplit("#", 1)[-1].removesuffix(":lock") in wanted:
            doomed.append(key)
    return int(client.delete(*doomed)) if doomed else 0


# --- the outbox ------------------------------------------------------------------------------------
def _outbox_jobs(client: redis.Redis, tenant: str, session_id: str | None) -> list[OffloadJob]:
    """Outbox jobs of a tenant (session_id None) or of one session."""
    found = []
    for _, raw in client.hscan_iter(OUTBOX, count=500):
        try:
            job = OffloadJob.model_validate_json(raw)
        except ValueError:
            continue
        if job.tenant == tenant and (session_id is None or job.session_id == session_id):
            found.append(job)
    return found


def _drop_outbox(client: redis.Redis, jobs: list[OffloadJob]) -> int:
    if not jobs:
        return 0
    from vicw.window_store import WindowStore

    store = WindowStore(client)
    removed = 0
    for job in jobs:  # sent or not: with its confirmations and send count
        removed += int(store.outbox_done(job.job_id) or 0)
    return removed


# --- the cold-path stores --------------------------------------------------------------------------
def _archived_job_ids(archive: Any, tenant: str, session_id: str | None) -> set[str]:
    # Archive keys end in "{epoch ms}-{job id}.json".
    return {key.rsplit("/", 1)[-1].removesuffix(".json").split("-", 1)[-1] for key in archive.iter_keys(tenant, session_id)}


def _vector_job_ids(vectors: Any, tenant: str, session_id: str | None) -> set[str]:
    return {r.job_id for r in vectors.scroll(tenant, session_id, include_tenant_wide_documents=False)}


def _forget_in_process_caches(source: Any, tenant: str, session_id: str | None) -> None:
    """This process's retrieval cache (other processes notice through their change signal)."""
    cache = getattr(source, "cache", None)
    if cache is None:
        return
    if session_id is not None and hasattr(cache, "forget"):
        cache.forget(tenant, session_id)
    elif session_id is None and hasattr(cache, "_entries"):
        for key in [k for k in list(cache._entries) if k[0] == tenant]:  # noqa: SLF001 - the cache has no per-tenant listing
            cache.forget(*key)


def _forget(stores: Stores, tenant: str, session_id: str | None) -> dict[str, Any]:
    ws = stores.windows()
    r = ws.r
    deleted_at = write_tombstone(r, tenant, session_id)
    archive, vectors, graph = stores.archive(), stores.vectors(), stores.graph()

    outbox = _outbox_jobs(r, tenant, session_id)
    job_ids = {j.job_id for j in outbox}
    if archive is not None:
        job_ids |= _archived_job_ids(archive, tenant, session_id)
    if vectors is not None:
        job_ids |= _vector_job_ids(vectors, tenant, session_id)

    deleted: dict[str, Any] = {"outbox_jobs": _drop_outbox(r, outbox)}
    if session_id is not None:
        deleted["window_keys"] = ws.delete(tenant, session_id)
    else:
        keys = list(r.scan_iter(match=f"vicw:t:{tenant}:*", count=1000))
        deleted["window_keys"] = int(r.delete(*keys)) if keys else 0
    if session_id is not None:
        deleted["archive"] = archive.delete_session(tenant, session_id) if archive is not None else None
        deleted["vectors"] = vectors.delete_session(tenant, session_id) if vectors is not None else None
        deleted["graph"] = graph.delete_session(tenant, session_id) if graph is not None else None
    else:
        deleted["archive"] = archive.delete_tenant(tenant) if archive is not None else None
        deleted["vectors"] = vectors.delete_tenant(tenant) if vectors is not None else None
        deleted["graph"] = graph.delete_tenant(tenant) if graph is not None else None
    deleted["idempotency_records"] = delete_idempotency_records(r, job_ids)
    _forget_in_process_caches(stores.memory_source(), tenant, session_id)
    return {
        "tenant": tenant,
        "deleted": deleted,
        "tombstone": {"key": tombstone_key(tenant, session_id), "deleted_at": deleted_at, "ttl_seconds": TOMBSTONE_TTL_SECONDS},
    }


def forget_session(stores: Stores, tenant: str, session_id: str) -> dict[str, Any]:
    """Delete one session of one tenant from every store. Safe to call again (and on an unknown id)."""
    receipt = {"session_id": session_id, **_forget(stores, tenant, session_id)}
    logger.info("session forgotten", extra={"tenant": tenant, "session_id": session_id, "deleted": receipt["deleted"]})
    return receipt


def forget_tenant(stores: Stores, tenant: str) -> dict[str, Any]:
    """Delete everything a tenant ever stored (sessions, documents, graph), in every store."""
    receipt = _forget(stores, tenant, None)
    logger.info("tenant forgotten", extra={"tenant": tenant, "deleted": receipt["deleted"]})
    return receipt


__all__ = [
    "TOMBSTONE_TTL_SECONDS",
    "Stores",
    "delete_idempotency_records",
    "forget_session",
    "forget_tenant",
    "idempotency_hash",
    "is_forgotten",
    "session_prefix",
    "tombstone_key",
    "write_tombstone",
]
