"""The named steps of hybrid retrieval, on search hits the engine returned (no corpus in process).

Each candidate step yields a `Ranking` (records, best first, with the step's own score); `rrf_fuse`
merges rankings; `score_fuse` is the alternative to the engine's own fusion (cosine plus a
squashed BM25 score); `bridge_names` and `exchange_neighbours` decide the follow-up queries."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vicw.retrieval.packing import strip_prefix
from vicw.retrieval.query import STOP_WORDS, QueryIntent
from vicw.vector_store import MemoryRecord

SHORT_REPLY_WORDS = 6


@dataclass
class Ranking:
    step: str
    rows: list[tuple[MemoryRecord, float]] = field(default_factory=list)  # best first

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Candidate:
    record: MemoryRecord
    score: float
    steps: list[str]


def ranking(step: str, hits: Iterable[Any]) -> Ranking:
    """A ranking from engine hits (anything with a `.score` that is a MemoryRecord)."""
    return Ranking(step, [(h, float(getattr(h, "score", 0.0))) for h in hits])


def rrf_fuse(rankings: Sequence[Ranking], weights: dict[str, float], k: int = 60) -> list[Candidate]:
    """Reciprocal rank fusion: score = sum over steps of weight / (k + rank)."""
    fused: dict[str, Candidate] = {}
    for r in rankings:
        w = weights.get(r.step, 1.0)
        for rank, (record, _) in enumerate(r.rows, start=1):
            c = fused.get(record.id)
            if c is None:
                c = fused[record.id] = Candidate(record, 0.0, [])
            c.score += w / (k + rank)
            c.steps.append(r.step)
    return sorted(fused.values(), key=lambda c: (-c.score, c.record.id))


def mmr(fused: list[Candidate], lam: float, pool: int) -> list[Candidate]:
    """Maximal marginal relevance over the first `pool` candidates: each pick trades its fused
    score (scaled to 0..1) against its word overlap (Jaccard of BM25 terms) with what was already
    picked, so near-repeats of one exchange do not fill the memory room. lam=1: the fused order."""
    import numpy as np

    from vicw import bm25

    head, tail = fused[:pool], fused[pool:]
    if len(head) < 3 or lam >= 1.0:
        return fused
    words = [set(bm25.terms(strip_prefix(c.record))) for c in head]
    postings: dict[int, list[int]] = {}
    for i, ws in enumerate(words):
        for w in ws:
            postings.setdefault(w, []).append(i)
    shared = np.zeros((len(head), len(head)), dtype=np.float32)
    for docs in postings.values():
        if len(docs) > 1:
            for i in docs:
                for j in docs:
                    shared[i, j] += 1.0
    sizes = np.array([len(ws) for ws in words], dtype=np.float32)
    jaccard = shared / np.maximum(sizes[:, None] + sizes[None, :] - shared, 1.0)
    top = head[0].score or 1.0
    relevance = lam * np.array([c.score / top for c in head], dtype=np.float32)
    nearest = np.zeros(len(head), dtype=np.float32)
    left = np.ones(len(head), dtype=bool)
    chosen: list[int] = []
    for _ in range(len(head)):
        gain = np.where(left, relevance - (1 - lam) * nearest, -np.inf)
        best = int(np.argmax(gain))
        chosen.append(best)
        left[best] = False
        np.maximum(nearest, jaccard[best], out=nearest)
    return [head[i] for i in chosen] + tail


def squash(x: float, scale: float) -> float:
    """BM25 (0..unbounded) onto 0..1, so it can be added to a cosine."""
    return 0.0 if x <= 0 else 2.0 / (1.0 + math.exp(-x / scale)) - 1.0


def score_fuse(dense: Sequence[Any], sparse: Sequence[Any], bm25_scale: float) -> Ranking:
    """(cosine + squashed BM25) / 2. A turn only BM25 found counts its cosine as 0: it ranks below
    what both agree on, but is not lost when the dense side has nothing (an exact number, a name)."""
    cos = {h.id: float(h.score) for h in dense}
    kw = {h.id: float(h.score) for h in sparse}
    records = {h.id: h for h in [*sparse, *dense]}
    scored = [(records[i], (cos.get(i, 0.0) + squash(kw.get(i, 0.0), bm25_scale)) / 2) for i in records]
    scored.sort(key=lambda rs: (-rs[1], rs[0].id))
    return Ranking("hybrid", scored)


def graph_seqs(graph: Any, tenant: str, session_id: str, intent: QueryIntent, k: int) -> list[tuple[int, float]]:
    """Turn numbers that mention the entities the query names (knowledge graph), best first. An
    entity mentioned everywhere (a speaker) says little about a turn: weight by rarity."""
    if graph is None or k <= 0 or not intent.tokens:
        return []
    terms = list(dict.fromkeys([*intent.names, *intent.tokens]))
    hits = graph.related(tenant, session_id, terms, limit=max(k, 10))
    weight: dict[int, float] = {}
    for hit in hits:
        seqs = hit.mentions.get(session_id, [])
        w = hit.score / math.log2(2 + len(seqs))
        for seq in seqs:
            weight[seq] = weight.get(seq, 0.0) + w
    return sorted(weight.items(), key=lambda sw: (-sw[1], -sw[0]))[:k]


_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


def bridge_names(records: Sequence[MemoryRecord], intent: QueryIntent, speakers: set[str]) -> list[str]:
    """Names in the best hits that the query did not use: the bridge to a second hop
    ("my colleague from Ghent" -> "Ines" -> what Ines recommended)."""
    asked = {n.lower() for n in intent.names} | set(intent.tokens)
    out: list[str] = []
    for record in records:
        for name in _NAME.findall(strip_prefix(record)):
            key = name.lower()
            if key not in asked and key not in speakers and key not in STOP_WORDS and key not in out:
                out.append(key)
    return out


def mentions_any(record: MemoryRecord, names: Sequence[str]) -> bool:
    words = set(re.findall(r"[a-z]+", strip_prefix(record).lower()))
    return any(n in words for n in names)


def named_speakers(intent: QueryIntent, state: Any) -> list[str]:
    """Speakers of the live window that the question names, as they are stored (case kept)."""
    if state is None or not intent.text:
        return []
    speakers = {(t.name or "").lower(): t.name for t in state.turns if t.name}
    words = re.findall(r"[^\W\d_]+", intent.text.lower())
    return list(dict.fromkeys(speakers[w] for w in words if w in speakers))


def neighbour_seqs(record: MemoryRecord, session_id: str) -> list[int]:
    """The turn numbers that may complete a hit's exchange (checked by `completes_exchange`)."""
    if record.kind != "conversation" or record.session_id != session_id:
        return []
    return [record.seq - 1, record.seq + 1]


def completes_exchange(hit: MemoryRecord, other: MemoryRecord) -> bool:
    """The answer to a question, the question an answer replies to, or what a very short reply
    ("yes, on Friday") was about."""
    text = strip_prefix(hit).rstrip()
    if other.seq == hit.seq + 1:
        return text.endswith("?")
    if other.seq == hit.seq - 1:
        return len(text.split()) <= SHORT_REPLY_WORDS or strip_prefix(other).rstrip().endswith("?")
    return False
