"""Amazon Bedrock through the model-agnostic Converse API (`converse` / `converse_stream`).

OpenAI-style messages are mapped to Converse: system messages become `system` blocks, other roles
become user/assistant turns, consecutive turns of one role are merged (Converse requires strict
alternation, starting with the user). Errors map to the status VICW answers with:
ThrottlingException → 429, ValidationException → 400, model/read timeout → 504, anything else → 502.

Retries (throttling, 5xx, connection errors) are boto3's own "standard" retry mode, bounded by
LLM_MAX_RETRIES. Locally, AWS_ENDPOINT_URL_BEDROCK_RUNTIME points the client elsewhere.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from vicw.llm.base import (
    Completion,
    CompletionRequest,
    CompletionStream,
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    StreamEnd,
)

# Converse stop reasons in OpenAI's finish_reason vocabulary.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "tool_use": "tool_calls",
}
_RATE_LIMITED = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}
_TIMEOUTS = {"ModelTimeoutException"}
_CLIENT_ERRORS = {"ValidationException"}
# Converse requires the first turn to be the user's; used when a window starts with the assistant.
LEADING_USER_PLACEHOLDER = "(earlier conversation omitted)"


def to_converse(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """OpenAI chat messages → (system blocks, alternating user/assistant messages)."""
    system: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        text = str(message.get("content") or "")
        if not text.strip():
            continue  # Converse rejects blank text blocks
        role = message.get("role")
        if role in ("system", "developer"):
            system.append({"text": text})
            continue
        role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].append({"text": text})
        else:
            turns.append({"role": role, "content": [{"text": text}]})
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"text": LEADING_USER_PLACEHOLDER}]})
    return system, turns


class BedrockProvider:
    name = "bedrock"

    def __init__(
        self,
        model_id: str,
        region: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        *,
        endpoint_url: str | None = None,
    ) -> None:
        self.model = model_id
        self.region = region
        self.timeout = timeout
        config = Config(
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            retries={"total_max_attempts": max_retries + 1, "mode": "standard"},
        )
        self._client = boto3.session.Session().client(
            "bedrock-runtime", region_name=region, config=config, endpoint_url=endpoint_url
        )

    # --- public interface ------------------------------------------------------------------
    def complete(self, request: CompletionRequest) -> Completion:
        with self._mapped_errors():
            response = self._client.converse(**self._arguments(request))
        blocks = (response.get("output") or {}).get("message", {}).get("content") or []
        usage = response.get("usage") or {}
        return Completion(
            text="".join(b.get("text", "") for b in blocks),
            model=request.model or self.model,
            finish_reason=_FINISH_REASONS.get(response.get("stopReason", ""), response.get("stopReason") or "stop"),
            prompt_tokens=usage.get("inputTokens"),
            completion_tokens=usage.get("outputTokens"),
        )

    def stream(self, request: CompletionRequest) -> CompletionStream:
        return CompletionStream(self._stream(request), request.model or self.model)

    def check(self) -> dict[str, object]:
        return {"provider": self.name, "model": self.model, "region": self._client.meta.region_name}

    # --- internals -------------------------------------------------------------------------
    def _arguments(self, request: CompletionRequest) -> dict[str, Any]:
        system, messages = to_converse(request.messages)
        if not messages:
            raise LLMError("the prompt has no user or assistant message for Bedrock", status_code=400)
        inference: dict[str, Any] = {"maxTokens": request.max_tokens, "temperature": request.temperature}
        if request.stop:
            inference["stopSequences"] = list(request.stop)
        arguments: dict[str, Any] = {
            "modelId": request.model or self.model,
            "messages": messages,
            "inferenceConfig": inference,
        }
        if system:
            arguments["system"] = system
        return arguments

    def _stream(self, request: CompletionRequest) -> Generator[str | StreamEnd, None, None]:
        end = StreamEnd(model=request.model or self.model)
        with self._mapped_errors():
            response = self._client.converse_stream(**self._arguments(request))
            events = response["stream"]
            try:
                for event in events:
                    if "contentBlockDelta" in event:
                        text = event["contentBlockDelta"].get("delta", {}).get("text")
                        if text:
                            yield text
                    elif "messageStop" in event:
                        reason = event["messageStop"].get("stopReason", "")
                        end.finish_reason = _FINISH_REASONS.get(reason, reason or "stop")
                    elif "metadata" in event:
                        usage = event["metadata"].get("usage") or {}
                        end.prompt_tokens = usage.get("inputTokens")
                        end.completion_tokens = usage.get("outputTokens")
            finally:
                events.close()
        yield end

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """Turn botocore failures into LLMError subclasses carrying VICW's status."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            code = code[:1].upper() + code[1:]  # stream exceptions arrive as "throttlingException"
            message = " ".join(str(error.get("Message") or "").split())[:300]
            detail = f"Bedrock {code} for {self.model}: {message}".rstrip(": ")
            if code in _RATE_LIMITED:
                raise LLMRateLimited(detail) from None
            if code in _TIMEOUTS:
                raise LLMTimeout(detail) from None
            if code in _CLIENT_ERRORS:
                raise LLMError(detail, status_code=400) from None
            raise LLMError(detail) from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise LLMTimeout(f"Bedrock did not answer within {self.timeout:g}s") from None
        except BotoCoreError as exc:
            raise LLMError(f"Bedrock unreachable: {type(exc).__name__}") from None
