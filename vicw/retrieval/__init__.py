"""Hybrid retrieval: memories of earlier turns and documents brought back into the prompt.

Modules, in the order a query meets them: `query` (what it asks), `source` (the `MemorySource`
the hot path calls: it asks the vector engine, which does the searching and filtering), `steps`
(rankings from the engine's hits, fusion, second hop, neighbours), `packing` (memories that fit
the budget). Nothing is cached in process: see vicw.vector_store for the engine side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vicw.retrieval.recipe import RetrievalRecipe
from vicw.retrieval.source import HybridMemorySource

if TYPE_CHECKING:
    from redis import Redis

    from vicw.config import Settings
    from vicw.embeddings import Embedder
    from vicw.graph_store.base import GraphStore
    from vicw.tokens import TokenCounter
    from vicw.vector_store import VectorStore

__all__ = ["HybridMemorySource", "RetrievalRecipe", "build_memory_source"]


def build_memory_source(
    settings: Settings, counter: TokenCounter, *, vectors: VectorStore, embedder: Embedder, graph: GraphStore | None, redis: Redis
) -> HybridMemorySource:
    """The configured source over the stores the composition root built (`graph` None: dense + keyword only)."""
    from vicw.loop_guard import BoredomCounter

    return HybridMemorySource(
        RetrievalRecipe.from_settings(settings),
        counter,
        vectors=vectors,
        embedder=embedder,
        graph=graph,
        redis=redis,
        boredom=BoredomCounter(redis, settings.boredom_threshold),
    )
