"""The hot path: record messages into a session's window, build the prompt, call the LLM.

Adapters (Redis, SQS, the LLM, retrieval) come in through the composition root (vicw.bootstrap); the window arithmetic is
the pure `vicw.window` module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from vicw.llm.base import CompletionRequest, LLMNotConfigured
from vicw.models import OffloadJob, WindowState, as_utc, render_content, utcnow
from vicw.observability import M, logger, metrics
from vicw.prompt import MEMORY_OK, Memory, MemoryStatus, PromptPlan, build_prompt
from vicw.redaction import mask_credentials
from vicw.tokens import REPLY_PRIMING
from vicw.window import NewTurn, WindowPolicy, append_turns, clear_window, message_digest

if TYPE_CHECKING:
    from vicw.config import Settings
    from vicw.llm.base import Completion, LLMProvider
    from vicw.loop_guard import LoopGuard
    from vicw.queues import JobPublisher
    from vicw.tokens import TokenCounter
    from vicw.window_store import WindowStore


@dataclass
class IncomingMessage:
    role: str
    content: str
    name: str | None = None
    timestamp: datetime | None = None


class MemorySource(Protocol):
    """What the hot path needs from retrieval (implemented in vicw.retrieval)."""

    def retrieve(self, tenant: str, session_id: str, query: str, state: WindowState) -> list[Memory]: ...

    def extra_blocks(self, tenant: str, session_id: str, state: WindowState) -> list[str]: ...


@dataclass
class TurnResult:
    state: WindowState
    jobs: list[OffloadJob]
    plan: PromptPlan | None = None
    completion: Completion | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    full_history_tokens: int = 0  # what the prompt would cost if the whole history were sent

    @property
    def tokens_saved(self) -> int:
        """Prompt tokens saved versus sending the whole history every turn."""
        return 0 if self.plan is None else max(0, self.full_history_tokens - self.plan.prompt_tokens)


class Conversation:
    def __init__(
        self,
        settings: Settings,
        counter: TokenCounter,
        windows: WindowStore,
        publisher: JobPublisher,
        llm: LLMProvider | None = None,
        memory: MemorySource | None = None,
        loop_guard: LoopGuard | None = None,
    ) -> None:
        self.settings = settings
        self.counter = counter
        self.windows = windows
        self.publisher = publisher
        self.llm = llm
        self.memory = memory
        self.loop_guard = loop_guard
        self.policy = WindowPolicy.from_settings(settings)

    # --- recording -----------------------------------------------------------------------------
    def _system_turn(self, content: str, now: datetime) -> NewTurn:
        return NewTurn(role="system", content=content, tokens=self.counter.count_message("system", content), timestamp=now, pinned=True)

    def _new_turns(self, messages: list[IncomingMessage], now: datetime) -> list[NewTurn]:
        out = []
        for m in messages:
            ts = as_utc(m.timestamp) if m.timestamp else now
            tokens = self.counter.count_message(m.role, render_content(m.role, m.content, m.name, ts))
            out.append(NewTurn(role=m.role, content=m.content, name=m.name, timestamp=ts, tokens=tokens))
        return out

    def record(
        self,
        tenant: str,
        session_id: str,
        messages: list[IncomingMessage],
        system_prompt: str | None = None,
    ) -> TurnResult:
        """Append messages atomically (relieving pressure), then hand shed turns to the queue."""
        started = time.perf_counter()
        now = utcnow()
        new = self._new_turns(messages, now)

        def change(current: WindowState | None) -> tuple[WindowState, list[OffloadJob], None]:
            state = current or WindowState(tenant=tenant, session_id=session_id)
            wanted_system = system_prompt or (None if current and current.turns else self.settings.system_prompt)
            state, sys_jobs = self._ensure_system(state, wanted_system, now)
            state, jobs = append_turns(state, new, self.policy, now)
            return state, sys_jobs + jobs, None

        state, jobs, _ = self.windows.update(tenant, session_id, change)
        self._hand_off(jobs)
        metrics.add_metric(name=M.WINDOW_PRESSURE, unit="Percent", value=100.0 * state.tokens / self.policy.budget)
        return TurnResult(state=state, jobs=jobs, timings_ms={"record": (time.perf_counter() - started) * 1000})

    def _hand_off(self, jobs: list[OffloadJob]) -> None:
        """Send jobs the window change already put in the outbox."""
        if not jobs:
            return
        self.publisher.publish(jobs)
        # Jobs an earlier outage left behind ride along with this relief (in Lambda there is no
        # background thread; the scheduled maintenance function sweeps the rest).
        self.publisher.flush_outbox(older_than=self.settings.outbox_resend_after_seconds, unconfirmed=False)
        metrics.add_metric(name=M.OFFLOADS, unit="Count", value=len(jobs))
        metrics.add_metric(name=M.OFFLOADED_TURNS, unit="Count", value=sum(len(j.turns) for j in jobs))

    def reset(self, tenant: str, session_id: str) -> bool:
        """Clear the working window: its turns go to long-term memory, the seq counter carries on.

        Returns whether there was anything to clear. The session's other short-lived keys (echo and
        boredom history) go too; its documents and long-term memory stay.
        """
        if self.windows.load(tenant, session_id) is None:
            return False
        now = utcnow()

        def change(current: WindowState | None) -> tuple[WindowState, list[OffloadJob], bool]:
            state = current or WindowState(tenant=tenant, session_id=session_id)
            fresh, job = clear_window(state, now)
            return fresh, [job] if job else [], bool(state.turns)

        _, jobs, cleared = self.windows.update(tenant, session_id, change)
        self.windows.delete_transient(tenant, session_id)
        self._hand_off(jobs)
        return cleared

    def _ensure_system(self, state: WindowState, content: str | None, now: datetime) -> tuple[WindowState, list[OffloadJob]]:
        """Keep exactly one pinned system turn, replacing it when the caller sends a different one."""
        if content is None:
            return state, []
        current = next((t for t in state.turns if t.pinned and t.role == "system"), None)
        if current is not None and current.content == content:
            return state, []
        state = state.model_copy(deep=True)
        if current is not None:
            state.turns = [t for t in state.turns if t is not current and not (t.pinned and t.role == "system")]
        limit = int(self.policy.budget * (self.policy.target_after_relief / 2))
        if self.counter.count_message("system", content) > limit:
            raise ValueError(f"system prompt is too long: at most {limit} tokens in this window")
        state, jobs = append_turns(state, [self._system_turn(content, now)], self.policy, now)
        # Pinned turns belong at the front, whatever order they were added in.
        state.turns.sort(key=lambda t: (not t.pinned, t.seq))
        return state, jobs

    def new_from_client_history(self, tenant: str, session_id: str, history: list[IncomingMessage]) -> list[IncomingMessage]:
        """OpenAI clients resend the whole conversation: keep only what we have not stored yet."""
        state = self.windows.load(tenant, session_id)
        convo = [m for m in history if m.role != "system"]
        if state is not None and state.history_digests:
            stored = state.history_count
            if 0 < stored <= len(convo):
                last = convo[stored - 1]
                if message_digest(last.role, last.content) == state.history_digests[-1]:
                    return convo[stored:]
        # Unknown or edited history: the new part is what follows the last assistant reply.
        last_assistant = max((i for i, m in enumerate(convo) if m.role == "assistant"), default=-1)
        return convo[last_assistant + 1 :]

    # --- prompting -----------------------------------------------------------------------------
    def plan(self, tenant: str, session_id: str, state: WindowState, query: str, use_rag: bool = True) -> tuple[PromptPlan, float]:
        started = time.perf_counter()
        memories: list[Memory] = []
        blocks: list[str] = []
        status = self._memory_off(use_rag, query)
        if status is None and self.memory is not None:
            # Long-term memory is an enhancement: a store or model outage must not fail the chat, but
            # it must never pass unnoticed either (response field, metric, WARNING with traceback).
            status = MEMORY_OK
            try:
                memories = self.memory.retrieve(tenant, session_id, query, state)
            except Exception as exc:  # noqa: BLE001
                status = self._memory_failed("retrieval", exc, tenant, session_id)
            try:
                blocks = self.memory.extra_blocks(tenant, session_id, state)
            except Exception as exc:  # noqa: BLE001
                failed = self._memory_failed("conversation state", exc, tenant, session_id)
                status = (MemoryStatus("degraded", failed.reason) if status.status == "ok"
                          else MemoryStatus("unavailable", f"{status.reason}; {failed.reason}"))
            if status.status != "ok":
                metrics.add_metric(name=M.MEMORY_UNAVAILABLE, unit="Count", value=1)
        retrieval_ms = (time.perf_counter() - started) * 1000
        plan = build_prompt(state, self.counter, self.policy.budget, memories, self.settings.memory_token_budget, blocks,
                            memory_budget_max=self.settings.memory_token_budget_max, window_min_tokens=self.settings.window_min_tokens)
        plan.memory = status or MEMORY_OK
        return plan, retrieval_ms

    def _memory_off(self, use_rag: bool, query: str) -> MemoryStatus | None:
        """Why long-term memory is not consulted for this turn (None: it is)."""
        if not use_rag:
            return MemoryStatus("off", "use_rag is false in this request")
        if not self.settings.rag_enabled:
            return MemoryStatus("off", "RAG_ENABLED is false")
        if self.memory is None:
            return MemoryStatus("off", "no vector store is configured (QDRANT_URL or QDRANT_PATH)")
        if not query:
            return MemoryStatus("off", "no user message to search for")
        return None

    def _memory_failed(self, what: str, exc: Exception, tenant: str, session_id: str) -> MemoryStatus:
        detail = mask_credentials(" ".join(str(exc).split()))[:300]
        reason = f"{what} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")
        logger.warning(f"long-term memory unavailable for this turn ({reason}); answering from the live window",
                       exc_info=exc, extra={"stage": what, "error": type(exc).__name__, "tenant": tenant, "session_id": session_id})
        return MemoryStatus("unavailable", reason)

    def preview(self, tenant: str, session_id: str, query: str) -> PromptPlan:
        """The exact prompt the LLM would get for `query`, without changing the session."""
        state = self.windows.load(tenant, session_id) or WindowState(tenant=tenant, session_id=session_id)
        now = utcnow()
        state, _ = self._ensure_system(state, None if state.turns else self.settings.system_prompt, now)
        state, _ = append_turns(state, self._new_turns([IncomingMessage("user", query)], now), self.policy, now)
        return self.plan(tenant, session_id, state, query)[0]

    def begin(
        self,
        tenant: str,
        session_id: str,
        messages: list[IncomingMessage],
        *,
        use_rag: bool = True,
        system_prompt: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> PendingTurn:
        """Record the caller's messages and build the request for the LLM (everything but the call)."""
        if self.llm is None:
            raise LLMNotConfigured(
                "no LLM is configured: set VICW_LLM_API_URL (+ VICW_LLM_API_KEY, VICW_LLM_MODEL_NAME) for an "
                "OpenAI-compatible server, or BEDROCK_MODEL_ID for Amazon Bedrock"
            )
        started = time.perf_counter()
        recorded = self.record(tenant, session_id, messages, system_prompt=system_prompt)
        query = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if query is None:  # a client retrying a turn whose message is already stored
            query = next((t.content for t in reversed(recorded.state.turns) if t.role == "user"), "")
        plan, retrieval_ms = self.plan(tenant, session_id, recorded.state, query, use_rag)
        request = CompletionRequest(
            messages=plan.messages,
            max_tokens=min(max_tokens or self.settings.llm_max_tokens, self.settings.llm_max_tokens),
            temperature=self.settings.llm_temperature if temperature is None else temperature,
            stop=stop,
        )
        return PendingTurn(tenant, session_id, recorded, plan, request, started, retrieval_ms)

    def finish(self, pending: PendingTurn, completion: Completion, llm_ms: float, reply_vector: list[float] | None = None) -> TurnResult:
        """Store the reply once and report the turn's figures."""
        reply = self.record(pending.tenant, pending.session_id, [IncomingMessage("assistant", completion.text)])
        if self.loop_guard is not None:  # echo history and injection counts (streamed replies too)
            self.loop_guard.after_reply(pending.tenant, pending.session_id, pending.plan, completion.text, reply_vector)
        total_ms = (time.perf_counter() - pending.started) * 1000
        plan = pending.plan
        result = TurnResult(
            state=reply.state,
            jobs=pending.recorded.jobs + reply.jobs,
            plan=plan,
            completion=completion,
            timings_ms={
                "retrieval": pending.retrieval_ms, "llm": llm_ms, "total": total_ms,
                "hot_path": total_ms - llm_ms - pending.retrieval_ms,
            },
            full_history_tokens=pending.recorded.state.total_tokens + REPLY_PRIMING,
        )
        metrics.add_metric(name=M.CHAT_REQUESTS, unit="Count", value=1)
        metrics.add_metric(name=M.CHAT_LATENCY_MS, unit="Milliseconds", value=total_ms)
        metrics.add_metric(name=M.LLM_LATENCY_MS, unit="Milliseconds", value=llm_ms)
        metrics.add_metric(name=M.RETRIEVAL_LATENCY_MS, unit="Milliseconds", value=pending.retrieval_ms)
        metrics.add_metric(name=M.HOT_PATH_LATENCY_MS, unit="Milliseconds", value=result.timings_ms["hot_path"])
        metrics.add_metric(name=M.PROMPT_TOKENS, unit="Count", value=plan.prompt_tokens)
        metrics.add_metric(name=M.MEMORIES_INJECTED, unit="Count", value=len(plan.memories))
        metrics.add_metric(name=M.TOKENS_SAVED, unit="Count", value=result.tokens_saved)
        return result

    def chat(self, tenant: str, session_id: str, messages: list[IncomingMessage], **options: object) -> TurnResult:
        pending = self.begin(tenant, session_id, messages, **options)  # type: ignore[arg-type]
        assert self.llm is not None
        llm_started = time.perf_counter()
        completion = self.llm.complete(pending.request)
        vector = None
        if self.loop_guard is not None:
            guarded = self.loop_guard.guard(
                tenant, session_id, pending.request, completion, self.llm.complete, lambda: self._without_memories(pending)
            )
            completion, vector = guarded.completion, guarded.vector
        return self.finish(pending, completion, (time.perf_counter() - llm_started) * 1000, vector)

    def _without_memories(self, pending: PendingTurn) -> list[dict[str, str]]:
        """The same prompt without retrieved memories (the echo guard's last resort)."""
        plan = pending.plan
        state, budget = pending.recorded.state, self.policy.budget
        return build_prompt(state, self.counter, budget, [], self.settings.memory_token_budget, plan.extra_blocks).messages


@dataclass
class PendingTurn:
    tenant: str
    session_id: str
    recorded: TurnResult
    plan: PromptPlan
    request: CompletionRequest
    started: float
    retrieval_ms: float
