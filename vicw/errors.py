"""The one error hierarchy: what went wrong, in the domain's words, independent of any store or edge.

Every error a caller may see derives from `VicwError` and says how it should be answered: `status`
(an HTTP status) and `kind` (the OpenAI-style error type). The HTTP edge maps them in one place
(`vicw.api.errors.install_error_handlers`); the MCP edge turns them into tool errors. Adapters
translate their store's own exceptions into `StoreUnavailable` naming the store, so no client
library's exception type has to be known above them.

Each class also keeps the builtin it replaced (`ValueError`, `RuntimeError`, `LookupError`) as a
base, so existing `except ValueError` code keeps working while callers move to these names.
"""

from __future__ import annotations


class VicwError(Exception):
    """Base of every error VICW raises on purpose."""

    status: int = 500
    kind: str = "internal_error"
    #: Seconds a client should wait before retrying (the HTTP Retry-After header), if retrying helps.
    retry_after: int | None = None


class InvalidInput(VicwError, ValueError):
    """The request cannot be served as sent; the caller must change it."""

    status = 400
    kind = "invalid_request_error"


class NotFound(VicwError, LookupError):
    """What the request names does not exist (for this tenant)."""

    status = 404
    kind = "not_found"


class PayloadTooLarge(VicwError, ValueError):
    """A message or document is over its size limit."""

    status = 413
    kind = "payload_too_large"


class RateLimited(VicwError):
    """The caller is over a limit; `retry_after` says when to come back."""

    status = 429
    kind = "rate_limit_exceeded"


class StoreUnavailable(VicwError, RuntimeError):
    """A store the operation needs did not answer: an outage, not a mistake in the request."""

    status = 503
    kind = "service_unavailable"
    retry_after = 1

    def __init__(self, store: str, message: str | None = None) -> None:
        super().__init__(message or f"{store} is unavailable; retry shortly")
        self.store = store

    @property
    def dependency(self) -> str:
        """The store's name (the older attribute name)."""
        return self.store


class Misconfigured(VicwError, RuntimeError):
    """A setting or a secret is missing, unreadable or refused: the operator must fix it."""

    status = 503
    kind = "service_unavailable"


class LlmFailed(VicwError, RuntimeError):
    """The language model did not produce a reply (timeout, refusal, upstream error)."""

    status = 502
    kind = "llm_error"
