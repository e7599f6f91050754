"""The composition root: dependencies built once per process (a Lambda cold start) and shared by every entry point.

Each builder is cached, so the chat app, the cold-path handlers and the local runner in one
process share one Redis pool, one embedding model and one Qdrant client (local-mode Qdrant
allows only one client per storage folder).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from vicw.config import Settings, get_settings

if TYPE_CHECKING:
    import redis

    from vicw.auth import KeyTable
    from vicw.cold_path import ColdPathWorker
    from vicw.conversation import Conversation, MemorySource
    from vicw.forget import Stores
    from vicw.queues import JobPublisher, QueueRef
    from vicw.tokens import TokenCounter
    from vicw.vector_store import VectorStore
    from vicw.window_store import WindowStore


def settings() -> Settings:
    return get_settings()


@cache
def token_counter() -> TokenCounter:
    from vicw.tokens import TokenCounter

    return TokenCounter(settings().token_encoding)


@cache
def redis_url() -> str:
    """The working-window Redis URL: REDIS_URL, or read at run time from REDIS_URL_SECRET (AWS).

    With REDIS_REQUIRE_TLS a plain redis:// URL is refused. Errors never show the URL (it may
    hold a password).
    """
    s = settings()
    url = s.redis_url
    if s.redis_url_secret:
        from vicw.secrets import get_secret_value

        url = get_secret_value(s.redis_url_secret).get_secret_value()
    if s.redis_require_tls and not url.startswith("rediss://"):
        from vicw.config import SettingsError

        where = f"the secret {s.redis_url_secret!r}" if s.redis_url_secret else "REDIS_URL"
        raise SettingsError(f"REDIS_REQUIRE_TLS is set but {where} does not hold a rediss:// (TLS) URL")
    return url


@cache
def window_store() -> WindowStore:
    from vicw.window_store import WindowStore

    return WindowStore.from_url(redis_url())


@cache
def publisher() -> JobPublisher:
    from vicw.queues import JobPublisher

    s = settings()
    return JobPublisher(window_store(), s.offload_topic_arn, s.offload_queue_url, confirm_after=s.outbox_confirm_after_seconds)


def queues() -> list[QueueRef]:
    from vicw.queues import QueueRef

    s = settings()
    return [
        QueueRef("offload", s.offload_queue_url, s.offload_dlq_url),
        QueueRef("graph", s.graph_queue_url, s.graph_dlq_url),
    ]


def queue_depths() -> dict[str, dict[str, Any]]:
    """Depths of the configured cold-path queues and their DLQs (what /metrics and /stats show)."""
    from vicw.queues import queue_depths as depths

    configured = [q for q in queues() if q.url or q.dlq_url]
    return depths(configured) if configured else {}


@cache
def llm():  # noqa: ANN201 - LLMProvider | None
    from vicw.llm.factory import build_provider

    return build_provider(settings())


@cache
def embedder():  # noqa: ANN201
    from vicw.embeddings import Embedder

    return Embedder(settings())


@cache
def vector_store():  # noqa: ANN201
    s = settings()
    if not (s.qdrant_url or s.qdrant_path):
        return None
    return build_vector_store(with_secrets(s, qdrant_api_key="qdrant_api_key_secret"))


@cache
def graph_store():  # noqa: ANN201
    if settings().graph_backend == "none":
        return None
    from vicw.graph_store import build_graph_store

    return build_graph_store(with_secrets(settings(), neo4j_password="neo4j_password_secret"))  # noqa: S106 - names the secret


def build_vector_store(s: Settings) -> VectorStore | None:
    """The configured store (Qdrant Edge in process, or a Qdrant server), or None when neither
    QDRANT_URL nor QDRANT_PATH is set."""
    from vicw.vector_store import QdrantVectorStore, vector_engine

    engine = vector_engine(s)
    if engine is None:
        return None
    if engine == "edge":
        from vicw.vector_edge import EdgeVectorStore

        return EdgeVectorStore(s)
    return QdrantVectorStore(s)


def with_secrets(s: Settings, **fields: str) -> Settings:
    """Settings with each unset secret field filled from the secret its `*_secret` field names (AWS)."""
    updates = {}
    for field, secret_field in fields.items():
        name = getattr(s, secret_field)
        if getattr(s, field) is None and name:
            from vicw.secrets import get_secret_value

            updates[field] = get_secret_value(name)
    return s.model_copy(update=updates) if updates else s


@cache
def archive():  # noqa: ANN201
    from vicw.archive import JobArchive

    s = settings()
    return JobArchive(s) if s.archive_bucket else None


@cache
def memory_source():  # noqa: ANN201 - MemorySource | None
    try:
        from vicw.retrieval import build_memory_source
    except ImportError:
        return None
    s = settings()
    vectors = vector_store()
    if vectors is None or not s.rag_enabled:
        return None  # no vector store: retrieval stays off
    graph = None
    try:
        graph = graph_store()
    except Exception as exc:  # noqa: BLE001 - no graph: dense + keyword still work
        from vicw.observability import logger

        logger.warning("graph store unavailable for retrieval", exc_info=exc, extra={"error": type(exc).__name__})
    return build_memory_source(s, token_counter(), vectors=vectors, embedder=embedder(), graph=graph, redis=window_store().r)


@cache
def loop_guard():  # noqa: ANN201 - LoopGuard
    from vicw.loop_guard import build_loop_guard

    s = settings()
    return build_loop_guard(s, window_store().r, embedder() if s.echo_response_history_size > 0 else None)


@cache
def key_table() -> KeyTable:
    from vicw.auth import KeyTable

    s = settings()
    spec = s.vicw_api_keys.get_secret_value() if s.vicw_api_keys else ""
    if not spec and s.vicw_api_keys_parameter:
        from vicw.auth import RefreshingKeyTable
        from vicw.secrets import get_secret_value

        name = s.vicw_api_keys_parameter
        return RefreshingKeyTable(lambda: get_secret_value(name).get_secret_value())
    return KeyTable.from_spec(spec)


@cache
def conversation() -> Conversation:
    from vicw.conversation import Conversation

    return Conversation(settings(), token_counter(), window_store(), publisher(), llm(), memory_source(), loop_guard())


def forget_stores() -> Stores:
    """What a deletion (DELETE /sessions, DELETE /tenants, the retention sweep) must reach."""
    from vicw.forget import Stores

    def built_source() -> MemorySource | None:  # only a source already built has a cache to clear
        return memory_source() if memory_source.cache_info().currsize else None

    return Stores(window_store, archive, vector_store, graph_store, built_source)


def _redis_client(url: str | None) -> redis.Redis | None:
    import redis

    if not url:
        return None
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


def offload_worker() -> ColdPathWorker:
    """The offload function's worker: embed shed turns into the vector store, archive each job."""

    from vicw.cold_path import ColdPathWorker, OffloadProcessor

    s = settings()
    vectors = vector_store()
    if vectors is None:
        raise RuntimeError("the offload function needs a vector store: set QDRANT_URL (or QDRANT_PATH locally)")
    processor = OffloadProcessor(embedder(), vectors, archive())
    return ColdPathWorker(
        "offload", processor.process, _redis_client(redis_url()), warm_up=processor.embedder.warm_up, workers=s.cold_path_workers
    )


def graph_worker() -> ColdPathWorker:
    """The graph function's worker: extract entities and state items into the graph store."""
    from vicw.cold_path import ColdPathWorker, GraphProcessor

    extractor = None
    if settings().graph_extractor == "llm":
        provider = llm()
        if provider is None:
            from vicw.config import SettingsError

            raise SettingsError("GRAPH_EXTRACTOR=llm needs an LLM: set VICW_LLM_PROVIDER (or VICW_LLM_API_URL / BEDROCK_MODEL_ID)")
        from vicw.extraction import LLMExtractor

        extractor = LLMExtractor(provider)
    # One record at a time: two jobs of a session MERGE-ing the same entities concurrently could race
    # (no uniqueness constraints on FalkorDB), and a session's facts should land in order.
    processor = GraphProcessor(graph_store(), extractor)
    return ColdPathWorker("graph", processor.process, _redis_client(redis_url()))


def warm() -> None:
    """Build what every request needs at cold start, so no request pays for it (or times out on it)."""
    from vicw.observability import logger

    for build in (token_counter, window_store, publisher, key_table, llm, vector_store, graph_store, memory_source):
        try:
            build()
        except Exception as exc:  # noqa: BLE001 - a dependency that is down at start is reported by /health later
            logger.warning("dependency not ready at start", exc_info=exc,
                           extra={"dependency": build.__name__, "error": type(exc).__name__})
    try:
        if memory_source() is not None:
            # The first question must not pay for loading the query model or opening the vector engine.
            embedder().warm_up()
            vector_store().ping()
    except Exception as exc:  # noqa: BLE001 - retrieval then warms up on its first query
        logger.warning("retrieval not warmed up at start", exc_info=exc, extra={"error": type(exc).__name__})


def reset() -> None:
    """Forget every built dependency (tests and the local runner call this after changing env)."""
    if vector_store.cache_info().currsize:  # local-mode Qdrant locks its folder until closed
        store = vector_store()
        if store is not None:
            store.close()
    get_settings.cache_clear()
    for fn in (redis_url, token_counter, window_store, publisher, llm, embedder, vector_store, graph_store, archive,
               memory_source, loop_guard, key_table, conversation):
        fn.cache_clear()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
