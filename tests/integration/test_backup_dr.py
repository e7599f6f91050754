"""Disaster-recovery drills against real stores, populated through the real cold path.

(a) backup -> lose every store -> fresh stores -> restore: same counts, same window state, same graph,
    same retrieval results.
(b) lose Qdrant and the graph only -> replay the S3 archive -> the pollers rebuild them: same
    retrieval results.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import patched_env, patient, running_vicw
from vicw.aws import client

DR_KEY_A = "dr-drill-key-a-000001"
DR_KEY_B = "dr-drill-key-b-000002"
DR_KEY_C = "dr-drill-key-c-000003"  # its own tenant: drill (b) replays the tenant's whole archive
QUERIES = [
    "Which city ships the ceramic tiles?",
    "what did we decide about the invoice deadline",
    "blue pallets on Tuesday",
    "who is the contact at the bakery",
]
TOPICS = [
    "The warehouse in {city} ships pallets of blue ceramic tiles every Tuesday to Anna Berg.",
    "We decided the invoice deadline for {city} moves to the end of March, and Marco Ricci approves it.",
    "The bakery in {city} wants two hundred croissants; their contact is Lena Vogel.",
]


@pytest.fixture()
def drill_env(vicw_env):
    env = {**vicw_env, "VICW_API_KEYS": f"{DR_KEY_A}:dr-a,{DR_KEY_B}:dr-b,{DR_KEY_C}:dr-c", "MAX_CONTEXT_TOKENS": "2048",
           "LLM_MAX_TOKENS": "256"}
    with patched_env(env):
        yield env


def populate(url: str, key: str, sessions: list[str]) -> int:
    jobs = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        for n, sid in enumerate(sessions):
            city = ["Tilburg", "Bergen", "Porto"][n % 3]
            msgs = [
                {"role": "user" if i % 2 == 0 else "assistant",
                 "content": f"({sid} #{i}) " + TOPICS[i % 3].format(city=city) + " More detail follows here. " * 14}
                for i in range(24)
            ]
            resp = api.post(f"/sessions/{sid}/messages", json={"messages": msgs})
            assert resp.status_code == 200, resp.text
            jobs += resp.json()["offload_jobs"]
    assert jobs >= 2
    return jobs


def wait_drained(timeout: float = 90.0) -> None:
    """Until the outbox is empty and both queues hold nothing visible or in flight, twice in a row."""
    from vicw import container
    from vicw.queues import queue_depths

    deadline, calm = time.monotonic() + patient(timeout), 0
    while calm < 2:
        depths = queue_depths(container.queues())
        busy = container.window_store().outbox_size() + sum(
            (d["visible"] or 0) + (d["in_flight"] or 0) for d in depths.values()
        )
        calm = calm + 1 if busy == 0 else 0
        assert time.monotonic() < deadline, f"cold path did not drain: {depths}"
        time.sleep(0.4)


def retrieval(tenant: str) -> list[list[tuple[str, float]]]:
    from vicw import container

    embedder, vectors = container.embedder(), container.vector_store()
    return [
        [(hit.id, round(hit.score, 5)) for hit in vectors.search(tenant, embedder.embed_one(q), limit=5)]
        for q in QUERIES
    ]


def windows(r, tenant: str) -> dict[bytes, bytes]:
    return {k: r.get(k) for k in r.scan_iter(match=f"vicw:t:{tenant}:*")}


def graph_state(tenant: str) -> tuple[dict, list]:
    from vicw import container

    graph = container.graph_store()
    exported = graph.export(tenant)
    def key(x: dict) -> str:
        return repr(sorted(x.items()))
    return graph.counts(tenant), sorted(key(n) for n in exported["nodes"]) + sorted(key(e) for e in exported["edges"])


def test_drill_backup_wipe_restore(tmp_path, redis_url, moto_endpoint, drill_env, scripted_llm, redis_client):
    from vicw import container
    from vicw.backup import BackupError, create_backup, read_manifest, restore_backup

    with running_vicw(tmp_path / "before", redis_url, moto_endpoint, drill_env, cold_path=True) as first:
        populate(first.url, DR_KEY_A, ["s1", "s2", "s3"])
        populate(first.url, DR_KEY_B, ["other"])
        wait_drained()
        vectors, graph = container.vector_store(), container.graph_store()
        before = {
            "points": vectors.count(), "points_a": vectors.count("dr-a"), "graph": graph.counts(),
            "graph_a": graph_state("dr-a"), "windows_a": windows(redis_client, "dr-a"),
            "windows_b": windows(redis_client, "dr-b"), "search_a": retrieval("dr-a"), "search_b": retrieval("dr-b"),
        }
        assert before["points_a"] > 10 and before["graph"]["nodes"] > 0 and before["search_a"][0]
        client("s3").create_bucket(Bucket="vicw-drill-backups")
        manifest = create_backup("s3://vicw-drill-backups/nightly/1")
        assert manifest.counts["vectors"] == before["points"]
        assert manifest.counts["graph_nodes"] == before["graph"]["nodes"]
        assert manifest.counts["archive_objects"] >= 2
        assert manifest.embedding_dim == 384 and set(manifest.files) >= {"window.jsonl.gz", "vectors.jsonl.gz", "graph.json.gz"}
        with pytest.raises(BackupError, match="already holds a backup"):
            create_backup("s3://vicw-drill-backups/nightly/1")

    # Disaster: Redis (window state, graph, idempotency records) and the Qdrant folder are gone.
    redis_client.flushdb()
    with running_vicw(tmp_path / "after", redis_url, moto_endpoint, drill_env, cold_path=True) as second:
        vectors, graph = container.vector_store(), container.graph_store()
        assert vectors.count() == 0 and graph.counts()["nodes"] == 0 and not windows(redis_client, "dr-a")
        assert read_manifest("s3://vicw-drill-backups/nightly/1").created_at == manifest.created_at

        result = restore_backup("s3://vicw-drill-backups/nightly/1")
        assert result["verified"] and result["restored"]["vectors"] == before["points"]
        assert vectors.count() == before["points"] and vectors.count("dr-a") == before["points_a"]
        assert graph.counts() == before["graph"] and graph_state("dr-a") == before["graph_a"]
        assert windows(redis_client, "dr-a") == before["windows_a"]
        assert windows(redis_client, "dr-b") == before["windows_b"]
        assert retrieval("dr-a") == before["search_a"] and retrieval("dr-b") == before["search_b"]
        with httpx.Client(base_url=second.url, headers={"Authorization": f"Bearer {DR_KEY_A}"}, timeout=patient(60)) as api:
            assert api.get("/sessions/s1").json()["messages"] > 0  # the API serves the restored window

        # the stores are no longer empty: a second restore is refused unless forced
        with pytest.raises(BackupError, match="refusing to restore"):
            restore_backup("s3://vicw-drill-backups/nightly/1")
        assert restore_backup("s3://vicw-drill-backups/nightly/1", force=True)["forced"]
        assert vectors.count() == before["points"]


def test_drill_rebuild_vectors_and_graph_from_archive(tmp_path, redis_url, moto_endpoint, drill_env, scripted_llm, redis_client):
    from vicw import container
    from vicw.replay import replay_archive

    with running_vicw(tmp_path, redis_url, moto_endpoint, drill_env, cold_path=True) as local:
        populate(local.url, DR_KEY_C, ["r1", "r2"])
        wait_drained()
        vectors, graph = container.vector_store(), container.graph_store()
        points, nodes = vectors.count("dr-c"), graph.counts("dr-c")
        searched = retrieval("dr-c")
        items = graph.state_items("dr-c", "r1")
        assert points > 5 and nodes["nodes"] > 0 and searched[0]

        # Disaster: Qdrant and the graph are lost (Redis and the S3 archive survive).
        for tenant in {p["payload"]["tenant"] for p in vectors.export()}:
            vectors.delete_tenant(tenant)
        for tenant in {n["props"]["tenant"] for n in graph.export()["nodes"]}:
            graph.delete_tenant(tenant)
        assert vectors.count() == 0 and graph.counts()["nodes"] == 0

        sent = replay_archive(tenant="dr-c", target="all", progress=False, windows=container.window_store())
        assert sent["jobs"] >= 2 and sent["sent"]["offload"] == sent["sent"]["graph"] == sent["jobs"]
        wait_drained()
        assert vectors.count("dr-c") == points
        assert graph.counts("dr-c") == nodes
        assert retrieval("dr-c") == searched
        assert [i.model_dump() for i in graph.state_items("dr-c", "r1")] == [i.model_dump() for i in items]
