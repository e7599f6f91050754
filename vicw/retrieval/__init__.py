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
    from vicw.config import Settings

__all__ = ["HybridMemorySource", "RetrievalRecipe", "build_memory_source"]


def build_memory_source(settings: Settings) -> HybridMemorySource | None:
    """The configured source, or None when there is no vector store (retrieval then stays off)."""
    from vicw import container

    vectors = container.vector_store()
    if vectors is None or not settings.rag_enabled:
        return None
    graph = None
    try:
        graph = container.graph_store()
    except Exception as exc:  # noqa: BLE001 - no graph: dense + keyword still work
        from vicw.observability import logger

        logger.warning("graph store unavailable for retrieval", exc_info=exc, extra={"error": type(exc).__name__})
    from vicw.loop_guard import BoredomCounter

    redis = container.window_store().r
    return HybridMemorySource(
        RetrievalRecipe.from_settings(settings),
        container.token_counter(),
        vectors=vectors,
        embedder=container.embedder(),
        graph=graph,
        redis=redis,
        boredom=BoredomCounter(redis, settings.boredom_threshold),
    )
