"""Retrieval latency per query, including the query embedding, at 1k / 10k / 100k memories in one
tenant, next to the embedding time alone.

The corpus vectors are synthetic but shaped like real ones: unit vectors scattered around 64 topic
centres (embedding 100k passages at ~25/s would take over an hour on 2 cores). Queries are real
sentences embedded with the production model (fastembed, MiniLM int8). The store is Qdrant's local
mode (in-process, exact search over every point of the tenant); a Qdrant server with its HNSW
index is faster at 100k, so these figures are an upper bound for the search step.

    python bench/retrieval_latency.py [--sizes 1000,10000,100000] [--queries 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path

QUERIES = [
    "When is the shipment to Lyon leaving?", "What did my sister say about the ferrets?", "Which invoice was disputed?",
    "Remind me of the budget for the garden project", "What time is the dentist appointment?",
    "Who is driving the forklift on Friday?", "What was decided about the contract renewal?",
    "Where did we store the spare pallets?", "How much was the refund for order 4411?", "What is the plan for Tuesday?",
]


def synthetic_points(n: int, dim: int, seed: int = 7):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic = rng.integers(0, 64, size=n)
    vectors = centres[topic] + 0.35 * rng.normal(size=(n, dim)) / np.sqrt(dim) * 4
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype("float32")


def load(store, n: int, dim: int) -> float:
    from qdrant_client import models

    started = time.perf_counter()
    vectors = synthetic_points(n, dim)
    store._ensure()  # noqa: SLF001 - create the collection before timing
    for start in range(0, n, 2000):
        points = [
            models.PointStruct(id=i, vector=vectors[i].tolist(), payload={
                "tenant": "bench", "session_id": f"s{i % 200}", "job_id": f"job-{i // 10}", "turn_id": str(i), "seq": i,
                "role": "user" if i % 2 else "assistant", "text": f"memory {i} about topic {i % 64}", "timestamp": 1.7e9 + i,
                "iso": "2026-01-01T00:00:00Z", "tokens": 30, "kind": "conversation"})
            for i in range(start, min(n, start + 2000))
        ]
        store.client.upsert(store.collection, points=points, wait=True)
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(sizes: list[int], queries: int) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vicw.config import load_settings
    from vicw.embeddings import Embedder
    from vicw.vector_store import QdrantVectorStore

    settings = load_settings()
    embedder = Embedder(settings)
    embedder.warm_up()
    for q in QUERIES:
        embedder.embed_one(q)
    out = {"queries": queries, "sizes": {}, "cpus": os.cpu_count()}
    for n in sizes:
        store = QdrantVectorStore(path=":memory:", collection=f"bench{n}", dim=settings.embedding_dim)
        load_s = load(store, n, settings.embedding_dim)
        embed_ms, search_ms, total_ms, numpy_ms = [], [], [], []
        import numpy as np

        matrix = synthetic_points(n, settings.embedding_dim)
        for i in range(queries):
            text = QUERIES[i % len(QUERIES)] + f" ({i})"
            t0 = time.perf_counter()
            vector = embedder.embed_one(text)
            t1 = time.perf_counter()
            hits = store.search("bench", vector, limit=8)
            t2 = time.perf_counter()
            assert len(hits) == 8
            t3 = time.perf_counter()
            np.argpartition(-(matrix @ np.asarray(vector, dtype="float32")), 8)[:8]  # exact search, no filter, no payload
            numpy_ms.append((time.perf_counter() - t3) * 1000)
            embed_ms.append((t1 - t0) * 1000)
            search_ms.append((t2 - t1) * 1000)
            total_ms.append((t2 - t0) * 1000)
        out["sizes"][str(n)] = {
            "load_s": round(load_s, 1),
            "embed": {"p50": round(pct(embed_ms, 50), 2), "p95": round(pct(embed_ms, 95), 2)},
            "search": {"p50": round(pct(search_ms, 50), 2), "p95": round(pct(search_ms, 95), 2)},
            "total": {"p50": round(pct(total_ms, 50), 2), "p95": round(pct(total_ms, 95), 2)},
            "numpy_exact": {"p50": round(pct(numpy_ms, 50), 2), "p95": round(pct(numpy_ms, 95), 2)},
            "search_over_embed_p50": round(statistics.median(search_ms) / statistics.median(embed_ms), 2),
        }
        store.close()
        print(f"{n}: {out['sizes'][str(n)]}", file=sys.stderr)
    out["load_avg_1m"] = round(os.getloadavg()[0], 1)
    return out


def markdown(data: dict) -> str:
    lines = [("| memories in tenant | query embedding p50 / p95 ms | search p50 / p95 ms | retrieval total p50 / p95 ms "
             "| search / embed (p50) | numpy exact top-8 p50 ms (floor) |"),
             "|---:|---:|---:|---:|---:|---:|"]
    for n, s in data["sizes"].items():
        lines.append(f"| {int(n):,} | {s['embed']['p50']:.1f} / {s['embed']['p95']:.1f} | {s['search']['p50']:.1f} / "
                     f"{s['search']['p95']:.1f} | {s['total']['p50']:.1f} / **{s['total']['p95']:.1f}** | {s['search_over_embed_p50']} | {s['numpy_exact']['p50']:.1f} |")
    lines.append(f"\n{data['queries']} queries per size; synthetic clustered corpus vectors, real query embeddings; "
                 f"Qdrant local mode (exact search); 1-min load average {data['load_avg_1m']}.")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=50)


def main() -> int:
    return bench_cli(__doc__, configure, lambda a: run([int(x) for x in a.sizes.split(",")], a.queries), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
