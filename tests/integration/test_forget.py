"""Forgetting, checked store by store: DELETE /sessions/{id}, DELETE /tenants/{t}, tombstones for
queued jobs, and the retention sweep — with the real cold path (SQS pollers -> offload and graph
handlers -> S3, Qdrant local mode, FalkorDB) running in this process.

Every check lists the store itself afterwards (Redis SCAN, Qdrant count/scroll, Cypher counts,
S3 ListObjectsV2); nothing here trusts a receipt alone.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import redis

from tests.conftest import ADMIN_KEY, API_KEY, API_KEY_B, running_vicw, wait_until
from vicw import container
from vicw.aws import client as aws_client
from vicw.forget import idempotency_hash, tombstone_key
from vicw.models import OffloadJob, Turn, utcnow
from vicw.window_store import OUTBOX, session_prefix

COLD_ENV = {
    "MAX_CONTEXT_TOKENS": "1024",
    "LLM_MAX_TOKENS": "128",
    "VICW_ADMIN_TENANTS": "ops",
    "COLD_PATH_WORKERS": "1",
    "COLD_PATH_BATCH_SIZE": "10",
}
PEOPLE = ["Alice Walker", "Bruno Costa", "Chen Wei", "Dara Okafor"]
CITIES = ["Lisbon", "Nairobi", "Osaka", "Quito"]


def sentence(tag: str, i: int) -> str:
    return (f"Note {i} of {tag}: I met {PEOPLE[i % 4]} in {CITIES[i % 4]} to plan the {tag} project launch; "
            f"I decided to book the venue by Friday and budget {100 + i} euros.")




# --- direct views of every store -------------------------------------------------------------------
def graph_query(query: str, params: dict) -> int:
    from falkordb import FalkorDB

    s = container.settings()
    db = FalkorDB.from_url(s.falkordb_url)
    rows = db.select_graph(s.graph_name).query(query, params).result_set
    return int(rows[0][0]) if rows else 0


def graph_nodes(tenant: str, session_id: str | None = None) -> int:
    if session_id is None:
        return graph_query("MATCH (n {tenant: $t}) RETURN count(n)", {"t": tenant})
    return graph_query("MATCH (n {tenant: $t, session_id: $s}) RETURN count(n)", {"t": tenant, "s": session_id})


def s3_keys(tenant: str, session_id: str | None = None) -> list[str]:
    prefix = f"jobs/{tenant}/" + (f"sessions/{session_id}/" if session_id else "")
    resp = aws_client("s3").list_objects_v2(Bucket=container.settings().archive_bucket, Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]


def redis_keys(r: redis.Redis, pattern: str) -> list[str]:
    return [k.decode() for k in r.scan_iter(match=pattern, count=1000)]


def outbox_sessions(r: redis.Redis) -> set[tuple[str, str | None]]:
    return {(j.tenant, j.session_id) for j in (OffloadJob.model_validate_json(v) for v in r.hvals(OUTBOX))}


def idempotency_keys(r: redis.Redis, job_ids: set[str]) -> list[str]:
    hashes = {idempotency_hash(j) for j in job_ids}
    return [k for k in redis_keys(r, "*#*") if k.rsplit("#", 1)[-1] in hashes]


def vector_job_ids(tenant: str, session_id: str) -> set[str]:
    return {m.job_id for m in container.vector_store().scroll(tenant, session_id, include_tenant_wide_documents=False)}


def footprint(r: redis.Redis, tenant: str, session_id: str) -> dict:
    """How much of one session each store holds, read from the stores themselves."""
    return {
        "redis": len(redis_keys(r, session_prefix(tenant, session_id) + ":*")),
        "vectors": container.vector_store().count(tenant, session_id),
        "graph": graph_nodes(tenant, session_id),
        "archive": len(s3_keys(tenant, session_id)),
        "outbox": int((tenant, session_id) in outbox_sessions(r)),
    }


# --- a running VICW with its cold path ---------------------------------------------------------------
@pytest.fixture(scope="module")
def cold_vicw(tmp_path_factory, redis_url, moto_endpoint, vicw_env, scripted_llm):
    from vicw.aws_resources import ensure_local_resources

    env = {**vicw_env, **COLD_ENV}  # ADMIN_KEY (tenant "ops") is in vicw_env's key table
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    resources = ensure_local_resources()
    sqs = aws_client("sqs")
    for name in ("OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL"):  # jobs left by other tests' hot-path-only runs
        sqs.purge_queue(QueueUrl=resources[name])
    scripted_llm.reset()
    with running_vicw(tmp_path_factory.mktemp("cold"), redis_url, moto_endpoint, env, cold_path=True) as local:
        yield local
    r.close()


@pytest.fixture(scope="module")
def rds(cold_vicw) -> redis.Redis:
    return container.window_store().r


def http(cold_vicw, key: str) -> httpx.Client:
    return httpx.Client(base_url=cold_vicw.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def seed_session(cold_vicw, key: str, tenant: str, session_id: str, n: int = 36) -> dict:
    """Append `n` turns (enough to shed some), then wait until every store holds the shed ones."""
    with http(cold_vicw, key) as c:
        msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": sentence(session_id, i)} for i in range(n)]
        r = c.post(f"/sessions/{session_id}/messages", json={"messages": msgs})
        assert r.status_code == 200, r.text
        stats = c.get(f"/sessions/{session_id}").json()
    assert stats["offloaded_turns"] > 0, stats
    wait_drained(tenant, session_id, stats)
    return stats


def wait_drained(tenant: str, session_id: str, stats: dict, timeout: float = 90) -> None:
    ws = container.window_store()

    def done() -> dict | None:
        fp = footprint(ws.r, tenant, session_id)
        turns = graph_query("MATCH (t:Turn {tenant: $t, session_id: $s}) RETURN count(t)", {"t": tenant, "s": session_id})
        ok = (fp["vectors"] >= stats["offloaded_turns"] and fp["archive"] == stats["offloaded_jobs"]
              and turns == stats["offloaded_turns"] and fp["outbox"] == 0)
        return fp if ok else None

    wait_until(done, timeout)


@pytest.fixture(scope="module")
def seeded(cold_vicw):
    """tenant-a: sessions keep-a, gone-a, old-a; tenant-b: keep-b, gone-b (all drained)."""
    out = {}
    for key, tenant, sid in ((API_KEY, "tenant-a", "keep-a"), (API_KEY, "tenant-a", "gone-a"), (API_KEY, "tenant-a", "old-a"),
                             (API_KEY_B, "tenant-b", "keep-b"), (API_KEY_B, "tenant-b", "gone-b")):
        out[(tenant, sid)] = seed_session(cold_vicw, key, tenant, sid)
    return out


# --- the tests ------------------------------------------------------------------------------------------
def test_delete_session_removes_it_from_every_store(cold_vicw, seeded, rds):
    before_keep = footprint(rds, "tenant-a", "keep-a")
    before_other = footprint(rds, "tenant-b", "gone-b")
    gone = footprint(rds, "tenant-a", "gone-a")
    assert all(gone[s] > 0 for s in ("redis", "vectors", "graph", "archive")), gone
    job_ids = vector_job_ids("tenant-a", "gone-a")
    kept_ids = vector_job_ids("tenant-a", "keep-a")
    # The hash forget computes is the one Powertools wrote for both cold-path functions.
    assert len(idempotency_keys(rds, job_ids)) == 2 * len(job_ids), redis_keys(rds, "*#*")

    with http(cold_vicw, API_KEY) as c:
        receipt = c.delete("/sessions/gone-a").json()
    d = receipt["deleted"]
    assert d["vectors"] == gone["vectors"] and d["archive"] == gone["archive"] and d["window_keys"] == gone["redis"]
    assert d["graph"]["nodes"] >= gone["graph"] and d["idempotency_records"] == 2 * len(job_ids)

    assert footprint(rds, "tenant-a", "gone-a") == {"redis": 0, "vectors": 0, "graph": 0, "archive": 0, "outbox": 0}
    assert list(container.vector_store().scroll("tenant-a", "gone-a", include_tenant_wide_documents=False)) == []
    assert graph_query("MATCH (:Entity {tenant: $t})-[m:MENTIONED_IN]->(:Session {session_id: $s}) RETURN count(m)",
                       {"t": "tenant-a", "s": "gone-a"}) == 0
    assert idempotency_keys(rds, job_ids) == []
    assert rds.get(tombstone_key("tenant-a", "gone-a")) is not None
    assert rds.ttl(tombstone_key("tenant-a", "gone-a")) >= 18 * 86400  # queue (4 d) + DLQ (14 d) retention
    # Everything else is intact: the tenant's other session, the other tenant, their idempotency records.
    assert footprint(rds, "tenant-a", "keep-a") == before_keep
    assert footprint(rds, "tenant-b", "gone-b") == before_other
    assert len(idempotency_keys(rds, kept_ids)) == 2 * len(kept_ids)
    # Shared entities survive while another session still mentions them.
    assert graph_query("MATCH (e:Entity {tenant: $t, key: 'lisbon'}) RETURN count(e)", {"t": "tenant-a"}) == 1


def test_deleting_again_or_an_unknown_session_is_harmless(cold_vicw, seeded):
    with http(cold_vicw, API_KEY) as c:
        for sid in ("gone-a", "never-existed"):
            r = c.delete(f"/sessions/{sid}")
            assert r.status_code == 200, r.text
            d = r.json()["deleted"]
            assert (d["window_keys"], d["vectors"], d["archive"], d["outbox_jobs"]) == (0, 0, 0, 0)


def test_queued_jobs_of_a_deleted_session_become_no_ops(cold_vicw, seeded, rds):
    """A job created before the deletion (still on a queue, or replayed from a DLQ) writes nothing;
    the same session id used again afterwards is stored normally, although its job ids repeat."""
    from vicw.bootstrap import graph_worker as build_graph_worker
    from vicw.bootstrap import offload_worker as build_offload_worker

    created = utcnow() - timedelta(minutes=5)
    turns = [Turn(seq=i, role="user", content=sentence("gone-a", i), timestamp=created, tokens=30) for i in range(3)]
    stale = OffloadJob(job_id=OffloadJob.make_id("tenant-a", "gone-a", 0, 2), tenant="tenant-a", session_id="gone-a",
                       turns=turns, token_count=90, created_at=created)
    for worker in (build_offload_worker(), build_graph_worker()):
        assert worker.process_job(stale)["skipped"] == "session deleted"
    assert footprint(rds, "tenant-a", "gone-a")["vectors"] == 0 and graph_nodes("tenant-a", "gone-a") == 0
    assert s3_keys("tenant-a", "gone-a") == [] and idempotency_keys(rds, {stale.job_id}) == []

    # The session id is used again: the same turns give the same (deterministic) job ids as before
    # the deletion; they must reach every store (seed_session waits for that) and not be taken
    # for duplicates of the deleted jobs.
    stats = seed_session(cold_vicw, API_KEY, "tenant-a", "gone-a")
    assert footprint(rds, "tenant-a", "gone-a")["vectors"] >= stats["offloaded_turns"] > 0


def test_retention_sweep_forgets_idle_sessions_only(cold_vicw, seeded, rds):
    from vicw.retention import sweep

    ws = container.window_store()
    now = utcnow()
    old = ws.load("tenant-a", "old-a")
    old.updated_at = now - timedelta(days=31)
    rds.set(session_prefix("tenant-a", "old-a") + ":window", old.model_dump_json())
    assert footprint(rds, "tenant-a", "old-a")["vectors"] > 0

    stores = container.forget_stores()
    assert sweep(stores, now)["skipped"]  # RETENTION_DAYS unset: keep everything
    early = sweep(stores, now - timedelta(days=2), retention_days=30)  # the clock says it is not old yet
    assert early["forgotten"] == [] and early["scanned"] >= 4

    receipt = sweep(stores, now, retention_days=30)
    assert [(f["tenant"], f["session_id"]) for f in receipt["forgotten"]] == [("tenant-a", "old-a")]
    assert receipt["forgotten"][0]["deleted"]["vectors"] > 0 and receipt["failed"] == []
    assert footprint(rds, "tenant-a", "old-a") == {"redis": 0, "vectors": 0, "graph": 0, "archive": 0, "outbox": 0}
    assert footprint(rds, "tenant-a", "keep-a")["vectors"] > 0


def test_maintenance_function_runs_the_sweep(cold_vicw, seeded, rds):
    from vicw.local.runner import load_function

    settings = container.settings()
    ws = container.window_store()
    state = ws.load("tenant-b", "keep-b")
    state.updated_at = utcnow() - timedelta(days=400)
    rds.set(session_prefix("tenant-b", "keep-b") + ":window", state.model_dump_json())
    handler = load_function("maintenance").handler
    assert handler({"source": "aws.events"}, None)["retention_days"] is None  # unset: a no-op
    assert footprint(rds, "tenant-b", "keep-b")["vectors"] > 0
    settings.retention_days = 365
    try:
        result = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    finally:
        settings.retention_days = None
    assert [f["session_id"] for f in result["forgotten"]] == ["keep-b"]
    assert footprint(rds, "tenant-b", "keep-b")["vectors"] == 0


def test_delete_tenant_needs_an_admin_and_erases_only_that_tenant(cold_vicw, seeded, rds):
    a_before = footprint(rds, "tenant-a", "keep-a")
    with http(cold_vicw, API_KEY) as c:
        denied = c.delete("/tenants/tenant-b")
        self_delete = c.delete("/tenants/tenant-a")
    assert denied.status_code == 403 and self_delete.status_code == 403
    assert footprint(rds, "tenant-a", "keep-a") == a_before
    with httpx.Client(base_url=cold_vicw.url, timeout=30) as anon:
        assert anon.delete("/tenants/tenant-b").status_code == 401
    assert container.vector_store().count("tenant-b") > 0 and graph_nodes("tenant-b") > 0 and s3_keys("tenant-b")

    with http(cold_vicw, ADMIN_KEY) as c:
        bad = c.delete("/tenants/bad%20name")
        r = c.delete("/tenants/tenant-b")
    assert bad.status_code == 422
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["tenant"] == "tenant-b" and receipt["requested_by"] == "ops"
    assert receipt["deleted"]["vectors"] > 0 and receipt["deleted"]["archive"] > 0 and receipt["deleted"]["graph"]["nodes"] > 0
    assert container.vector_store().count("tenant-b") == 0
    assert graph_nodes("tenant-b") == 0 and s3_keys("tenant-b") == []
    assert redis_keys(rds, "vicw:t:tenant-b:*") == []
    assert all(t != "tenant-b" for t, _ in outbox_sessions(rds))
    assert rds.get(tombstone_key("tenant-b")) is not None
    assert footprint(rds, "tenant-a", "keep-a") == a_before
