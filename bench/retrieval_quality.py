"""Quick offline loop for retrieval settings on the realistic memory benchmark's data.

bench/memory/run.py is the measure (every turn through the HTTP API, the cold path, /context). It
takes many minutes per run, and every retrieval setting is read at query time, so this script
rebuilds the same end state once and then asks the questions under several recipes in seconds:

1. the conversations of bench/memory/generate.py (same seed, same questions);
2. every turn through the real hot-path function (`append_turns`, MAX_CONTEXT_TOKENS=4096, 25 turns
   per request as the benchmark posts them): the final live window and the shed offload jobs;
3. the jobs chunked and embedded as the cold path does (vectors cached under $TMPDIR) into a Qdrant
   Edge store;
4. for each question, the prompt `/context` would return (`Conversation.preview`'s steps: the question
   appended to the window, `retrieve`, `build_prompt`), scored like the benchmark: the whole text of
   every evidence turn is in the prompt. No graph store here (graph step and state blocks off).

    python bench/retrieval_quality.py [--quick] [--recipes default,score,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path

TENANT = "bench"
BATCH = 25


def recipes(base, current_split=(1024, 3072, 400)):
    """Named variants. The split: (MEMORY_TOKEN_BUDGET, MEMORY_TOKEN_BUDGET_MAX, WINDOW_MIN_TOKENS).

    "default" is the old 1,024-token memory room; "current" is the settings as they are now."""
    default = (1024, None, 1024)
    cur = current_split

    def split(mx: int, mn: int, cands: int):
        return replace(base, memory_token_budget=mx, candidates=cands), (1024, mx, mn)

    out = {
        "default": (base, default),
        "dbsf": (replace(base, fusion="dbsf"), default),
        "score": (replace(base, fusion="score"), default),
        "no-hop": (replace(base, hop_from=0), default),
        "no-neighbours": (replace(base, neighbour_hits=0), default),
        "no-temporal": (replace(base, temporal_filter=False), default),
        "split-2k": split(2048, 1024, 60),
        "split-2.5k": split(2560, 768, 80),
        "split-3k": split(3072, 400, 100),
    }
    out["split-3k-nospeaker"] = (replace(out["split-3k"][0], speaker_filter=False), out["split-3k"][1])
    out["split-3k-scale8"] = (replace(out["split-3k"][0], fusion="score", bm25_scale=8.0), out["split-3k"][1])
    out["split-2.5k-scale8"] = (replace(out["split-2.5k"][0], fusion="score", bm25_scale=8.0), out["split-2.5k"][1])
    out["split-3k-scale8-min1k"] = (replace(out["split-3k"][0], fusion="score", bm25_scale=8.0), (1024, 3072, 1024))
    out["split-3k-scale8-nohop"] = (replace(out["split-3k"][0], fusion="score", bm25_scale=8.0, hop_from=0), out["split-3k"][1])
    out["current"] = (base, cur)
    out["no-mmr"] = (replace(base, mmr_lambda=1.0), cur)
    out["max-240"] = (replace(base, max_memory_tokens=240), cur)
    out["max-400"] = (replace(base, max_memory_tokens=400), cur)
    out["prefetch-48"] = (replace(base, prefetch_limit=48), cur)
    out["temporal"] = (replace(base, temporal_filter=True), cur)
    out["neighbours-8"] = (replace(base, neighbour_hits=8), cur)
    out["neighbours-0"] = (replace(base, neighbour_hits=0), cur)
    out["hop-3"] = (replace(base, hop_from=3), cur)
    for n in (40, 50, 60, 70, 80, 90, 110, 120, 128, 129, 140, 150, 200):
        out[f"cands-{n}"] = (replace(base, candidates=n), cur)
    for lam in (0.5, 0.6, 0.7, 0.85, 0.95):
        out[f"mmr-{lam}"] = (replace(base, mmr_lambda=lam), cur)
        for n in (70, 80, 90):
            out[f"mmr-{lam}-{n}"] = (replace(base, mmr_lambda=lam, candidates=n), cur)
    out["win-200"] = (base, (cur[0], cur[1], 200))
    out["mem-3.3k"] = (replace(base, memory_token_budget=3328), (cur[0], 3328, 256))
    for name in ("split-2.5k", "split-3k"):
        r, sp = out[name]
        out[name + "-score"] = (replace(r, fusion="score"), sp)
        out[name + "-dbsf"] = (replace(r, fusion="dbsf"), sp)
    return out


def end_state(conv, settings, counter):
    from vicw.models import WindowState, as_utc, render_content
    from vicw.window import NewTurn, WindowPolicy, append_turns

    policy = WindowPolicy.from_settings(settings)
    state = WindowState(tenant=TENANT, session_id=conv.conv_id)
    jobs = []
    for start in range(0, len(conv.turns), BATCH):
        batch = conv.turns[start : start + BATCH]
        new = []
        if not state.turns:
            sp = settings.system_prompt
            new.append(NewTurn(role="system", content=sp, tokens=counter.count_message("system", sp), timestamp=as_utc(batch[0].timestamp), pinned=True))
        for t in batch:
            ts = as_utc(t.timestamp)
            new.append(NewTurn(role="user", content=t.content, name=t.speaker, timestamp=ts,
                               tokens=counter.count_message("user", render_content("user", t.content, t.speaker, ts))))
        state, shed = append_turns(state, new, policy, as_utc(batch[-1].timestamp))
        jobs += shed
    return state, jobs, policy


def embed_cached(embedder, texts: list[str]):
    import numpy as np

    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    path = Path(tempfile.gettempdir()) / f"vicw-quality-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    np.save(path, vectors)
    return vectors


def run(quick: bool, names: list[str], seed: int) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["MAX_CONTEXT_TOKENS"] = "4096"
    from bench.memory.generate import KINDS, dataset
    from vicw.config import load_settings
    from vicw.embeddings import Embedder
    from vicw.models import as_utc
    from vicw.prompt import build_prompt
    from vicw.retrieval import HybridMemorySource, RetrievalRecipe
    from vicw.tokens import TokenCounter
    from vicw.vector_edge import EdgeVectorStore
    from vicw.window import NewTurn, append_turns

    settings = load_settings()
    counter = TokenCounter(settings.token_encoding)
    embedder = Embedder(settings)
    convs = dataset(seed, quick)
    store = EdgeVectorStore(collection="quality", dim=settings.embedding_dim)
    states, policy = {}, None
    started = time.perf_counter()
    for conv in convs:
        state, jobs, policy = end_state(conv, settings, counter)
        states[conv.conv_id] = state
        chunks = [c for job in jobs for c in store.chunks(job)]
        vectors = embed_cached(embedder, [c.text for c in chunks])
        store.upsert_points((c.id, v, c.payload) for c, v in zip(chunks, vectors, strict=True))
    build_s = time.perf_counter() - started
    base = RetrievalRecipe.from_settings(settings)
    table = recipes(base, (settings.memory_token_budget, settings.memory_token_budget_max, settings.window_min_tokens))
    out: dict = {"questions": sum(len(c.questions) for c in convs), "build_s": round(build_s, 1), "recipes": {}}
    for name in names:
        recipe, (mem_budget, mem_max, win_min) = table[name]
        source = HybridMemorySource(recipe, counter, vectors=store, embedder=embedder)
        hits: dict[str, list[bool]] = defaultdict(list)
        why: dict[tuple[str, str], int] = defaultdict(int)
        tokens, mems = [], []
        for conv in convs:
            for q in conv.questions:
                state = states[conv.conv_id]
                now = as_utc(conv.turns[-1].timestamp)
                ask = NewTurn(role="user", content=q.text, tokens=counter.count_message("user", q.text), timestamp=now)
                asked, _ = append_turns(state, [ask], policy, now)
                memories = source.retrieve(TENANT, conv.conv_id, q.text, asked)
                plan = build_prompt(asked, counter, policy.budget, memories, mem_budget, [], memory_budget_max=mem_max,
                                    window_min_tokens=win_min)
                prompt = "\n".join(m["content"] for m in plan.messages)
                ok = all(conv.turns[i].content in prompt for i in q.evidence)
                if not ok and os.environ.get("VICW_QUALITY_WHY"):
                    window_text = "\n".join(t.content for t in asked.turns)
                    fetched = "\n".join(m.text for m in memories)
                    for i in q.evidence:
                        c = conv.turns[i].content
                        if c in prompt:
                            continue
                        where = ("window-displaced" if c in window_text else "retrieved-not-packed" if c in fetched
                                 else "truncated" if c[:60] in fetched else "not-retrieved")
                        why[(q.kind, where)] += 1
                hits[q.kind].append(ok)
                hits["all"].append(ok)
                tokens.append(plan.prompt_tokens)
                mems.append(len(plan.memories))
                assert plan.prompt_tokens <= policy.budget
        out["recipes"][name] = {k: round(sum(v) / len(v), 3) for k, v in hits.items()}
        out["recipes"][name]["max_prompt_tokens"] = max(tokens)
        out["recipes"][name]["mean_memories"] = round(sum(mems) / len(mems), 1)
        print(name, out["recipes"][name], file=sys.stderr)
        if why:
            print(name, "missed evidence turns:", dict(sorted(why.items())), file=sys.stderr)
    out["kinds"] = list(KINDS)
    store.close()
    return out


def markdown(d: dict) -> str:
    kinds = d["kinds"]
    lines = ["| recipe | all | " + " | ".join(kinds) + " | mean memories |", "|---|---|" + "---|" * len(kinds) + "---|"]
    for name, r in d["recipes"].items():
        lines.append(f"| {name} | **{r['all']:.2f}** | " + " | ".join(f"{r.get(k, float('nan')):.2f}" for k in kinds) + f" | {r['mean_memories']} |")
    lines.append(f"\n{d['questions']} questions; end state built in {d['build_s']} s.")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--recipes", default="default")


def main() -> int:
    return bench_cli(__doc__, configure, lambda a: run(a.quick, a.recipes.split(","), a.seed), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
