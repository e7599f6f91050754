"""Loop prevention: a reply that echoes an earlier one is regenerated; items shown too often are flagged.

Echo guard: every reply is embedded and compared (cosine) with the session's last
ECHO_RESPONSE_HISTORY_SIZE replies, kept in Redis under the session's prefix (so forgetting the
session forgets them). At ECHO_SIMILARITY_THRESHOLD or above the reply is regenerated, up to
MAX_REGENERATION_ATTEMPTS times, each attempt with a firmer instruction and a little more
temperature; the last attempt also drops the retrieved memories from the prompt, since a memory
quoting the earlier reply is the usual cause of the echo. If every attempt still echoes, the last
one is kept: a repeated answer is better than none. Very short replies ("Sure.", "Done.") are
legitimately repeated and are not checked.

Boredom: each state-item line injected into a prompt is counted per session; once a line has been
injected more than BOREDOM_THRESHOLD times, the prompt carries a warning naming it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from vicw.observability import M, logger, metrics
from vicw.prompt import LOOP_HEADER
from vicw.window_store import session_prefix

if TYPE_CHECKING:
    from redis import Redis

    from vicw.config import Settings
    from vicw.embeddings import Embedder
    from vicw.llm.base import Completion, CompletionRequest
    from vicw.prompt import PromptPlan

MIN_CHECKED_WORDS = 8
ECHO_INSTRUCTIONS = (
    "Your previous draft repeated one of your earlier replies almost word for word. Write a new answer "
    "to the latest message and do not reuse your earlier wording.",
    "Your drafts keep repeating an earlier reply. Do not restate anything you have already said: give "
    "new information, or say in one sentence that you have nothing to add and ask a clarifying question.",
)
LAST_INSTRUCTION = (
    "Your drafts keep repeating an earlier reply, so the retrieved memories have been removed from this "
    "prompt. Answer the latest message from the conversation above only, in words you have not used before."
)


def echo_key(tenant: str, session_id: str) -> str:
    return session_prefix(tenant, session_id) + ":echo"


def boredom_key(tenant: str, session_id: str) -> str:
    return session_prefix(tenant, session_id) + ":boredom"


def injection_key(line: str) -> str:
    return hashlib.sha1(" ".join(line.split()).lower().encode()).hexdigest()[:16]  # noqa: S324 - a counter key, not security


def injected_lines(blocks: Sequence[str]) -> list[str]:
    """The item lines of the state blocks in a prompt (the warning block itself is not counted)."""
    return [
        line for block in blocks if not block.startswith(LOOP_HEADER)
        for line in block.splitlines() if line.startswith("- ")
    ]


def with_instruction(messages: list[dict[str, str]], instruction: str) -> list[dict[str, str]]:
    """The prompt with `instruction` appended to its system message (one system message, first)."""
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{instruction}"
    else:
        out.insert(0, {"role": "system", "content": instruction})
    return out


class BoredomCounter:
    def __init__(self, redis: Any, threshold: int) -> None:
        self.r = redis
        self.threshold = threshold

    def count(self, tenant: str, session_id: str, lines: Sequence[str]) -> None:
        if not lines:
            return
        key = boredom_key(tenant, session_id)
        with self.r.pipeline(transaction=False) as pipe:
            for line in lines:
                pipe.hincrby(key, injection_key(line), 1)
            pipe.execute()

    def counts(self, tenant: str, session_id: str, lines: Sequence[str]) -> list[int]:
        if not lines:
            return []
        raw = self.r.hmget(boredom_key(tenant, session_id), [injection_key(line) for line in lines])
        return [int(v or 0) for v in raw]

    def over_threshold(self, tenant: str, session_id: str, lines: Sequence[str]) -> list[str]:
        return [line for line, n in zip(lines, self.counts(tenant, session_id, lines), strict=True) if n > self.threshold]


@dataclass
class GuardOutcome:
    completion: Completion
    vector: list[float] | None
    similarity: float
    regenerations: int


class EchoGuard:
    def __init__(self, redis: Any, embedder: Any, history_size: int, threshold: float, max_attempts: int,
                 min_words: int = MIN_CHECKED_WORDS) -> None:
        self.r = redis
        self.embedder = embedder
        self.history_size = history_size
        self.threshold = threshold
        self.max_attempts = max_attempts
        self.min_words = min_words

    @property
    def enabled(self) -> bool:
        return self.history_size > 0 and self.embedder is not None

    def _checked(self, text: str) -> bool:
        return self.enabled and len(text.split()) >= self.min_words

    def history(self, tenant: str, session_id: str) -> np.ndarray:
        raw = self.r.lrange(echo_key(tenant, session_id), 0, self.history_size - 1)
        if not raw:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(b, dtype=np.float32) for b in raw])

    def similarity(self, history: np.ndarray, vector: Sequence[float]) -> float:
        if history.size == 0:
            return 0.0
        return float(np.max(history @ np.asarray(vector, dtype=np.float32)))

    def remember(self, tenant: str, session_id: str, vector: Sequence[float]) -> None:
        key = echo_key(tenant, session_id)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.lpush(key, np.asarray(vector, dtype=np.float32).tobytes())
            pipe.ltrim(key, 0, self.history_size - 1)
            pipe.execute()

    def request_for(
        self, request: CompletionRequest, attempt: int, without_memories: Callable[[], list[dict[str, str]]]
    ) -> CompletionRequest:
        """The request of regeneration `attempt` (1-based): firmer each time; the last drops the memories."""
        if attempt >= self.max_attempts:
            messages, instruction = without_memories(), LAST_INSTRUCTION
        else:
            messages, instruction = request.messages, ECHO_INSTRUCTIONS[min(attempt, len(ECHO_INSTRUCTIONS)) - 1]
        temperature = min(1.5, request.temperature + 0.2 * attempt)
        return replace(request, messages=with_instruction(messages, instruction), temperature=temperature)

    def guard(
        self,
        tenant: str,
        session_id: str,
        request: CompletionRequest,
        completion: Completion,
        complete: Callable[[CompletionRequest], Completion],
        without_memories: Callable[[], list[dict[str, str]]],
    ) -> GuardOutcome:
        """Return `completion`, or a regenerated one if it echoes a recent reply of this session."""
        if not self._checked(completion.text):
            return GuardOutcome(completion, None, 0.0, 0)
        history = self.history(tenant, session_id)
        vector = self.embedder.embed_one(completion.text)
        similarity = self.similarity(history, vector)
        attempt = 0
        while similarity >= self.threshold and attempt < self.max_attempts:
            attempt += 1
            metrics.add_metric(name=M.ECHO_REGENERATIONS, unit="Count", value=1)
            logger.info(
                "reply echoes an earlier one; regenerating",
                extra={"similarity": round(similarity, 3), "attempt": attempt, "session_id": session_id},
            )
            completion = complete(self.request_for(request, attempt, without_memories))
            if not self._checked(completion.text):
                return GuardOutcome(completion, None, 0.0, attempt)
            vector = self.embedder.embed_one(completion.text)
            similarity = self.similarity(history, vector)
        return GuardOutcome(completion, vector, similarity, attempt)

    def observe(self, tenant: str, session_id: str, text: str, vector: Sequence[float] | None = None) -> float | None:
        """Record a stored reply in the history (embedding it if needed); return its similarity to the
        previous ones (streamed replies cannot be regenerated, but an echo is still logged)."""
        if not self._checked(text):
            return None
        if vector is None:
            vector = self.embedder.embed_one(text)
            similarity = self.similarity(self.history(tenant, session_id), vector)
            if similarity >= self.threshold:
                logger.info("stored reply echoes an earlier one", extra={"similarity": round(similarity, 3), "session_id": session_id})
        else:
            similarity = None
        self.remember(tenant, session_id, vector)
        return similarity


class LoopGuard:
    """What the conversation calls: the echo guard around the LLM call, the counters after a reply."""

    def __init__(self, echo: EchoGuard, boredom: BoredomCounter) -> None:
        self.echo = echo
        self.boredom = boredom

    def guard(
        self,
        tenant: str,
        session_id: str,
        request: CompletionRequest,
        completion: Completion,
        complete: Callable[[CompletionRequest], Completion],
        without_memories: Callable[[], list[dict[str, str]]],
    ) -> GuardOutcome:
        if not self.echo.enabled or self.echo.max_attempts == 0:
            return GuardOutcome(completion, None, 0.0, 0)
        return self.echo.guard(tenant, session_id, request, completion, complete, without_memories)

    def after_reply(self, tenant: str, session_id: str, plan: PromptPlan, text: str, vector: Sequence[float] | None = None) -> None:
        try:
            self.boredom.count(tenant, session_id, injected_lines(plan.extra_blocks))
            self.echo.observe(tenant, session_id, text, vector)
        except Exception as exc:  # noqa: BLE001 - bookkeeping must never fail a stored reply
            logger.warning("loop guard bookkeeping failed", exc_info=exc, extra={"error": type(exc).__name__})


def build_loop_guard(settings: Settings, redis: Redis, embedder: Embedder | None) -> LoopGuard:
    """`embedder` is used only when ECHO_RESPONSE_HISTORY_SIZE > 0 (the composition root passes None otherwise)."""
    echo = EchoGuard(
        redis, embedder, settings.echo_response_history_size, settings.echo_similarity_threshold, settings.max_regeneration_attempts
    )
    return LoopGuard(echo, BoredomCounter(redis, settings.boredom_threshold))
