"""The pure window core: relief policy and its invariants (property-tested)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vicw.models import WindowState
from vicw.window import MessageTooLarge, NewTurn, WindowPolicy, append_turns, max_message_tokens, window_tokens

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = WindowPolicy(budget=1000, offload_threshold=0.8, hysteresis_threshold=0.7, target_after_relief=0.6)


def turn(tokens: int, role: str = "user", pinned: bool = False) -> NewTurn:
    return NewTurn(role=role, content=f"{role} {tokens}", tokens=tokens, timestamp=NOW, pinned=pinned)


def fresh(system_tokens: int = 50) -> WindowState:
    state = WindowState(tenant="t", session_id="s")
    state, _ = append_turns(state, [turn(system_tokens, "system", pinned=True)], POLICY, NOW)
    return state


def test_no_relief_below_threshold():
    state, jobs = append_turns(fresh(), [turn(100) for _ in range(7)], POLICY, NOW)
    assert jobs == []
    assert window_tokens(state.turns) == 3 + 50 + 700


def test_relief_fires_over_threshold_and_lands_between_target_and_hysteresis():
    state, jobs = append_turns(fresh(), [turn(100, r) for r in ["user", "assistant"] * 4], POLICY, NOW)
    assert len(jobs) == 1
    after = window_tokens(state.turns)
    assert after <= POLICY.hysteresis_tokens
    # The oldest turns went first, in order, and the system prompt stayed.
    assert [t.seq for t in jobs[0].turns] == list(range(1, 1 + len(jobs[0].turns)))
    assert state.turns[0].pinned and state.turns[0].role == "system"
    assert state.offloaded_turns == len(jobs[0].turns) and state.offloaded_jobs == 1


def test_hysteresis_prevents_relief_on_the_next_turn():
    state, jobs = append_turns(fresh(), [turn(100, r) for r in ["user", "assistant"] * 4], POLICY, NOW)
    assert len(jobs) == 1
    state, jobs = append_turns(state, [turn(60)], POLICY, NOW)
    assert jobs == []  # room between hysteresis (700) and threshold (800)


def test_newest_exchange_kept_whole_when_under_hysteresis():
    # Window: sys 50 + u200 a200 u200 (a relief is triggered by a 200-token assistant reply).
    state, _ = append_turns(fresh(), [turn(200, "user"), turn(200, "assistant"), turn(200, "user")], POLICY, NOW)
    state, jobs = append_turns(state, [turn(200, "assistant")], POLICY, NOW)
    assert len(jobs) == 1
    kept = [t.seq for t in state.turns if not t.pinned]
    assert kept == [3, 4]  # the newest user turn and its reply stay together
    assert window_tokens(state.turns) <= POLICY.hysteresis_tokens


def test_message_too_large_is_refused_not_truncated():
    state = fresh()
    limit = max_message_tokens(state, POLICY)
    with pytest.raises(MessageTooLarge) as err:
        append_turns(state, [turn(limit + 1)], POLICY, NOW)
    assert str(limit) in str(err.value)
    state2, _ = append_turns(state, [turn(limit)], POLICY, NOW)
    assert state2.turns[-1].tokens == limit


def test_job_ids_are_deterministic():
    a = append_turns(fresh(), [turn(300) for _ in range(4)], POLICY, NOW)[1]
    b = append_turns(fresh(), [turn(300) for _ in range(4)], POLICY, NOW)[1]
    assert [j.job_id for j in a] == [j.job_id for j in b] and a


roles = st.sampled_from(["user", "assistant"])
messages = st.lists(st.tuples(roles, st.integers(min_value=1, max_value=640)), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(messages, st.integers(min_value=0, max_value=200), st.lists(st.integers(1, 10), min_size=1, max_size=5))
def test_invariants_never_over_budget_nothing_lost_order_kept(msgs, system_tokens, chunking):
    state = fresh(system_tokens) if system_tokens else WindowState(tenant="t", session_id="s")
    all_jobs = []
    pending = [turn(n, r) for r, n in msgs]
    i = 0
    while pending:
        size = chunking[i % len(chunking)]
        batch, pending = pending[:size], pending[size:]
        i += 1
        try:
            state, jobs = append_turns(state, batch, POLICY, NOW)
        except MessageTooLarge:
            continue  # refused as a whole: nothing appended
        all_jobs.extend(jobs)
        # never over budget: at rest the window is under the trigger level
        assert window_tokens(state.turns) <= POLICY.trigger_tokens
    seqs_window = [t.seq for t in state.turns]
    seqs_jobs = [t.seq for j in all_jobs for t in j.turns]
    everything = sorted(seqs_window + seqs_jobs)
    assert everything == list(range(state.next_seq))  # nothing lost, nothing duplicated
    assert seqs_jobs == sorted(seqs_jobs)  # shed in order
    assert seqs_window == sorted(seqs_window)
    assert all(seqs_jobs[k] < min([s for s in seqs_window if not state.turns[0].pinned or s != 0] or [10**9])
               for k in range(len(seqs_jobs)))  # every shed turn is older than every kept non-pinned turn
    assert state.offloaded_turns == len(seqs_jobs)
    assert all(j.token_count == sum(t.tokens for t in j.turns) for j in all_jobs)
