"""`append_turns` may run several times on one loaded state (WATCH retries) and callers keep the
state they passed in: it must never change its input, whether relief fires or a message is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vicw.models import WindowState
from vicw.window import MessageTooLarge, NewTurn, WindowPolicy, append_turns

POLICY = WindowPolicy(budget=500, offload_threshold=0.8, hysteresis_threshold=0.7, target_after_relief=0.6)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def turns(n: int, tokens: int = 40) -> list[NewTurn]:
    return [NewTurn(role="user" if i % 2 else "assistant", content=f"m{i}", tokens=tokens, timestamp=NOW) for i in range(n)]


def test_input_state_is_never_modified():
    state, _ = append_turns(WindowState(tenant="t", session_id="s"), turns(8), POLICY, NOW)
    before = state.model_dump()
    new, jobs = append_turns(state, turns(6), POLICY, NOW)
    assert jobs and new.turns != state.turns  # relief fired on the copy
    assert state.model_dump() == before
    again, jobs_again = append_turns(state, turns(6), POLICY, NOW)  # a WATCH retry computes the same result
    assert again.model_dump(exclude={"updated_at"}) == new.model_dump(exclude={"updated_at"})
    assert [j.job_id for j in jobs_again] == [j.job_id for j in jobs]
    with pytest.raises(MessageTooLarge):
        append_turns(state, [*turns(2), NewTurn(role="user", content="big", tokens=10_000, timestamp=NOW)], POLICY, NOW)
    assert state.model_dump() == before
