"""Memory benchmark: is the evidence for a question in the prompt VICW builds, at 4,096 tokens?

    python bench/memory/run.py [--quick] [--seed N] [--out bench/results/memory.md]

1. Generates long multi-session group conversations with planted facts and questions
   (bench/memory/generate.py; deterministic from the seed, nothing downloaded).
2. Starts its own VICW (vicw.local.runner.LocalVicw: Redis+FalkorDB, moto SQS/SNS/S3, Qdrant local
   mode, cold-path pollers in process) with MAX_CONTEXT_TOKENS=4096 and replays every turn through
   the HTTP API (POST /sessions/{id}/messages with name and timestamp).
3. Waits until the queues are drained and the vector count is stable (GET /stats).
4. Tops the tenant up to the target number of memories with more conversations in other sessions
   (same offload code: chunk, embed, upsert) so latency is measured at that size.
5. Asks every question with POST /sessions/{id}/context and checks whether ALL its evidence turns
   are in the returned prompt; next to two baselines computed in the same run on the same prompts:
   the recency window alone, and BM25 top-k alone packed into the same memory budget.
6. Times retrieval in process (query embedding included) next to raw embedding time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.memory.generate import Conversation, generate  # noqa: E402

TENANT = "bench"
API_KEY = "bench-key-" + uuid.uuid4().hex[:12]
BATCH = 25


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def replay(api: httpx.Client, conv: Conversation) -> None:
    for start in range(0, len(conv.turns), BATCH):
        batch = conv.turns[start : start + BATCH]
        body = {"messages": [{"role": "user", "content": t.content, "name": t.speaker, "timestamp": t.timestamp.isoformat()}
                             for t in batch]}
        resp = api.post(f"/sessions/{conv.conv_id}/messages", json=body)
        resp.raise_for_status()


def wait_drained(api: httpx.Client, timeout: float = 3600) -> dict:
    deadline = time.monotonic() + timeout
    last, stable = None, 0
    while time.monotonic() < deadline:
        stats = api.get("/stats").json()
        queues = stats.get("queues", {})
        busy = sum((q.get("visible") or 0) + (q.get("in_flight") or 0) for q in queues.values())
        outbox = (stats.get("window") or {}).get("outbox_pending") or 0
        points = (stats.get("vectors") or {}).get("points")
        stable = stable + 1 if (busy == 0 and outbox == 0 and points == last) else 0
        last = points
        if stable >= 3:
            return stats
        time.sleep(2)
    raise RuntimeError("the cold path did not drain in time")


def top_up(target: int, seed: int) -> tuple[int, float]:
    """More conversations in other sessions of the tenant until it holds `target` memories."""
    from vicw import container
    from vicw.cold_path import OffloadProcessor
    from vicw.models import OffloadJob, Turn

    store, counter = container.vector_store(), container.token_counter()
    processor = OffloadProcessor(container.embedder(), store)
    started = time.perf_counter()
    k = 0
    while (have := store.count(tenant=TENANT)) < target:
        conv = generate(seed + 1000 + k, min(1000, max(250, target - have)), 4, f"filler-{k}")
        turns = [Turn(seq=t.index, role="user", content=t.content, name=t.speaker, timestamp=t.timestamp,
                      tokens=counter.count_message("user", t.content)) for t in conv.turns[: target - have]]
        for i in range(0, len(turns), 50):
            chunk = turns[i : i + 50]
            processor.process(OffloadJob(job_id=str(uuid.uuid4()), tenant=TENANT, session_id=conv.conv_id, turns=chunk,
                                         token_count=sum(t.tokens for t in chunk)))
        k += 1
    return store.count(tenant=TENANT), time.perf_counter() - started


class Bm25Baseline:
    """BM25 top-k alone (standard tokenizer, English stop words) packed into the same memory room."""

    def __init__(self, conv: Conversation) -> None:
        import bm25s

        from vicw.models import Turn

        self.rendered = [Turn(seq=t.index, role="user", content=t.content, name=t.speaker, timestamp=t.timestamp, tokens=0).rendered()
                         for t in conv.turns]
        self.turns = conv.turns
        self.index = bm25s.BM25()
        self.index.index(bm25s.tokenize(self.rendered, stopwords="en", show_progress=False), show_progress=False)
        self._bm25s = bm25s

    def memories(self, query: str, window_text: str, room: int, counter) -> list[str]:  # noqa: ANN001
        from vicw.prompt import Memory
        from vicw.retrieval.packing import pack

        tokens = self._bm25s.tokenize([query], stopwords="en", show_progress=False)
        docs, scores = self.index.retrieve(tokens, k=60, show_progress=False)
        mems = []
        for row, score in zip(docs[0], scores[0], strict=True):
            t = self.turns[int(row)]
            if score <= 0 or t.content in window_text:
                continue
            mems.append(Memory(id=str(t.index), text=t.content, score=float(score), source="bm25", turn_ids=[str(t.index)],
                               timestamp=t.timestamp, speaker=t.speaker))
        return [m.text for m in pack(mems, counter, room)]


def evaluate(api: httpx.Client, convs: list[Conversation]) -> tuple[dict, list[dict]]:
    from vicw import container
    from vicw.prompt import MEMORY_PREAMBLE

    counter = container.token_counter()
    settings = container.settings()
    rows = []
    for conv in convs:
        bm25 = Bm25Baseline(conv)
        for q in conv.questions:
            resp = api.post(f"/sessions/{conv.conv_id}/context", json={"query": q.text})
            resp.raise_for_status()
            ctx = resp.json()
            prompt = "\n".join(m["content"] for m in ctx["messages"])
            # The live window, without the question itself and without the injected memory block.
            window = [m for m in ctx["messages"][1:-1] if not m["content"].startswith(MEMORY_PREAMBLE)]
            window_text = "\n".join(m["content"] for m in window)
            evidence = [conv.turns[i].content for i in q.evidence]
            base = counter.count_messages([{"role": "system", "content": settings.system_prompt}, *window, ctx["messages"][-1]])
            room = max(0, min(settings.memory_token_budget, ctx["budget"] - base))
            bm25_text = window_text + "\n" + "\n".join(bm25.memories(q.text, window_text, room, counter))
            rows.append({
                "conv": conv.conv_id, "qid": q.qid, "kind": q.kind, "question": q.text,
                "vicw": all(e in prompt for e in evidence),
                "recency": all(e in window_text for e in evidence),
                "bm25": all(e in bm25_text for e in evidence),
                "prompt_tokens": ctx["prompt_tokens"], "budget": ctx["budget"], "memories": len(ctx["memories"]),
                "evidence_in_window": any(e in window_text for e in evidence),
            })
    summary: dict[str, dict[str, float]] = defaultdict(dict)
    kinds = ["single-hop", "multi-hop", "temporal", "long-range"]
    for system in ("vicw", "recency", "bm25"):
        summary[system]["all"] = sum(r[system] for r in rows) / len(rows)
        for kind in kinds:
            sel = [r for r in rows if r["kind"] == kind]
            summary[system][kind] = sum(r[system] for r in sel) / len(sel) if sel else float("nan")
    return summary, rows


def latency(convs: list[Conversation], repeats: int) -> dict:
    from vicw import container

    source, embedder, windows = container.memory_source(), container.embedder(), container.window_store()
    cold = []
    for conv in convs:  # first query per session loads its corpus (a cache miss); reported apart
        source.cache.forget(TENANT, conv.conv_id)
        state = windows.load(TENANT, conv.conv_id)
        started = time.perf_counter()
        source.retrieve(TENANT, conv.conv_id, conv.questions[0].text, state)
        cold.append((time.perf_counter() - started) * 1000)
    retrieval, embedding, parts = [], [], defaultdict(list)
    for _ in range(repeats):
        for conv in convs:
            state = windows.load(TENANT, conv.conv_id)
            for q in conv.questions:
                started = time.perf_counter()
                embedder.embed_one(q.text)
                embedding.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                source.retrieve(TENANT, conv.conv_id, q.text, state)
                retrieval.append((time.perf_counter() - started) * 1000)
                for k, v in source.last_timings.items():
                    parts[k].append(v)
    return {"retrieval": retrieval, "embedding": embedding, "cold_load_ms": cold, "parts": parts}


def fmt(x: float) -> str:
    return f"{x:.2f}"


def write_report(path: Path, cfg: dict, summary: dict, rows: list[dict], lat: dict, info: dict) -> None:
    kinds = ["single-hop", "multi-hop", "temporal", "long-range"]
    n_by_kind = {k: sum(1 for r in rows if r["kind"] == k) for k in kinds}
    lines = [
        "# Memory benchmark: evidence in the prompt at 4,096 tokens",
        "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `python bench/memory/run.py{' --quick' if cfg['quick'] else ''}` "
        f"(seed {cfg['seed']}), on this machine ({os.cpu_count()} cores). Numbers are from one run; the machine is shared and noisy.",
        "",
        "## Set-up",
        "",
        f"- {len(cfg['convs'])} generated group conversations, {cfg['turns']} turns each ({info['turns']} turns in all), 4 speakers, "
        f"{info['sessions']} dated sessions; {len(rows)} questions ({', '.join(f'{n_by_kind[k]} {k}' for k in kinds)}).",
        "- Facts are planted at least 200 turns before the end (long-range ones in the first tenth); each has distractor turns "
        "sharing its words; filler is drawn from ~50 templates with random slots. Questions are asked after the whole conversation.",
        f"- VICW started by the benchmark (LocalVicw: real chat handler, SQS pollers, Qdrant local mode, FalkorDB), "
        f"MAX_CONTEXT_TOKENS=4096 (prompt budget {rows[0]['budget']} tokens), MEMORY_TOKEN_BUDGET={info['memory_budget']}, "
        f"defaults for everything else.",
        f"- Replay through `POST /sessions/{{id}}/messages` ({BATCH} turns per request): {info['replay_s']:.0f} s; "
        f"cold path drained after {info['drain_s']:.0f} s more; {info['points_conv']} memories from the conversations, "
        f"topped up to {info['points_total']} memories in the tenant ({info['topup_s']:.0f} s) before questions and timings.",
        "- *Evidence in prompt*: every evidence turn of the question is present (verbatim) in the messages returned by "
        "`POST /sessions/{id}/context` - the exact prompt the LLM would get.",
        "",
        "## Evidence-in-prompt rate",
        "",
        "| system | all | " + " | ".join(kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    names = {"vicw": "VICW (hybrid retrieval + window)", "recency": "recency window only", "bm25": "BM25 top-k alone, same budget"}
    for system in ("vicw", "recency", "bm25"):
        lines.append(f"| {names[system]} | **{fmt(summary[system]['all'])}** | " + " | ".join(fmt(summary[system][k]) for k in kinds) + " |")
    over = sum(1 for r in rows if r["prompt_tokens"] > r["budget"])
    lines += [
        "",
        f"Prompts over budget: {over} of {len(rows)} (max prompt {max(r['prompt_tokens'] for r in rows)} tokens). "
        f"Mean memories injected: {statistics.mean(r['memories'] for r in rows):.1f}.",
        "",
        f"## Retrieval latency at {info['points_total']} memories in the tenant",
        "",
        "In process, warm corpus cache, query embedding included; raw embedding of the same query timed in the same loop.",
        "",
        "| | p50 ms | p95 ms | max ms | samples |",
        "|---|---|---|---|---|",
        f"| retrieval (embed + dense + BM25 + graph + fusion + packing) | {p(lat['retrieval'], .5):.1f} | {p(lat['retrieval'], .95):.1f} | "
        f"{max(lat['retrieval']):.1f} | {len(lat['retrieval'])} |",
        f"| raw query embedding | {p(lat['embedding'], .5):.1f} | {p(lat['embedding'], .95):.1f} | {max(lat['embedding']):.1f} | "
        f"{len(lat['embedding'])} |",
    ]
    for k in ("embed_ms", "graph_ms"):
        if lat["parts"].get(k):
            lines.append(f"| of which {k[:-3]} | {p(lat['parts'][k], .5):.1f} | {p(lat['parts'][k], .95):.1f} | {max(lat['parts'][k]):.1f} | "
                         f"{len(lat['parts'][k])} |")
    lines += [
        "",
        f"Cold cache (first query of a session in a process: loading its memories from Qdrant local mode and indexing them): "
        f"{', '.join(f'{v / 1000:.1f} s' for v in lat['cold_load_ms'])}. Qdrant's local mode evaluates payload filters in Python "
        "(about a second per filtered call at 10,000 points); a Qdrant server with payload indexes does this in milliseconds.",
        "",
        "## Misses",
        "",
    ]
    misses = [r for r in rows if not r["vicw"]]
    lines += [f"- `{r['qid']}` ({r['kind']}): {r['question']}" for r in misses[:40]] or ["- none"]
    lines += [
        "",
        "## Caveats",
        "",
        "- Generated data, template-based: lexical overlap between question and evidence is higher than in real chat, which "
        "favours BM25 (the baseline shows how much). The distractors share the facts' words on purpose.",
        "- Evidence-in-prompt measures retrieval, not answers: no LLM is called.",
        "- The retrieval settings are the defaults; nothing was tuned on these questions.",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short conversation, 2,000 memories")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / ("memory-quick.md" if "--quick" in (argv or sys.argv) else "memory.md")))
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args(argv)

    n_convs, turns, questions, target = (1, 600, 24, 2000) if args.quick else (2, 1500, 60, 10_000)
    convs = [generate(args.seed + i, turns, questions, f"conv-{i}") for i in range(n_convs)]
    data = Path(tempfile.mkdtemp(prefix="vicw-bench-memory-"))
    os.environ.update({
        "VICW_API_KEYS": f"{API_KEY}:{TENANT}", "MAX_CONTEXT_TOKENS": "4096", "VICW_LLM_PROVIDER": "none",
        "POWERTOOLS_METRICS_DISABLED": "true", "RATE_LIMITS": "chat=100000/1,default=100000/1", "LOG_LEVEL": "WARNING",
    })
    from vicw.local.runner import LocalVicw

    local = LocalVicw(data, port=0, cold_path=True).start()
    try:
        from vicw import container

        with httpx.Client(base_url=local.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=600) as api:
            started = time.perf_counter()
            for conv in convs:
                replay(api, conv)
            replay_s = time.perf_counter() - started
            print(f"replayed {sum(len(c.turns) for c in convs)} turns in {replay_s:.0f}s; waiting for the cold path", flush=True)
            stats = wait_drained(api)
            drain_s = time.perf_counter() - started - replay_s
            points_conv = stats["vectors"]["points"]
            print(f"drained: {points_conv} memories after {drain_s:.0f}s; topping up to {target}", flush=True)
            points_total, topup_s = top_up(target, args.seed)
            print(f"{points_total} memories in the tenant; asking {sum(len(c.questions) for c in convs)} questions", flush=True)
            summary, rows = evaluate(api, convs)
            print({k: round(v["all"], 3) for k, v in summary.items()}, flush=True)
            lat = latency(convs, repeats=2 if not args.quick else 1)
            print(f"retrieval p95 {p(lat['retrieval'], .95):.1f} ms, embedding p95 {p(lat['embedding'], .95):.1f} ms", flush=True)
        info = {
            "turns": sum(len(c.turns) for c in convs), "sessions": sum(c.turns[-1].session_no + 1 for c in convs),
            "replay_s": replay_s, "drain_s": drain_s, "points_conv": points_conv, "points_total": points_total, "topup_s": topup_s,
            "memory_budget": container.settings().memory_token_budget,
        }
        write_report(Path(args.out), {"quick": args.quick, "seed": args.seed, "convs": convs, "turns": turns}, summary, rows, lat, info)
        print(f"report written to {args.out}")
    finally:
        local.stop()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
