"""Warm-cache latency of `HybridMemorySource.retrieve` (query embedding included) with 10,000
memories in one tenant: the session asked holds 1,500 generated turns, other sessions the rest.

Real stores: Qdrant local mode (in-process), FalkorDB (a redis-server with the module, started
here), the production embedder for queries. Corpus vectors are random unit vectors (embedding
10,000 passages would take minutes; the dense step's cost does not depend on their values), and
the graph is built by the rule-based extraction of the cold path.

    python bench/retrieval_hot.py [--memories 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TENANT = "bench-hot"
SESSION_TURNS = 1500
LIVE_TURNS = 40


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def fill(store, graph, counter, memories: int, seed: int):
    import numpy as np

    from bench.memory.generate import generate
    from vicw.graph_store import process_graph_job
    from vicw.models import OffloadJob, Turn

    rng = np.random.default_rng(seed)
    asked = generate(seed, SESSION_TURNS, 60, "asked")
    convs = [asked]
    k, total = 0, SESSION_TURNS
    while total < memories:
        n = min(1000, memories - total)
        convs.append(generate(seed + 1000 + k, max(250, n), 4, f"filler-{k}"))
        total += n
        k += 1
    have = 0
    for conv in convs:
        turns = [Turn(seq=t.index, role="user", content=t.content, name=t.speaker, timestamp=t.timestamp,
                      tokens=counter.count_message("user", t.content)) for t in conv.turns]
        if conv is asked:
            turns = turns[:-LIVE_TURNS]
        turns = turns[: memories - have]
        for i in range(0, len(turns), 50):
            chunk = turns[i : i + 50]
            job = OffloadJob(job_id=str(uuid.uuid4()), tenant=TENANT, session_id=conv.conv_id, turns=chunk,
                             token_count=sum(t.tokens for t in chunk))
            chunks = store.chunks(job)
            vectors = rng.normal(size=(len(chunks), store.dim)).astype("float32")
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.upsert_job(job, vectors.tolist(), chunks)
            process_graph_job(job, graph)
        have += len(turns)
    return asked


def run(memories: int, repeats: int, seed: int) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vicw.config import load_settings
    from vicw.embeddings import Embedder
    from vicw.graph_store.falkordb import FalkorDBGraphStore
    from vicw.local.services import redis_server
    from vicw.models import Turn, WindowState
    from vicw.retrieval import HybridMemorySource, RetrievalRecipe
    from vicw.tokens import TokenCounter
    from vicw.vector_store import QdrantVectorStore

    settings = load_settings()
    counter = TokenCounter(settings.token_encoding)
    with tempfile.TemporaryDirectory() as tmp:
        server = redis_server(Path(tmp), graph=True, persist=False).start()
        try:
            graph = FalkorDBGraphStore.from_url(f"redis://127.0.0.1:{server.port}", "bench", ensure_schema=True)
            store = QdrantVectorStore(path=":memory:", collection="hot", dim=settings.embedding_dim)
            started = time.perf_counter()
            asked = fill(store, graph, counter, memories, seed)
            fill_s = time.perf_counter() - started
            embedder = Embedder(settings)
            embedder.warm_up()
            live = [Turn(seq=t.index, role="user", content=t.content, name=t.speaker, timestamp=t.timestamp, tokens=20)
                    for t in asked.turns[-LIVE_TURNS:]]
            state = WindowState(tenant=TENANT, session_id=asked.conv_id, turns=live, next_seq=len(asked.turns),
                                offloaded_turns=len(asked.turns) - LIVE_TURNS)
            source = HybridMemorySource(RetrievalRecipe.from_settings(settings), counter, vectors=store, embedder=embedder,
                                        graph=graph)
            questions = [q.text for q in asked.questions]
            for _ in range(2):  # load the corpus until the cache entry is settled
                source.retrieve(TENANT, asked.conv_id, questions[0], state)
                time.sleep(1.1)
            for q in questions[:5]:
                source.retrieve(TENANT, asked.conv_id, q, state)
            answers = hashlib.sha256()  # what came back, to check a change kept the results
            for q in questions:
                answers.update("|".join(m.id for m in source.retrieve(TENANT, asked.conv_id, q, state)).encode() + b"\n")
            total, parts = [], defaultdict(list)
            loads = source.cache.loads
            for _ in range(repeats):
                for q in questions:
                    t0 = time.perf_counter()
                    source.retrieve(TENANT, asked.conv_id, q, state)
                    total.append((time.perf_counter() - t0) * 1000)
                    for key, value in source.last_timings.items():
                        parts[key].append(value)
            assert source.cache.loads == loads, "the corpus was reloaded during timing"
            rows = len(source.corpus(TENANT, asked.conv_id, state))
            graph.close()
            store.close()
        finally:
            server.stop()
    out = {"memories": memories, "session_rows": rows,
           "samples": len(total), "results_sha256": answers.hexdigest()[:16], "fill_s": round(fill_s, 1), "load_avg_1m": round(os.getloadavg()[0], 1),
           "retrieve": {"p50": round(statistics.median(total), 1), "p95": round(pct(total, 95), 1), "max": round(max(total), 1)}}
    for key, values in parts.items():
        out[key] = {"p50": round(statistics.median(values), 1), "p95": round(pct(values, 95), 1)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = run(args.memories, args.repeats, args.seed)
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
