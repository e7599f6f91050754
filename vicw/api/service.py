"""What each session operation does, shared by both edges: the HTTP routes (`vicw.api.app`) and the
MCP tools (`vicw.api.mcp_server`). Each edge only parses its input with the schemas in
`vicw.api.schemas`, calls one of these with the caller's tenant, and shapes the result.

Errors: `ApiError` is input the caller must change (a status and a message the caller can act
on); `DependencyUnavailable` names the store that could not answer. Both edges turn them into
their own error shapes (an HTTP status, an MCP tool error).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis

from vicw import bootstrap
from vicw.api import schemas as s
from vicw.api.errors import ApiError
from vicw.conversation import IncomingMessage
from vicw.errors import StoreUnavailable
from vicw.graph_store.base import GraphStoreError
from vicw.models import WindowState, as_utc
from vicw.observability import logger
from vicw.window import MessageTooLarge, window_tokens

# list_state: how many items of each status a caller gets (newest first).
STATE_ACTIVE_LIMIT = 50
STATE_COMPLETED_LIMIT = 10


# A store that could not answer (the older name of vicw.errors.StoreUnavailable).
DependencyUnavailable = StoreUnavailable


def outage_of(exc: BaseException) -> str | None:
    """Which dependency an exception from a store call says is down, or None if it is not an outage."""
    if isinstance(exc, DependencyUnavailable):
        return exc.dependency
    if isinstance(exc, redis.RedisError):
        return "the window store (Redis)"
    if isinstance(exc, GraphStoreError):
        return "the graph store"
    module = type(exc).__module__ or ""
    if module.startswith(("botocore", "boto3", "s3transfer")):
        return "the job archive (S3)"
    if module.startswith(("qdrant_client", "grpc", "httpx", "httpcore")):
        return "the vector store (Qdrant)"
    return None


@contextmanager
def dependencies() -> Iterator[None]:
    """Around store calls: an outage becomes `DependencyUnavailable` naming the store (logged with
    its traceback); anything else passes through unchanged."""
    try:
        yield
    except (ApiError, DependencyUnavailable, MessageTooLarge):
        raise
    except Exception as exc:
        name = outage_of(exc)
        if name is None:
            raise
        logger.warning("dependency unavailable", extra={"dependency": name, "error": type(exc).__name__}, exc_info=True)
        raise DependencyUnavailable(name) from exc


# --- append ------------------------------------------------------------------------------------
def check_message_chars(*texts: str) -> None:
    """MAX_MESSAGE_CHARS: one message's content may not be longer than this many characters."""
    limit = bootstrap.settings().max_message_chars
    longest = max((len(t) for t in texts), default=0)
    if longest > limit:
        raise ApiError(413, f"a message is {longest} characters long, over the limit of {limit} (MAX_MESSAGE_CHARS)",
                       "message_too_large")


def append_messages(tenant: str, session_id: str, body: s.AppendMessagesRequest) -> s.AppendMessagesResponse:
    """Append turns to a session's window (a system message replaces the pinned system prompt)."""
    check_message_chars(*(m.content for m in body.messages))
    limit = bootstrap.settings().max_messages_per_request
    if len(body.messages) > limit:
        raise ApiError(413, f"too many messages in one request: {len(body.messages)} > {limit} (MAX_MESSAGES_PER_REQUEST)")
    system = [m.content for m in body.messages if m.role == "system"]
    rest = [IncomingMessage(m.role, m.content, m.name, m.timestamp) for m in body.messages if m.role != "system"]
    try:
        result = bootstrap.conversation().record(tenant, session_id, rest, system_prompt=system[-1] if system else None)
    except ValueError as exc:
        if isinstance(exc, MessageTooLarge):
            raise
        raise ApiError(422, str(exc)) from None
    return s.AppendMessagesResponse(
        session_id=session_id, appended=len(rest), offload_jobs=len(result.jobs),
        tokens=result.state.tokens, budget=bootstrap.settings().window_budget,
    )


# --- read --------------------------------------------------------------------------------------
def session_stats(session_id: str, state: WindowState | None) -> s.SessionStats:
    settings = bootstrap.settings()
    budget = settings.window_budget
    if state is None:
        return s.SessionStats(
            session_id=session_id, messages=0, tokens=0, budget=budget, pressure=0.0, offloaded_jobs=0,
            offloaded_turns=0, offloaded_tokens=0, total_turns=0, total_tokens=0,
            max_context_tokens=settings.max_context_tokens,
        )
    tokens = window_tokens(state.turns)
    return s.SessionStats(
        session_id=session_id,
        messages=len(state.turns),
        tokens=tokens,
        budget=budget,
        pressure=round(tokens / budget, 4),
        offloaded_jobs=state.offloaded_jobs,
        offloaded_turns=state.offloaded_turns,
        offloaded_tokens=state.offloaded_tokens,
        total_turns=state.total_turns,
        total_tokens=state.total_tokens,
        max_context_tokens=settings.max_context_tokens,
        created_at=state.created_at,
        updated_at=state.updated_at,
    )


def get_session(tenant: str, session_id: str) -> s.SessionStats:
    return session_stats(session_id, bootstrap.window_store().load(tenant, session_id))


def context_preview(tenant: str, session_id: str, body: s.ContextRequest) -> s.ContextResponse:
    """The exact prompt the LLM would get for `body.query`, without changing the session."""
    check_message_chars(body.query)
    plan = bootstrap.conversation().preview(tenant, session_id, body.query)
    return s.ContextResponse(
        session_id=session_id,
        messages=plan.messages,
        prompt_tokens=plan.prompt_tokens,
        budget=plan.budget,
        memories=[
            s.MemoryOut(id=m.id, text=m.text, score=m.score, source=m.source, turn_ids=m.turn_ids,
                        timestamp=m.timestamp, session_id=m.session_id)
            for m in plan.memories
        ],
        memory=s.MemoryStatusOut(**plan.memory.as_dict()),
    )


def search_memory(tenant: str, body: s.SearchRequest) -> s.SearchResponse:
    """Long-term memory matching a query: one session's (the same retrieval the prompt uses), or,
    without a session, one hybrid search over every session and shared document of the tenant."""
    check_message_chars(body.query)
    if body.session_id is not None:
        return _search_session(tenant, body.session_id, body.query, body.limit)
    return _search_tenant(tenant, body.query, body.limit)


def _search_session(tenant: str, session_id: str, query: str, limit: int) -> s.SearchResponse:
    with dependencies():
        state = bootstrap.window_store().load(tenant, session_id)
        source = bootstrap.memory_source()
        if source is None:
            return s.SearchResponse(query=query, session_id=session_id, memories=[], note=_NO_MEMORY)
        memories = source.retrieve(tenant, session_id, query, state or WindowState(tenant=tenant, session_id=session_id))
    hits = [
        s.MemoryHit(id=m.id, text=m.text, date=m.timestamp, speaker=m.speaker, score=round(m.score, 6), source=m.source,
                    session_id=m.session_id, turn_ids=m.turn_ids)
        for m in memories[:limit]
    ]
    return s.SearchResponse(query=query, session_id=session_id, memories=hits)


def _search_tenant(tenant: str, query: str, limit: int) -> s.SearchResponse:
    from vicw.vector_store import MemoryQuery

    settings = bootstrap.settings()
    with dependencies():
        vectors = bootstrap.vector_store()
        if vectors is None or not settings.rag_enabled:
            return s.SearchResponse(query=query, session_id=None, memories=[], note=_NO_MEMORY)
        # One hybrid engine query (meaning + exact words) scoped to the tenant, every session.
        q = MemoryQuery(tenant, None, dense=bootstrap.embedder().embed_one(query), text=query, limit=limit,
                        prefetch_limit=max(settings.rag_prefetch_limit, limit),
                        fusion=settings.rag_fusion if settings.rag_fusion != "score" else "rrf",
                        dense_threshold=settings.rag_score_threshold)
        found = vectors.query([q])[0]
    hits = []
    for h in found:
        if h.tenant != tenant:  # never trust a filter with another tenant's data
            continue
        where = h.session_id or f"doc:{h.job_id}"
        hits.append(s.MemoryHit(
            id=f"{where}#{h.seq}" + (f".{h.part}" if h.parts > 1 else ""), text=h.text,
            date=as_utc(datetime.fromisoformat(h.iso)) if h.iso else datetime.fromtimestamp(h.timestamp, UTC),
            speaker=h.speaker, score=round(h.score, 6), source="dense+keyword", session_id=h.session_id,
            turn_ids=[h.turn_id],
        ))
    return s.SearchResponse(query=query, session_id=None, memories=hits)


_NO_MEMORY = "long-term memory is off here (no vector store configured, or RAG_ENABLED=false)"


def list_state(tenant: str, session_id: str) -> s.StateResponse:
    """The session's active and recently completed goals, tasks, decisions and facts (from the graph)."""
    with dependencies():
        graph = bootstrap.graph_store()
        if graph is None:
            return s.StateResponse(session_id=session_id, active=[], completed=[],
                                   note="no graph store is configured (GRAPH_BACKEND=none)")
        active = graph.state_items(tenant, session_id, statuses=("active",), limit=STATE_ACTIVE_LIMIT)
        completed = graph.state_items(tenant, session_id, statuses=("completed",), limit=STATE_COMPLETED_LIMIT)
    return s.StateResponse(
        session_id=session_id,
        active=[_state_item(i) for i in active],
        completed=[_state_item(i) for i in completed],
    )


def _state_item(item) -> s.StateItemOut:  # noqa: ANN001 - vicw.extraction.StateItem
    return s.StateItemOut(
        kind=item.kind, status=item.status, text=item.text, subject=item.subject, dates=item.dates, amounts=item.amounts,
        turn_seqs=item.turn_seqs,
        updated_at=datetime.fromtimestamp(item.updated_at, UTC) if item.updated_at else None,
    )


# --- forget ------------------------------------------------------------------------------------
def forget_session(tenant: str, session_id: str) -> dict:
    """Delete the session from every store; the receipt says what went where (see vicw.forget)."""
    from vicw.forget import forget_session as forget

    with dependencies():
        return forget(bootstrap.forget_stores(), tenant, session_id)
