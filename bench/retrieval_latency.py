"""Retrieval latency on the embedded engine (Qdrant Edge), query embedding included, from a fresh
process, at 10,000 and 100,000 memories in the tenant; the raw query-embedding time is measured in
the same run, query by query, next to it.

For each size, a builder fills an Edge shard through the store adapter with synthetic points (no
embedding: unit vectors scattered around 64 topic centres, and sentences drawn from a small
vocabulary with names, numbers and dates, so the BM25 side has realistic term statistics). The
asked session holds 2,000 turns, the rest of the tenant's memories sit in other sessions and a
second tenant holds 10% more. Then a *fresh* Python process loads the model (the only warm-up),
opens the shard (as the chat function does at start; timed separately) and times `HybridMemorySource.retrieve` (the production recipe, graph step off:
no graph store here) for every query, the first one included. The live window (its last 40
turns) is excluded by the engine's filter, as in production.

    python bench/retrieval_latency.py [--sizes 10000,100000] [--queries 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path

TENANT = "bench"
ASKED = "asked"
ASKED_TURNS = 2000
LIVE_TURNS = 40
T0 = 1_767_225_600.0  # 2026-01-01 UTC
QUERIES = [
    "When is the shipment to Lyon leaving?", "What did my sister say about the ferrets?", "Which invoice was disputed?",
    "Remind me of the budget for the garden project", "What time is the dentist appointment?",
    "Who is driving the forklift on Friday?", "What was decided about the contract renewal?",
    "Where did we store the spare pallets?", "How much was the refund for order 4411?", "What is the plan for Tuesday?",
    "What did we talk about last week?", "What happened in March?",
]
WORDS = ("shipment invoice garden budget dentist forklift contract pallets refund order plan meeting ferrets sister "
         "holiday train ticket recipe marathon doctor school birthday painting guitar camping lake mountain coffee "
         "report deadline client supplier warehouse truck weekend concert museum book novel photo dog cat").split()
NAMES = "Lyon Ines Bob Maya Priya Tom Clara Ghent Porto Sintra".split()


def synthetic_vectors(n: int, dim: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic = rng.integers(0, 64, size=n)
    vectors = centres[topic] + 0.35 * rng.normal(size=(n, dim)) / np.sqrt(dim) * 4
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype("float32"), topic


def points(n: int, dim: int, tenant: str, seed: int):
    """(id, vector, payload) for n memories of one tenant: ASKED_TURNS in the asked session, the rest in 50-turn sessions."""
    import random

    vectors, topic = synthetic_vectors(n, dim, seed)
    rnd = random.Random(seed)
    for i in range(n):
        session, seq = (ASKED, i) if i < ASKED_TURNS else (f"s{(i - ASKED_TURNS) // 50}", (i - ASKED_TURNS) % 50)
        ts = T0 + i * (365 * 86400 / n)
        words = [WORDS[(int(topic[i]) + rnd.randrange(6)) % len(WORDS)] for _ in range(rnd.randint(6, 18))]
        words.insert(rnd.randrange(len(words)), rnd.choice(NAMES))
        if rnd.random() < 0.2:
            words.append(str(rnd.randrange(10_000)))
        speaker = "Maya" if seq % 2 == 0 else "Assistant"
        text = f"[{time.strftime('%Y-%m-%d %H:%M', time.gmtime(ts))}] {speaker}: {' '.join(words)}."
        payload = {"tenant": tenant, "session_id": session, "job_id": f"{session}-job-{seq // 20}", "turn_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{tenant}/{i}")),
                   "seq": seq, "part": 0, "parts": 1, "role": "user" if seq % 2 == 0 else "assistant", "speaker": speaker, "text": text,
                   "timestamp": ts, "iso": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts)), "tokens": len(words) + 12,
                   "kind": "conversation", "metadata": {}}
        yield str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{i}")), vectors[i].tolist(), payload


def build(path: str, n: int, dim: int, optimize: bool = True) -> dict:
    from vicw.vector_edge import EdgeVectorStore

    store = EdgeVectorStore(path=path, collection="bench", dim=dim)
    started = time.perf_counter()
    store.upsert_points(points(n, dim, TENANT, 7))
    store.upsert_points(points(max(1, n // 10), dim, "other-tenant", 8))
    insert_s = time.perf_counter() - started
    if optimize:  # index building; the session-filtered queries do not need it (payload index first)
        store.optimize()
    optimize_s = time.perf_counter() - started - insert_s
    count = store.count(TENANT)
    store.close()
    return {"insert_s": round(insert_s, 1), "optimize_s": round(optimize_s, 1), "points_in_tenant": count}


def child(path: str, queries: int) -> None:
    """The fresh process: load the model, then time every query from the first."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    from vicw.config import load_settings
    from vicw.embeddings import Embedder
    from vicw.models import Turn, WindowState
    from vicw.retrieval import HybridMemorySource, RetrievalRecipe
    from vicw.tokens import TokenCounter
    from vicw.vector_edge import EdgeVectorStore

    settings = load_settings()
    embedder = Embedder(settings)
    embedder.warm_up()
    counter = TokenCounter(settings.token_encoding)
    load_s = time.perf_counter() - started
    store = EdgeVectorStore(path=path, collection="bench", dim=settings.embedding_dim)
    t_open = time.perf_counter()
    store.ping()  # opening the shard: what `vicw local` and the chat function do at start (container.warm)
    open_ms = (time.perf_counter() - t_open) * 1000
    recipe = RetrievalRecipe.from_settings(settings)
    source = HybridMemorySource(recipe, counter, vectors=store, embedder=embedder)
    last = T0 + ASKED_TURNS * 60.0
    from datetime import datetime

    live = [Turn(seq=ASKED_TURNS + i, role="user" if i % 2 == 0 else "assistant", content=f"live turn {i}", name="Maya",
                 timestamp=datetime.fromtimestamp(last + i, UTC), tokens=10) for i in range(LIVE_TURNS)]
    state = WindowState(tenant=TENANT, session_id=ASKED, turns=live, next_seq=ASKED_TURNS + LIVE_TURNS, offloaded_turns=ASKED_TURNS)
    retrieve_ms, embed_ms, found = [], [], []
    for i in range(queries):
        q = f"{QUERIES[i % len(QUERIES)]} ({i})"
        t0 = time.perf_counter()
        mems = source.retrieve(TENANT, ASKED, q, state)
        retrieve_ms.append((time.perf_counter() - t0) * 1000)
        found.append(len(mems))
        t1 = time.perf_counter()
        embedder.embed_one(q + " again")  # raw query embedding, same length, same moment
        embed_ms.append((time.perf_counter() - t1) * 1000)
    store.close()
    print(json.dumps({"load_s": round(load_s, 2), "open_ms": round(open_ms, 1), "retrieve_ms": retrieve_ms, "embed_ms": embed_ms,
                      "memories_per_query": statistics.median(found), "fusion": recipe.fusion}))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(sizes: list[int], queries: int, optimize: bool = True) -> dict:
    from vicw.config import load_settings

    dim = load_settings().embedding_dim
    out: dict = {"queries": queries, "cpus": os.cpu_count(), "engine": "Qdrant Edge (qdrant-edge-py, in process)", "optimized": optimize,
                 "sizes": {}}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            built = build(tmp, n, dim, optimize)
            proc = subprocess.run([sys.executable, __file__, "--child", tmp, "--queries", str(queries)], capture_output=True,
                                  text=True, check=True, timeout=1800)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
        r, e = res["retrieve_ms"], res["embed_ms"]
        out["sizes"][str(n)] = {
            **built, "model_load_s": res["load_s"], "engine_open_ms": res["open_ms"], "memories_per_query": res["memories_per_query"], "fusion": res["fusion"],
            "first_query_ms": round(r[0], 1),
            "embed": {"p50": round(pct(e, 50), 1), "p95": round(pct(e, 95), 1)},
            "total": {"p50": round(pct(r, 50), 1), "p95": round(pct(r, 95), 1)},
            "engine_and_steps_p50": round(statistics.median(r) - statistics.median(e), 1),
        }
        print(f"{n}: {out['sizes'][str(n)]}", file=sys.stderr)
    out["load_avg_1m"] = round(os.getloadavg()[0], 1)
    return out


def markdown(data: dict) -> str:
    lines = ["| memories in tenant | first query ms | retrieval p50 / p95 ms (embedding included) | query embedding alone p50 / p95 ms "
             "| retrieval minus embedding, p50 ms | insert / optimise s |",
             "|---:|---:|---:|---:|---:|---:|"]
    for n, s in data["sizes"].items():
        lines.append(f"| {int(n):,} | {s['first_query_ms']:.1f} | {s['total']['p50']:.1f} / **{s['total']['p95']:.1f}** | "
                     f"{s['embed']['p50']:.1f} / {s['embed']['p95']:.1f} | {s['engine_and_steps_p50']:.1f} | {s['insert_s']} / {s['optimize_s']} |")
    lines.append(f"\n{data['queries']} queries per size, each from a fresh process after the model load only; {data['engine']}; "
                 f"synthetic points written through the adapter; 1-min load average {data['load_avg_1m']} on {data['cpus']} CPUs.")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--no-optimize", action="store_true", help="skip the engine's index build after the bulk insert")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[sys.argv.index("--queries") + 1]))
        return 0
    return bench_cli(__doc__, configure, lambda a: run([int(x) for x in a.sizes.split(",")], a.queries, not a.no_optimize), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
