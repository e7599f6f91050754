"""Request and response models of the chat API (validated at the edge)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from vicw.models import InputDatetime

if TYPE_CHECKING:
    from vicw.conversation import TurnResult

# The one session-id rule, for every way an id arrives: paths, bodies (`session_id`), the
# X-Session-Id header and `user` of /v1. Checked with fullmatch: `$` in re.match would also
# accept a trailing newline, creating a session no route could name again.
SESSION_ID_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"  # as published in the OpenAPI schema
SESSION_ID_RULE = "1-128 characters of letters, digits, '.', '_' or '-' (not only dots)"
_SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def check_session_id(value: str) -> str:
    """`value` if it is a valid session id, else ValueError naming the rule."""
    if not isinstance(value, str) or _SESSION_ID.fullmatch(value) is None or not value.strip("."):
        raise ValueError(f"a session id must be {SESSION_ID_RULE}")
    return value


SessionId = Annotated[
    str,
    AfterValidator(check_session_id),
    WithJsonSchema({"type": "string", "pattern": SESSION_ID_PATTERN, "minLength": 1, "maxLength": 128}),
]
Role = Literal["system", "user", "assistant", "tool"]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    return value


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = Field(min_length=1)
    name: str | None = Field(None, max_length=128)
    timestamp: InputDatetime | None = Field(
        None, description="ISO-8601; kept with the turn and shown to the model. Without a timezone it means UTC.")

    _check_content = field_validator("content")(_non_blank)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: SessionId
    message: str = Field(min_length=1)
    use_rag: bool = True
    name: str | None = Field(None, max_length=128)

    _check_message = field_validator("message")(_non_blank)


class MemoryStatusOut(BaseModel):
    """Whether long-term memory took part in this answer. The same object in /chat, /context and the
    `vicw` extension of /v1/chat/completions."""

    status: Literal["ok", "degraded", "unavailable", "off"] = Field(
        description="ok: retrieval ran (it may have found nothing); degraded: part of it failed, the rest was used; "
                    "unavailable: it failed and the answer comes from the live window only; off: not requested or not configured")
    reason: str | None = Field(None, description="why, when the status is not ok")


class ChatResponse(BaseModel):
    response: str
    session_id: str
    timestamp: datetime
    tokens_in_context: int
    rag_items_injected: int
    prompt_tokens: int
    tokens_saved: int
    offloaded_jobs: int
    memory: MemoryStatusOut


class AppendMessagesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[MessageIn] = Field(min_length=1)


class AppendMessagesResponse(BaseModel):
    session_id: str
    appended: int
    offload_jobs: int
    tokens: int
    budget: int


class SessionStats(BaseModel):
    session_id: str
    messages: int
    tokens: int
    budget: int
    pressure: float
    offloaded_jobs: int
    offloaded_turns: int
    offloaded_tokens: int
    total_turns: int
    total_tokens: int
    max_context_tokens: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ContextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)

    _check_query = field_validator("query")(_non_blank)


class MemoryOut(BaseModel):
    id: str
    text: str
    score: float
    source: str
    turn_ids: list[str]
    timestamp: datetime | None
    session_id: str | None = None


class ContextResponse(BaseModel):
    session_id: str
    messages: list[dict[str, str]]
    prompt_tokens: int
    budget: int
    memories: list[MemoryOut]
    memory: MemoryStatusOut


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="What to look for, in plain words (a question or a few keywords).")
    session_id: SessionId | None = Field(
        None, description="Search this session's memory only; leave out to search every session of the caller.")
    limit: int = Field(10, ge=1, le=50, description="At most this many memories (1-50).")

    _check_query = field_validator("query")(_non_blank)


class MemoryHit(BaseModel):
    id: str
    text: str
    date: datetime | None
    speaker: str | None
    score: float
    source: str  # how it was found: dense, keyword, graph, temporal, neighbour (or several, joined by "+")
    session_id: str | None  # None for a document shared by the whole tenant
    turn_ids: list[str]


class SearchResponse(BaseModel):
    query: str
    session_id: str | None
    memories: list[MemoryHit]
    note: str | None = None


class StateItemOut(BaseModel):
    kind: Literal["goal", "task", "decision", "fact"]
    status: str
    text: str
    subject: str | None = None
    dates: list[str] = []
    amounts: list[str] = []
    turn_seqs: list[int] = []
    updated_at: datetime | None = None


class StateResponse(BaseModel):
    session_id: str
    active: list[StateItemOut]
    completed: list[StateItemOut]
    note: str | None = None


# --- OpenAI-compatible ---------------------------------------------------------------------------
class ContentPart(BaseModel):
    """One part of an OpenAI message's content list. Text parts must carry a string `text`;
    other parts (images, audio, …) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_part_has_text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a part of type 'text' needs a string `text`")
        return self


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, max_length=128)

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class OpenAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[OpenAIMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    user: str | None = None

    def stop_list(self) -> list[str] | None:
        return [self.stop] if isinstance(self.stop, str) else self.stop


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: SessionId


def extension(session_id: str, result: TurnResult) -> dict[str, Any]:
    """The `vicw` object an OpenAI-shaped reply carries (whole or streamed): what memory did this turn."""
    assert result.plan is not None
    return {
        "session_id": session_id,
        "memories_injected": len(result.plan.memories),
        "prompt_tokens": result.plan.prompt_tokens,
        "tokens_saved": result.tokens_saved,
        "offloaded_jobs": len(result.jobs),
        "memory": result.plan.memory.as_dict(),
    }
