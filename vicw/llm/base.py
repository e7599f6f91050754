"""The provider interface every LLM backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


class LLMError(RuntimeError):
    """A provider failure, carrying the HTTP status the API should answer with."""

    status_code = 502

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


class LLMTimeout(LLMError):
    status_code = 504


class LLMRateLimited(LLMError):
    status_code = 429


class LLMNotConfigured(LLMError):
    status_code = 503


@dataclass
class CompletionRequest:
    messages: list[dict[str, str]]  # OpenAI chat format: role, content (name folded into content)
    max_tokens: int
    temperature: float
    stop: list[str] | None = None
    model: str | None = None


@dataclass
class Completion:
    text: str
    model: str
    finish_reason: str = "stop"
    prompt_tokens: int | None = None  # the provider's real usage, when it reports one
    completion_tokens: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


class LLMProvider(Protocol):
    name: str
    model: str

    def complete(self, request: CompletionRequest) -> Completion: ...

    def stream(self, request: CompletionRequest) -> Iterator[str]:
        """Yield text deltas as they arrive."""
        ...

    def check(self) -> dict[str, object]:
        """Cheap health information (never a secret)."""
        ...
