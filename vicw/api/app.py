"""The chat API (FastAPI). Handlers parse, call the domain, and shape the response — nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from vicw import bootstrap
from vicw.api import schemas as s
from vicw.api import service
from vicw.api.deps import Tenant, is_admin_key, require_tenant, tenant_is_admin
from vicw.api.errors import ApiError, error_body, install_error_handlers, key_table_unavailable
from vicw.api.json_body import CheckedJSONRoute
from vicw.api.limits import BodyLimits, BodySizeLimit
from vicw.api.service import check_message_chars
from vicw.conversation import IncomingMessage, TurnResult
from vicw.models import utcnow
from vicw.observability import logger

if TYPE_CHECKING:
    from vicw.api.mcp_server import McpEndpoint

# Kept importable from here for older callers; new code imports them from vicw.api.deps / vicw.api.errors.
__all__ = ["ApiError", "Tenant", "create_app", "error_body", "is_admin_key", "key_table_unavailable", "require_tenant"]


def _rate_limiter(settings):  # noqa: ANN001, ANN202 - Settings -> RateLimiter | None
    """Per-tenant limits in Redis. If the Redis URL cannot be read at start (its secret is
    unreachable), every request fails with a 503 from the window store anyway: start without the
    limiter instead of failing the import, and say so."""
    from vicw.rate_limit import RateLimiter

    try:
        url = bootstrap.redis_url()
    except Exception:  # noqa: BLE001 - logged; the window store's own 503s say the rest
        logger.warning("Redis URL unavailable at start: per-tenant rate limits are off in this process", exc_info=True)
        return None
    return RateLimiter.from_settings(settings, url)


def create_app() -> FastAPI:
    settings = bootstrap.settings()
    # /docs and /openapi.json need no API key, so they are served only when VICW_PUBLIC_DOCS says so.
    docs = settings.vicw_public_docs
    app = FastAPI(
        title="VICW",
        version="0.1.0",
        description="Virtual Infinite Context Window: a working window in Redis, long-term memory in Qdrant and a graph.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.router.route_class = CheckedJSONRoute  # lone surrogates in a JSON body are a 422, on every route
    limits = BodyLimits.from_settings(settings)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_bytes, per_path=limits.per_path)
    app.state.rate_limiter = _rate_limiter(settings)

    install_error_handlers(app)

    # --- chat ----------------------------------------------------------------------------------
    @app.post("/chat", response_model=s.ChatResponse, tags=["chat"])
    def chat(body: s.ChatRequest, tenant: Tenant) -> s.ChatResponse:
        check_message_chars(body.message)
        result = bootstrap.conversation().chat(
            tenant, body.session_id, [IncomingMessage("user", body.message, body.name)], use_rag=body.use_rag
        )
        return _chat_response(body.session_id, result)

    @app.post("/v1/chat/completions", tags=["openai"])
    def chat_completions(body: s.OpenAIChatRequest, tenant: Tenant, x_session_id: Annotated[str | None, Header()] = None) -> object:
        from vicw.api.openai_compat import complete

        check_message_chars(*(m.text() for m in body.messages))
        return complete(body, tenant, x_session_id)

    @app.get("/v1/models", tags=["openai"])
    def models(_: Tenant) -> dict:
        provider = bootstrap.llm()
        name = provider.model if provider is not None else "vicw"
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "vicw"}]}

    # --- sessions ------------------------------------------------------------------------------
    @app.post("/sessions/{session_id}/messages", response_model=s.AppendMessagesResponse, tags=["sessions"])
    def append_messages(session_id: s.SessionId, body: s.AppendMessagesRequest, tenant: Tenant) -> s.AppendMessagesResponse:
        return service.append_messages(tenant, session_id, body)

    @app.get("/sessions/{session_id}", response_model=s.SessionStats, tags=["sessions"])
    def get_session(session_id: s.SessionId, tenant: Tenant) -> s.SessionStats:
        return service.get_session(tenant, session_id)

    @app.get("/sessions/{session_id}/state", response_model=s.StateResponse, tags=["sessions"])
    def session_state(session_id: s.SessionId, tenant: Tenant) -> s.StateResponse:
        return service.list_state(tenant, session_id)

    @app.post("/search", response_model=s.SearchResponse, tags=["sessions"])
    def search(body: s.SearchRequest, tenant: Tenant) -> s.SearchResponse:
        return service.search_memory(tenant, body)

    @app.delete("/sessions/{session_id}", tags=["sessions"])
    def delete_session(session_id: s.SessionId, tenant: Tenant) -> dict:
        return service.forget_session(tenant, session_id)

    @app.post("/reset", tags=["sessions"])
    def reset(body: s.ResetRequest, tenant: Tenant) -> dict:
        cleared = bootstrap.conversation().reset(tenant, body.session_id)
        return {"session_id": body.session_id, "window_cleared": cleared}

    @app.post("/sessions/{session_id}/context", response_model=s.ContextResponse, tags=["sessions"])
    def context_preview(session_id: s.SessionId, body: s.ContextRequest, tenant: Tenant) -> s.ContextResponse:
        return service.context_preview(tenant, session_id, body)

    # --- operations ----------------------------------------------------------------------------
    @app.get("/health", tags=["ops"])
    def health(authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        """Public: statuses only. With an admin tenant's key: what each check found."""
        from vicw.health import check_health

        report = check_health(detail=is_admin_key(authorization))
        return JSONResponse(report, 200 if report["status"] == "healthy" else 503)

    @app.get("/stats", tags=["ops"])
    def stats(tenant: Tenant) -> dict:
        from vicw.health import collect_stats

        return collect_stats(tenant, admin=tenant_is_admin(tenant))

    # MCP (streamable HTTP, stateless): the SDK is imported on the first /mcp request only.
    app.router.add_route(  # an ASGI app, which Starlette accepts as an endpoint (its stub says request handler)
        "/mcp", LazyMcpEndpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False  # type: ignore[arg-type]
    )

    from vicw.api.ops import router as ops_router

    app.include_router(ops_router)
    from vicw.api.admin import router as admin_router

    app.include_router(admin_router)
    from vicw.api.ingest import router as ingest_router

    app.include_router(ingest_router)
    return app


class LazyMcpEndpoint:
    """/mcp, built on first use so the other routes' cold starts do not pay for importing the MCP SDK."""

    def __init__(self) -> None:
        self._endpoint: McpEndpoint | None = None

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if self._endpoint is None:
            from vicw.api.mcp_server import McpEndpoint

            self._endpoint = McpEndpoint()
        await self._endpoint(scope, receive, send)


def _chat_response(session_id: str, result: TurnResult) -> s.ChatResponse:
    assert result.completion is not None and result.plan is not None
    return s.ChatResponse(
        response=result.completion.text,
        session_id=session_id,
        timestamp=utcnow(),
        tokens_in_context=result.plan.prompt_tokens,
        rag_items_injected=len(result.plan.memories),
        prompt_tokens=result.plan.prompt_tokens,
        tokens_saved=result.tokens_saved,
        offloaded_jobs=len(result.jobs),
        memory=s.MemoryStatusOut(**result.plan.memory.as_dict()),
    )
