"""The provider interface every LLM backend implements."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from vicw.errors import LlmFailed


class LLMError(LlmFailed):
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


@dataclass
class StreamEnd:
    """The last item a provider's raw stream generator yields: how it finished and the real usage."""

    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None


class CompletionStream(Iterator[str]):
    """An iterator of text deltas that also knows the final result once it is exhausted.

        stream = provider.stream(request)
        for delta in stream:
            send(delta)
        stream.completion.prompt_tokens  # the provider's usage, when it reported one

    Providers build it from a generator yielding `str` deltas and, at the end, one `StreamEnd`.
    Closing it (or breaking out of a `with` block) closes the underlying connection.
    """

    def __init__(self, source: Generator[str | StreamEnd, None, None], model: str) -> None:
        self._source = source
        self._model = model
        self._parts: list[str] = []
        self._end: StreamEnd | None = None
        self._done = False

    def __iter__(self) -> CompletionStream:
        return self

    def __next__(self) -> str:
        while True:
            try:
                item = next(self._source)
            except StopIteration:
                self._done = True
                raise
            if isinstance(item, StreamEnd):
                self._end = item
                continue
            if item:
                self._parts.append(item)
                return item

    def close(self) -> None:
        self._source.close()
        self._done = True

    def __enter__(self) -> CompletionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def completion(self) -> Completion:
        """The whole answer; usage is only known after the stream is exhausted."""
        end = self._end or StreamEnd(finish_reason="stop" if self._done else "incomplete")
        return Completion(
            text=self.text,
            model=end.model or self._model,
            finish_reason=end.finish_reason,
            prompt_tokens=end.prompt_tokens,
            completion_tokens=end.completion_tokens,
        )


class LLMProvider(Protocol):
    name: str
    model: str

    def complete(self, request: CompletionRequest) -> Completion: ...

    def stream(self, request: CompletionRequest) -> Iterator[str]:
        """Yield text deltas as they arrive (the providers here return a CompletionStream)."""
        ...

    def check(self) -> dict[str, object]:
        """Cheap health information (never a secret)."""
        ...
