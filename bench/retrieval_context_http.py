"""`POST /sessions/{id}/context` over HTTP from a freshly started `vicw local` holding 3,000
memories in the tenant: the first call's latency and the p95 of the calls after it.

The memories are written into the data folder's embedded engine (Qdrant Edge) through the store
adapter before `vicw local` starts (sentences from retrieval_latency.py, embedded with the real
model and cached under $TMPDIR), so nothing is warm when the server comes up. Then the first /context call is timed as soon as
/health answers, followed by --calls more.

    python bench/retrieval_context_http.py [--memories 3000] [--calls 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path
from bench.retrieval_latency import ASKED, QUERIES, pct, points  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(memories: int, calls: int) -> dict:
    import httpx

    from bench.retrieval_quality import embed_cached
    from vicw.embeddings import Embedder
    from vicw.vector_edge import EdgeVectorStore

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        store = EdgeVectorStore(path=str(data / "qdrant"), collection="vicw_memories", dim=384)
        rows = list(points(memories, 384, "dev", 11))
        # real vectors for the texts (cached between runs), so dense hits and packing are realistic
        vectors = embed_cached(Embedder(), [payload["text"] for _, _, payload in rows])
        store.upsert_points((pid, vec, payload) for (pid, _, payload), vec in zip(rows, vectors, strict=True))
        store.optimize()
        store.close()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VICW_", "QDRANT_", "REDIS_", "AWS_"))}
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "vicw.cli", "local", "--port", str(port), "--data-dir", str(data)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as c:
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"vicw local exited: {proc.stderr.read().decode()[-2000:]}")
                    try:
                        if c.get("/health").status_code in (200, 503):
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                ready_s = time.perf_counter() - started
                key = (data / "dev-api-key").read_text().strip()
                headers = {"Authorization": f"Bearer {key}"}
                latencies, injected = [], []
                for i in range(calls + 1):
                    t0 = time.perf_counter()
                    r = c.post(f"/sessions/{ASKED}/context", json={"query": f"{QUERIES[i % len(QUERIES)]} ({i})"}, headers=headers)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                    body = r.json()
                    injected.append(len(body.get("memories", [])))
                    if i == 0:
                        print({k: v for k, v in body.items() if k not in ("messages", "memories")}, file=sys.stderr)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    rest = latencies[1:]
    return {"memories": memories, "calls": calls, "ready_s": round(ready_s, 1), "first_call_ms": round(latencies[0], 1),
            "p50_ms": round(pct(rest, 50), 1), "p95_ms": round(pct(rest, 95), 1), "max_ms": round(max(rest), 1),
            "memories_in_prompt_median": sorted(injected)[len(injected) // 2], "load_avg_1m": round(os.getloadavg()[0], 1)}


def markdown(d: dict) -> str:
    return "\n".join([
        "| memories in tenant | server ready after s | first /context ms | next calls p50 / p95 / max ms | memories in prompt (median) |",
        "|---:|---:|---:|---:|---:|",
        f"| {d['memories']:,} | {d['ready_s']} | **{d['first_call_ms']}** | {d['p50_ms']} / **{d['p95_ms']}** / {d['max_ms']} | {d['memories_in_prompt_median']} |",
        f"\nHTTP on 127.0.0.1 through the local API Gateway emulation into the chat Lambda handler; {d['calls']} calls after the "
        f"first; 1-min load average {d['load_avg_1m']}.",
    ])


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memories", type=int, default=3000)
    parser.add_argument("--calls", type=int, default=100)


def main() -> int:
    return bench_cli(__doc__, configure, lambda a: run(a.memories, a.calls), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
