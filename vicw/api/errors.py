"""How the HTTP edge answers errors: `ApiError` for a request the caller must change, and the one
place where every `vicw.errors.VicwError` (and the framework's own errors) becomes a status code
and a JSON body."""

from __future__ import annotations

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vicw.errors import LlmFailed, Misconfigured, VicwError
from vicw.observability import M, logger, metrics


class ApiError(VicwError):
    """The request cannot be served as sent: `status` is the HTTP status, `message` says why."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


def error_body(status: int, message: str, kind: str) -> dict:
    # "error" follows the OpenAI shape (so SDKs show the message); "detail" follows FastAPI's.
    return {"error": {"message": message, "type": kind, "code": status}, "detail": message}


def key_table_unavailable(exc: Exception) -> ApiError:
    """503 for a key table that cannot be loaded (missing parameter, no permission, malformed entry).

    Every request is refused (auth fails closed), but with a JSON body that says why instead of a
    bare 500. The messages of SecretUnavailable and the table parser name the parameter or the entry
    number, never a key.
    """
    from vicw.secrets import SecretUnavailable

    reason = str(exc) if isinstance(exc, SecretUnavailable | ValueError) else type(exc).__name__
    logger.warning("API key table unavailable", exc_info=True)
    return ApiError(503, f"the API key table could not be loaded ({reason}); retry shortly or ask the operator",
                    "service_unavailable", {"Retry-After": "5"})


def error_response(exc: VicwError) -> JSONResponse:
    """The status, body and headers for one of our errors."""
    if isinstance(exc, ApiError):
        return JSONResponse(error_body(exc.status, exc.message, exc.kind), exc.status, headers=exc.headers)
    if isinstance(exc, LlmFailed):
        metrics.add_metric(name=M.LLM_ERRORS, unit="Count", value=1)
        status = getattr(exc, "status_code", exc.status)
        note = " Your message was saved in the session; retry to get a reply."
        return JSONResponse(error_body(status, str(exc) + note, exc.kind), status)
    if isinstance(exc, Misconfigured):
        # A secret (e.g. the Redis URL) could not be read, or holds a value this stage refuses.
        logger.error("dependency configuration unavailable", extra={"error": str(exc)})
        return JSONResponse(error_body(exc.status, f"service misconfigured or unreachable: {exc}", exc.kind), exc.status)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse(error_body(exc.status, str(exc), exc.kind), exc.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VicwError)
    async def _vicw_error(_: Request, exc: VicwError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail), "invalid_request_error"), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p != "body")
            parts.append(f"{where}: {err['msg']}" if where else err["msg"])
        return JSONResponse(error_body(422, "invalid request: " + "; ".join(parts), "invalid_request_error"), 422)

    # Redis calls outside a service's `dependencies()` guard still raise redis-py's errors.
    @app.exception_handler(redis.RedisError)
    async def _redis_error(_: Request, exc: redis.RedisError) -> JSONResponse:
        logger.error("window store error", extra={"error": type(exc).__name__})
        return JSONResponse(error_body(503, "the window store (Redis) is unavailable; retry shortly", "service_unavailable"), 503)
