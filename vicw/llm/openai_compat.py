"""Any OpenAI-compatible chat/completions endpoint (OpenAI, Ollama, vLLM, OpenRouter, LM Studio…).

VICW_LLM_API_URL is the FULL chat/completions URL, so servers that mount the API somewhere
unusual work without guessing. Errors map to the HTTP status VICW answers with:
timeout → 504, 429 after retries → 429, anything else upstream → 502. Messages name the host,
never the full URL (it may carry a key in its query) and never the API key.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from vicw.llm.base import (
    Completion,
    CompletionRequest,
    CompletionStream,
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    StreamEnd,
)
from vicw.observability import logger

KeySource = SecretStr | Callable[[], SecretStr | None] | None
_RETRY_STATUSES = {429, 500, 502, 503, 504}
_MAX_BACKOFF = 8.0
_MAX_ERROR_CHARS = 300


class OpenAICompatProvider:
    name = "openai"

    def __init__(
        self,
        url: str,
        api_key: KeySource = None,
        model: str = "default",
        timeout: float = 60.0,
        max_retries: int = 2,
        *,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("VICW_LLM_API_URL must be an http(s) URL to the chat/completions endpoint")
        self.url = url
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._key_source = api_key
        self._host = parts.hostname or "?"
        # Connecting should be quick; reading may legitimately take the whole budget.
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client = httpx.Client(timeout=limits, transport=transport)

    # --- public interface ------------------------------------------------------------------
    def complete(self, request: CompletionRequest) -> Completion:
        with self._send(self._payload(request, stream=False)) as response:
            data = self._json(response)
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise LLMError(f"LLM at {self._host} returned an unexpected response shape") from None
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            model=str(data.get("model") or self._model_for(request)),
            finish_reason=str(choice.get("finish_reason") or "stop"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )

    def stream(self, request: CompletionRequest) -> CompletionStream:
        return CompletionStream(self._stream(request), self._model_for(request))

    def check(self) -> dict[str, object]:
        return {"provider": self.name, "model": self.model, "url_host": self._host}

    def close(self) -> None:
        self._client.close()

    # --- request building ------------------------------------------------------------------
    def _model_for(self, request: CompletionRequest) -> str:
        return request.model or self.model

    def _payload(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self._model_for(request),
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            payload["stop"] = request.stop
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _key(self) -> str | None:
        source = self._key_source
        key = source() if callable(source) else source
        return key.get_secret_value() if key is not None else None

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    # --- transport with retries ------------------------------------------------------------
    @contextmanager
    def _send(self, payload: dict[str, Any]) -> Iterator[httpx.Response]:
        """POST with bounded retries; yields an open 2xx response, raises a mapped LLMError otherwise."""
        try:
            key = self._key()
        except Exception as exc:  # noqa: BLE001 - a secret lookup failure is an upstream failure
            raise LLMError(f"LLM API key unavailable: {exc}") from None
        headers = self._headers(key)
        attempt = 0
        while True:
            try:
                http_request = self._client.build_request("POST", self.url, json=payload, headers=headers)
                response = self._client.send(http_request, stream=True)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout) and attempt < self.max_retries:
                    attempt = self._wait(attempt, None, f"connect timeout to {self._host}")
                    continue
                raise LLMTimeout(f"LLM at {self._host} did not answer within {self.timeout:g}s") from None
            except httpx.TransportError as exc:
                if attempt < self.max_retries:
                    attempt = self._wait(attempt, None, f"{type(exc).__name__} talking to {self._host}")
                    continue
                raise LLMError(f"LLM at {self._host} unreachable: {type(exc).__name__}") from None
            if response.status_code < 400:
                try:
                    yield response
                finally:
                    response.close()
                return
            body = self._error_text(response, key)
            response.close()
            status = response.status_code
            if status in _RETRY_STATUSES and attempt < self.max_retries:
                attempt = self._wait(attempt, response.headers.get("Retry-After"), f"HTTP {status} from {self._host}")
                continue
            if status == 429:
                raise LLMRateLimited(f"LLM at {self._host} is rate limiting requests: {body}")
            raise LLMError(f"LLM at {self._host} returned HTTP {status}: {body}")

    def _wait(self, attempt: int, retry_after: str | None, reason: str) -> int:
        delay = min(_MAX_BACKOFF, self.backoff * (2**attempt)) * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), _MAX_BACKOFF))
            except ValueError:
                pass  # an HTTP date: keep our own backoff
        extra = {"reason": reason, "attempt": attempt + 1, "delay_s": round(delay, 3)}
        logger.warning("LLM request retry", extra=extra)
        time.sleep(delay)
        return attempt + 1

    def _error_text(self, response: httpx.Response, key: str | None) -> str:
        try:
            raw = response.read().decode("utf-8", "replace")
        except httpx.HTTPError:
            return "(no body)"
        try:
            data = json.loads(raw)
            error = data.get("error") if isinstance(data, dict) else None
            message = error.get("message") if isinstance(error, dict) else error or data.get("message")
            text = str(message) if message else raw
        except (json.JSONDecodeError, AttributeError):
            text = raw
        # Some providers echo the (partial) key in auth errors: never pass it on.
        if key:
            text = text.replace(key, "***")
        text = " ".join(text.split())
        return text[:_MAX_ERROR_CHARS] or "(empty body)"

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            response.read()
            data = response.json()
        except httpx.TimeoutException:
            raise LLMTimeout(f"LLM at {self._host} did not answer within {self.timeout:g}s") from None
        except (httpx.HTTPError, json.JSONDecodeError):
            raise LLMError(f"LLM at {self._host} returned a body that is not JSON") from None
        if not isinstance(data, dict):
            raise LLMError(f"LLM at {self._host} returned an unexpected response shape")
        return data

    # --- streaming -------------------------------------------------------------------------
    def _stream(self, request: CompletionRequest) -> Generator[str | StreamEnd, None, None]:
        end = StreamEnd(model=self._model_for(request))
        with self._send(self._payload(request, stream=True)) as response:
            try:
                for data in _sse_data(response.iter_lines()):
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError:
                        continue  # keep-alive comments or junk between events
                    if chunk.get("error"):
                        raise LLMError(f"LLM at {self._host} failed mid-stream: {str(chunk['error'])[:200]}")
                    end.model = chunk.get("model") or end.model
                    usage = chunk.get("usage") or {}
                    if usage:
                        end.prompt_tokens = usage.get("prompt_tokens")
                        end.completion_tokens = usage.get("completion_tokens")
                    for choice in chunk.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            yield delta
                        if choice.get("finish_reason"):
                            end.finish_reason = choice["finish_reason"]
            except httpx.TimeoutException:
                raise LLMTimeout(f"LLM at {self._host} stalled for more than {self.timeout:g}s mid-stream") from None
            except httpx.TransportError as exc:
                raise LLMError(f"LLM at {self._host} dropped the stream: {type(exc).__name__}") from None
        yield end


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The `data:` payloads of a server-sent event stream (multi-line data joined by newlines)."""
    buffer: list[str] = []
    for line in lines:
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)
