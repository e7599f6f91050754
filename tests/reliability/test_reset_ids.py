"""POST /reset never makes a session reuse ids: the memories from before a reset survive the turns after it.

Turn, job and point ids are derived from the session's `seq` counter. The reset keeps the counter
(and hands the cleared turns to long-term memory), so the second half of a conversation adds
points instead of overwriting the first half's.
"""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, running_vicw, wait_until

TENANT = "tenant-a"
SESSION = "reset-keeps-memory"
N = 24  # enough user messages to shed several jobs at MAX_CONTEXT_TOKENS=1024


@pytest.fixture()
def stack(tmp_path, redis_url, moto_endpoint, vicw_env, redis_client):
    env = {**vicw_env, "RATE_LIMITS": "", "MAX_CONTEXT_TOKENS": "1024", "LLM_MAX_TOKENS": "128", "GRAPH_BACKEND": "none"}
    with running_vicw(tmp_path, redis_url, moto_endpoint, env, cold_path=True) as local:
        yield local


def say(api, text: str) -> None:
    r = api.post(f"/sessions/{SESSION}/messages", json={"messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text


def records():
    from vicw import container

    return {r.id: r for r in container.vector_store().scroll(TENANT, SESSION, include_tenant_wide_documents=False)}


def all_offloaded_indexed():
    """Every turn the window says it shed is a point (single-part turns here)."""
    from vicw import container

    state = container.window_store().load(TENANT, SESSION)
    got = records()
    assert state is not None and state.offloaded_turns > 0, "nothing was shed; the test proves nothing"
    return got if len({r.seq for r in got.values()}) == state.offloaded_turns else None


def test_reset_keeps_counting_so_later_turns_never_overwrite_earlier_memories(stack):
    import httpx

    from vicw import container

    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as api:
        for i in range(N):
            say(api, f"Before the reset, fact {i}: the lighthouse keeper Orla logged {i * 13 + 7} gulls "
                     f"on the northern breakwater, and the spare lens is stored in crate {400 + i} near the pier.")
        before = wait_until(all_offloaded_indexed, 120, what="first half indexed")
        seq_before = container.window_store().load(TENANT, SESSION).next_seq

        r = api.post("/reset", json={"session_id": SESSION})
        assert r.status_code == 200 and r.json()["window_cleared"] is True
        state = container.window_store().load(TENANT, SESSION)
        assert state is None or state.turns == []

        for i in range(N):
            say(api, f"After the reset, note {i}: the ferry Calypso left berth {i + 2} carrying {i * 17 + 3} "
                     f"crates of oranges bound for the market at Tavira on the morning tide.")
        after = wait_until(all_offloaded_indexed, 120, what="second half and the reset job indexed")

        # Every point from before is still there, unchanged; the count only grew.
        for pid, rec in before.items():
            assert pid in after and after[pid].text == rec.text, f"point {pid} (seq {rec.seq}) was overwritten"
        assert len(after) > len(before)
        # The turns live in the window at reset time went to long-term memory too.
        texts = [r.text for r in after.values()]
        assert sum("Before the reset" in t for t in texts) == N
        assert any("After the reset" in t for t in texts)
        seqs = sorted(r.seq for r in after.values())
        assert len(seqs) == len(set(seqs))
        live = {t.seq for t in container.window_store().load(TENANT, SESSION).turns}
        assert not live & set(seqs)
        assert min(live) >= seq_before  # the counter carried on through the reset

        # A first-half fact is still retrievable for the session.
        ctx = api.post(f"/sessions/{SESSION}/context", json={"query": "Which crate holds the spare lens? Orla gulls breakwater"})
        assert ctx.status_code == 200, ctx.text
        assert any("Before the reset" in m["text"] for m in ctx.json()["memories"]), ctx.json()["memories"]
