"""The knobs of one retrieval run, gathered in one object so each step can be tested alone and
switched off on its own (every step below has a setting that disables it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vicw.config import Settings


@dataclass(frozen=True)
class RetrievalRecipe:
    top_k_semantic: int = 8  # dense candidates (0: no dense vector in the query)
    top_k_keyword: int = 8  # BM25 candidates (0: no sparse vector in the query)
    top_k_relational: int = 5  # graph-linked turns (0: graph step off)
    score_threshold: float = 0.25  # cosine floor for dense hits
    memory_token_budget: int = 3072  # what packing fills (the prompt decides what fits next to the window)
    fusion: str = "score"  # "rrf" / "dbsf": fused in the engine; "score": cosine + squashed BM25, fused here
    prefetch_limit: int = 24  # candidates each vector brings to the fusion
    bm25_scale: float = 8.0  # "score" fusion: BM25 score that squashes to ~0.46
    temporal_filter: bool = False  # a query naming a time adds a search restricted to that time range
    speaker_filter: bool = False  # a query naming a speaker of the window adds a search of that speaker's turns
    rrf_k: int = 60  # reciprocal rank fusion constant (Cormack et al. use 60), for merging the steps
    weights: tuple[tuple[str, float], ...] = (("hybrid", 1.0), ("graph", 0.5), ("temporal", 1.0), ("speaker", 1.0), ("hop", 0.5))
    hop_from: int = 0  # names in this many best hits seed a second query (0: off)
    neighbour_hits: int = 4  # how many of the best hits may pull in the turn that completes their exchange (0: off)
    max_memory_tokens: int = 160  # one memory never takes more than this (long turns are truncated)
    mmr_lambda: float = 0.7  # < 1: diversify the fused candidates by maximal marginal relevance (1: off)
    candidates: int = 100  # fused candidates to pack (0: the sum of the top-k settings)
    state_items: int = 10  # active goals/tasks/decisions/facts shown as a block
    completed_items: int = 3  # recently completed ones
    state_item_chars: int = 140

    @classmethod
    def from_settings(cls, s: Settings) -> RetrievalRecipe:
        return cls(
            top_k_semantic=s.rag_top_k_semantic,
            top_k_keyword=s.rag_top_k_keyword,
            top_k_relational=s.rag_top_k_relational,
            score_threshold=s.rag_score_threshold,
            memory_token_budget=max(s.memory_token_budget, s.memory_token_budget_max or 0),
            candidates=s.rag_candidates,
            fusion=s.rag_fusion,
            bm25_scale=s.rag_bm25_scale,
            prefetch_limit=s.rag_prefetch_limit,
            temporal_filter=s.rag_temporal_filter,
            speaker_filter=s.rag_speaker_filter,
            hop_from=s.rag_hop_from,
            neighbour_hits=s.rag_neighbour_hits,
            max_memory_tokens=s.rag_max_memory_tokens,
            mmr_lambda=s.rag_mmr_lambda,
        )

    def weight(self, step: str) -> float:
        return dict(self.weights).get(step, 1.0)

    @property
    def candidate_limit(self) -> int:
        """How many fused candidates are worth packing (the prompt budget trims the rest)."""
        return self.candidates or max(1, self.top_k_semantic + self.top_k_keyword + self.top_k_relational)
