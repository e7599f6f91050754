"""The hot path's core: a pure function of (window, new messages, policy) -> (window, offload jobs).

Nothing here touches Redis, SQS or the clock of its own accord, so it can be unit- and
property-tested for the invariants that matter: never over budget, no turn lost or duplicated,
order preserved.

Pressure relief, precisely:
  * `budget` is MAX_CONTEXT_TOKENS minus the completion reserve (LLM_MAX_TOKENS); the stored
    window (pinned system prompt included) plus reply priming is what "tokens" measures.
  * Relief fires when tokens > OFFLOAD_THRESHOLD x budget.
  * It sheds the oldest non-pinned turns. It aims for TARGET_AFTER_RELIEF x budget, but keeps the
    newest exchange (the last user turn and what follows it) whole as long as the window is then
    at or below HYSTERESIS_THRESHOLD x budget. So a relief always ends at or below the hysteresis
    level, which leaves a gap of (threshold - hysteresis) before the next relief can fire: no
    thrashing, one job per relief.
  * The newest turn is never shed. A single message that could not fit below the hysteresis
    level on its own is refused (MessageTooLarge -> HTTP 413): silently truncating it would lose
    what the user said, and /ingest exists for documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from vicw.errors import PayloadTooLarge
from vicw.models import OffloadJob, Turn, WindowState
from vicw.tokens import REPLY_PRIMING


class MessageTooLarge(PayloadTooLarge):
    kind = "message_too_large"

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(
            f"message has {tokens} tokens; one message may hold at most {limit} tokens in this "
            "window (MAX_CONTEXT_TOKENS x HYSTERESIS_THRESHOLD minus the system prompt). "
            "Split it, or send it to /ingest as a document."
        )
        self.tokens = tokens
        self.limit = limit


@dataclass(frozen=True)
class WindowPolicy:
    budget: int
    offload_threshold: float
    hysteresis_threshold: float
    target_after_relief: float

    @classmethod
    def from_settings(cls, settings: object) -> WindowPolicy:
        return cls(
            budget=settings.window_budget,  # type: ignore[attr-defined]
            offload_threshold=settings.offload_threshold,  # type: ignore[attr-defined]
            hysteresis_threshold=settings.hysteresis_threshold,  # type: ignore[attr-defined]
            target_after_relief=settings.target_after_relief,  # type: ignore[attr-defined]
        )

    @property
    def trigger_tokens(self) -> float:
        return self.offload_threshold * self.budget

    @property
    def hysteresis_tokens(self) -> float:
        return self.hysteresis_threshold * self.budget

    @property
    def target_tokens(self) -> float:
        return self.target_after_relief * self.budget


@dataclass(frozen=True)
class NewTurn:
    """A message to append, already counted."""

    role: str
    content: str
    tokens: int
    timestamp: datetime
    name: str | None = None
    pinned: bool = False


DIGESTS_KEPT = 8


def message_digest(role: str, content: str) -> str:
    return hashlib.sha256(f"{role}\x00{content}".encode()).hexdigest()[:16]


def window_tokens(turns: list[Turn]) -> int:
    return REPLY_PRIMING + sum(t.tokens for t in turns)


def max_message_tokens(state: WindowState, policy: WindowPolicy) -> int:
    pinned = sum(t.tokens for t in state.turns if t.pinned)
    return int(policy.hysteresis_tokens) - pinned - REPLY_PRIMING


def append_turns(
    state: WindowState, new: list[NewTurn], policy: WindowPolicy, now: datetime
) -> tuple[WindowState, list[OffloadJob]]:
    """Append messages in order, relieving pressure after each one. Returns a new state."""
    # Turns are never changed in place (only the list is), so a new list is copy enough; a deep
    # copy of the whole window was most of the hot path's CPU time.
    state = state.model_copy(update={"turns": list(state.turns)})
    jobs: list[OffloadJob] = []
    for item in new:
        if not item.pinned:
            limit = max_message_tokens(state, policy)
            if item.tokens > limit:
                raise MessageTooLarge(item.tokens, limit)
        turn = Turn(
            seq=state.next_seq,
            role=item.role,
            content=item.content,
            name=item.name,
            timestamp=item.timestamp,
            tokens=item.tokens,
            pinned=item.pinned,
        )
        state.next_seq += 1
        state.turns.append(turn)
        state.total_turns += 1
        state.total_tokens += turn.tokens
        if not turn.pinned:
            state.history_count += 1
            state.history_digests = [*state.history_digests, message_digest(turn.role, turn.content)][-DIGESTS_KEPT:]
        job = relieve_pressure(state, policy, now)
        if job is not None:
            jobs.append(job)
    state.updated_at = now
    return state, jobs


def relieve_pressure(state: WindowState, policy: WindowPolicy, now: datetime) -> OffloadJob | None:
    """Shed the oldest non-pinned turns if the window is over the threshold (mutates `state`)."""
    if window_tokens(state.turns) <= policy.trigger_tokens:
        return None
    sheddable = [i for i, t in enumerate(state.turns) if not t.pinned][:-1]  # never the newest turn
    last_user = max((i for i, t in enumerate(state.turns) if t.role == "user" and not t.pinned), default=None)
    tokens = window_tokens(state.turns)
    shed: set[int] = set()
    for i in sheddable:
        in_newest_exchange = last_user is not None and i >= last_user
        if tokens <= policy.target_tokens:
            break
        if in_newest_exchange and tokens <= policy.hysteresis_tokens:
            break
        shed.add(i)
        tokens -= state.turns[i].tokens
    if not shed:
        return None
    gone = [t for i, t in enumerate(state.turns) if i in shed]
    state.turns = [t for i, t in enumerate(state.turns) if i not in shed]
    state.offloaded_jobs += 1
    state.offloaded_turns += len(gone)
    token_count = sum(t.tokens for t in gone)
    state.offloaded_tokens += token_count
    return OffloadJob(
        job_id=OffloadJob.make_id(state.tenant, state.session_id, gone[0].seq, gone[-1].seq),
        tenant=state.tenant,
        session_id=state.session_id,
        turns=gone,
        token_count=token_count,
        created_at=now,
    )


def clear_window(state: WindowState, now: datetime) -> tuple[WindowState, OffloadJob | None]:
    """`POST /reset`: an empty window that keeps counting. Returns the new state and the job that
    carries the cleared turns to long-term memory (None when there were none).

    Turn, job and point ids all derive from `seq`, so the counter must never go back: a reset
    that started again at 0 would make later turns overwrite the memories of earlier ones. The
    cleared turns are offloaded like any shed turns (reset keeps long-term memory, and a turn that
    was acknowledged is never dropped); the pinned system prompt is not memory and goes.
    """
    gone = [t for t in state.turns if not t.pinned]
    fresh = WindowState(
        tenant=state.tenant,
        session_id=state.session_id,
        next_seq=state.next_seq,
        offloaded_jobs=state.offloaded_jobs,
        offloaded_turns=state.offloaded_turns,
        offloaded_tokens=state.offloaded_tokens,
        created_at=state.created_at,
        updated_at=now,
    )
    if not gone:
        return fresh, None
    token_count = sum(t.tokens for t in gone)
    fresh.offloaded_jobs += 1
    fresh.offloaded_turns += len(gone)
    fresh.offloaded_tokens += token_count
    job = OffloadJob(
        job_id=OffloadJob.make_id(state.tenant, state.session_id, gone[0].seq, gone[-1].seq),
        tenant=state.tenant,
        session_id=state.session_id,
        turns=gone,
        token_count=token_count,
        created_at=now,
    )
    return fresh, job


def advance_seq(state: WindowState | None, tenant: str, session_id: str, at_least: int) -> WindowState:
    """The window with its counter raised to `at_least` (restore / replay found later turns)."""
    if state is None:
        return WindowState(tenant=tenant, session_id=session_id, next_seq=at_least)
    if state.next_seq >= at_least:
        return state
    return state.model_copy(update={"next_seq": at_least})
