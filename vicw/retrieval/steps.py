"""The named steps of hybrid retrieval. Each takes a corpus (plus what it needs) and returns a
ranking: corpus rows, best first, with the step's own score. Fusion happens elsewhere."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vicw.retrieval.corpus import SessionCorpus
from vicw.retrieval.packing import strip_prefix
from vicw.retrieval.query import STOP_WORDS, QueryIntent

SHORT_REPLY_WORDS = 6


@dataclass
class Ranking:
    step: str
    rows: list[tuple[int, float]]  # (corpus row, step score), best first

    def __len__(self) -> int:
        return len(self.rows)


def _top(scores: np.ndarray, allowed: np.ndarray, k: int, floor: float) -> list[tuple[int, float]]:
    if k <= 0 or scores.size == 0:
        return []
    masked = np.where(allowed & (scores > floor), scores, -np.inf)
    k = min(k, int(np.isfinite(masked).sum()))
    if k == 0:
        return []
    idx = np.argpartition(-masked, k - 1)[:k]
    idx = idx[np.argsort(-masked[idx], kind="stable")]
    return [(int(i), float(masked[i])) for i in idx]


def dense_scores(corpus: SessionCorpus, query_vector: Sequence[float]) -> np.ndarray:
    if corpus.vectors is None or len(corpus) == 0:
        return np.zeros(len(corpus), dtype=np.float32)
    # einsum, not `@`: a BLAS matrix-vector product right after an onnxruntime call contends with its
    # spinning worker threads (~6 ms instead of ~0.2 ms at 1,500 x 384 on 2 cores).
    return np.einsum("ij,j->i", corpus.vectors, np.asarray(query_vector, dtype=np.float32))


def dense_step(corpus: SessionCorpus, scores: np.ndarray, allowed: np.ndarray, k: int, threshold: float) -> Ranking:
    """Semantic neighbours of the query (cosine: the vectors are unit length)."""
    return Ranking("dense", _top(scores, allowed, k, threshold))


def dense_step_from_store(corpus: SessionCorpus, store: Any, tenant: str, session_id: str, query_vector: Sequence[float],
                          allowed: np.ndarray, k: int, threshold: float) -> Ranking:
    """Dense step when the corpus has no vectors: ask the vector store (always tenant-filtered)."""
    rows_by_id = {r.id: i for i, r in enumerate(corpus.records)}
    hits = store.search(tenant, query_vector, session_id=session_id, limit=k * 2, score_threshold=threshold)
    rows = [(rows_by_id[h.id], h.score) for h in hits if h.id in rows_by_id and allowed[rows_by_id[h.id]]]
    return Ranking("dense", rows[:k])


def keyword_scores(corpus: SessionCorpus, intent: QueryIntent) -> np.ndarray:
    if corpus.bm25 is None or not intent.tokens:
        return np.zeros(len(corpus), dtype=np.float32)
    return np.asarray(corpus.bm25.get_scores(intent.tokens), dtype=np.float32)


def keyword_step(corpus: SessionCorpus, intent: QueryIntent, scores: np.ndarray, allowed: np.ndarray, k: int) -> Ranking:
    """BM25 over the session's archived turns. Rows holding every exact token of the query (numbers,
    dates, names) come first: "the invoice for 4,250" must find 4250, not a turn about invoices."""
    if k <= 0 or not np.any(scores > 0):
        return Ranking("keyword", [])
    ranked = _top(scores, allowed, max(k * 4, k), 0.0)
    if intent.exact:
        wanted = set(intent.exact)

        def exact_hits(row: int) -> int:
            return len(wanted & corpus.token_sets[row])

        ranked.sort(key=lambda rs: (-exact_hits(rs[0]), -rs[1]))
    return Ranking("keyword", ranked[:k])


def graph_step(corpus: SessionCorpus, graph: Any, tenant: str, session_id: str, intent: QueryIntent,
               allowed: np.ndarray, k: int) -> Ranking:
    """Turns that mention the entities the query names (knowledge graph). An entity mentioned
    everywhere (a speaker) says little about a turn, so each mention is weighted by its rarity."""
    if graph is None or k <= 0 or not intent.tokens:
        return Ranking("graph", [])
    terms = list(dict.fromkeys([*intent.names, *intent.tokens]))
    hits = graph.related(tenant, session_id, terms, limit=max(k, 10))
    weight: dict[int, float] = {}
    for hit in hits:
        seqs = hit.mentions.get(session_id, [])
        w = hit.score / math.log2(2 + len(seqs))
        for seq in seqs:
            weight[seq] = weight.get(seq, 0.0) + w
    rows: list[tuple[int, float]] = []
    for seq, w in sorted(weight.items(), key=lambda sw: (-sw[1], -sw[0])):
        for row in corpus.turn_rows(seq)[:1]:
            if allowed[row]:
                rows.append((row, w))
        if len(rows) >= k:
            break
    return Ranking("graph", rows)


def temporal_step(corpus: SessionCorpus, intent: QueryIntent, relevance: np.ndarray, allowed: np.ndarray, k: int) -> Ranking:
    """When the query names a time ("last week", "in March", a date), the relevant rows of that time."""
    if intent.time_range is None or k <= 0 or len(corpus) == 0:
        return Ranking("temporal", [])
    start, end = (t.timestamp() for t in intent.time_range)
    inside = (corpus.timestamps >= start) & (corpus.timestamps < end)
    return Ranking("temporal", _top(relevance, allowed & inside, k, 0.0))


_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


def bridge_names(corpus: SessionCorpus, rows: list[int], intent: QueryIntent) -> list[str]:
    """Names in the best hits that the query did not use: the bridge to a second hop
    ("my colleague from Ghent" -> "Ines" -> what Ines recommended)."""
    asked = {n.lower() for n in intent.names} | set(intent.tokens)
    speakers = corpus.speakers
    out: list[str] = []
    for row in rows:
        for name in _NAME.findall(strip_prefix(corpus.records[row])):
            key = name.lower()
            if key not in asked and key not in speakers and key not in STOP_WORDS and key not in out:
                out.append(key)
    return out


def hop_step(corpus: SessionCorpus, intent: QueryIntent, first: list[int], allowed: np.ndarray, k: int) -> Ranking:
    """Second hop: rows that mention a bridge name from the first hits, ranked by BM25 of query + name."""
    names = bridge_names(corpus, first, intent)
    if corpus.bm25 is None or not names or k <= 0:
        return Ranking("hop", [])
    scores = np.asarray(corpus.bm25.get_scores([*intent.tokens, *names]), dtype=np.float32)
    mentions = corpus.rows_with_any(names) & allowed
    mentions[list(first)] = False
    return Ranking("hop", _top(scores, mentions, k, 0.0))


def rrf_fuse(rankings: list[Ranking], weights: dict[str, float], k: int = 60) -> list[tuple[int, float, list[str]]]:
    """Reciprocal rank fusion: score(row) = sum over steps of weight / (k + rank). Returns (row, score, steps)."""
    fused: dict[int, float] = {}
    steps: dict[int, list[str]] = {}
    for ranking in rankings:
        w = weights.get(ranking.step, 1.0)
        for rank, (row, _) in enumerate(ranking.rows, start=1):
            fused[row] = fused.get(row, 0.0) + w / (k + rank)
            steps.setdefault(row, []).append(ranking.step)
    return sorted(((row, score, steps[row]) for row, score in fused.items()), key=lambda x: (-x[1], x[0]))


def neighbours(corpus: SessionCorpus, row: int, allowed: np.ndarray) -> list[int]:
    """The turn that completes a hit's exchange: the answer to a question, the question an answer
    replies to, or what a very short reply ("yes, on Friday") was about."""
    record = corpus.records[row]
    if record.kind != "conversation" or record.session_id != corpus.session_id:
        return []
    text = strip_prefix(record).rstrip()
    out = []
    if text.endswith("?"):
        out += corpus.turn_rows(record.seq + 1)[:1]
    before = corpus.turn_rows(record.seq - 1)[:1]
    if before and (len(text.split()) <= SHORT_REPLY_WORDS or strip_prefix(corpus.records[before[0]]).rstrip().endswith("?")):
        out += before
    return [r for r in out if allowed[r]]
