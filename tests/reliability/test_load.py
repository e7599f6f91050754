"""Concurrency and load through HTTP and the real chat handler (scripted LLM answering at once).

Nothing lost or duplicated: for every session, the seqs of the live window plus those of its
offload jobs (read back from the queue) cover 0..next_seq-1 exactly once; totals add up; the
window never exceeds its budget; offload counters match the jobs actually sent.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from tests.conftest import API_KEY, running_vicw
from vicw.models import OffloadJob
from vicw.window_store import session_prefix

TENANT = "tenant-a"


@pytest.fixture()
def hot(tmp_path, redis_url, moto_endpoint, vicw_env, scripted_llm, redis_client):
    """Hot path only, no rate limits; a small window so relief fires often."""
    env = {**vicw_env, "RATE_LIMITS": "", "MAX_CONTEXT_TOKENS": "1024", "LLM_MAX_TOKENS": "128"}
    scripted_llm.reset()
    with running_vicw(tmp_path, redis_url, moto_endpoint, env) as local:
        purge_offload_queue()
        yield local


def purge_offload_queue() -> None:
    from vicw import container
    from vicw.aws import client

    client("sqs").purge_queue(QueueUrl=container.settings().offload_queue_url)


def sent_jobs() -> dict[str, list[OffloadJob]]:
    """Every job on the offload queue, by session (nothing consumes it in these tests)."""
    from vicw import container
    from vicw.aws import client

    sqs, url = client("sqs"), container.settings().offload_queue_url
    by_session: dict[str, list[OffloadJob]] = {}
    seen: set[str] = set()
    empty = 0
    while empty < 2:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0).get("Messages", [])
        empty = 0 if got else empty + 1
        for m in got:
            job = OffloadJob.model_validate(json.loads(m["Body"]))
            assert m["MessageId"] not in seen
            seen.add(m["MessageId"])
            by_session.setdefault(job.session_id or "", []).append(job)
    return by_session


def check_session(session: str, jobs: list[OffloadJob], expected_user: list[str], replies: int = 0) -> None:
    from vicw import container

    state = container.window_store().load(TENANT, session)
    budget = container.settings().window_budget
    assert state is not None and state.tokens <= budget
    shed = [t for j in jobs for t in j.turns]
    seqs = sorted([t.seq for t in state.turns] + [t.seq for t in shed])
    assert seqs == list(range(state.next_seq)), f"{session}: lost or duplicated turns"
    assert state.total_turns == state.next_seq == len(state.turns) + state.offloaded_turns
    assert state.offloaded_turns == len(shed) and state.offloaded_jobs == len(jobs)
    assert state.offloaded_tokens == sum(t.tokens for t in shed) == sum(j.token_count for j in jobs)
    assert len({j.job_id for j in jobs}) == len(jobs)
    users = [t.content for t in [*shed, *state.turns] if t.role == "user"]
    assert sorted(users) == sorted(expected_user)  # each user message exactly once
    assert sum(1 for t in [*shed, *state.turns] if t.role == "assistant") == replies
    assert state.history_count == len(expected_user) + replies


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30,
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))


def test_50_concurrent_chat_turns_on_one_session(hot):
    messages = [f"concurrent question {i}: what is the fare from Utrecht to Zwolle on weekday {i}?" for i in range(50)]
    with client(hot.url) as c, ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda m: c.post("/chat", json={"session_id": "hot", "message": m, "use_rag": False}), messages))
    assert [r.status_code for r in results] == [200] * 50, {r.status_code: r.text for r in results if r.status_code != 200}
    assert sorted(r.json()["response"] for r in results) == sorted(f"ok: {m}" for m in messages)
    jobs = sent_jobs()
    assert jobs.get("hot"), "50 exchanges must have shed turns"
    check_session("hot", jobs["hot"], messages, replies=50)


def test_200_sessions_in_parallel(hot):
    sessions = [f"par-{i}" for i in range(200)]
    per_session = {s: [f"{s} message {k}: the boiler service is booked for slot {k} next week." for k in range(6)] for s in sessions}

    def run(session: str) -> list[int]:
        codes = []
        for k, text in enumerate(per_session[session]):
            if k == 5:
                r = c.post("/chat", json={"session_id": session, "message": text, "use_rag": False})
            else:
                r = c.post(f"/sessions/{session}/messages", json={"messages": [{"role": "user", "content": text}]})
            codes.append(r.status_code)
        return codes

    with client(hot.url) as c, ThreadPoolExecutor(16) as pool:
        codes = [code for batch in pool.map(run, sessions) for code in batch]
    assert codes == [200] * len(codes)
    jobs = sent_jobs()
    for s in sessions:
        check_session(s, jobs.get(s, []), per_session[s], replies=1)


def soak(url: str, turns: int, batch: int = 1) -> dict:
    """`turns` user turns on one session; returns the figures the assertions and the docs use."""
    from vicw import container

    proc = psutil.Process()
    r = container.window_store().r
    filler = "the quarterly maintenance log for pump station {} lists valve checks, grease and a new seal."
    keys_pattern = session_prefix(TENANT, "soak") + ":*"
    rss_start = proc.memory_info().rss
    max_tokens = max_turns = max_keys = 0
    started = time.perf_counter()
    with client(url) as c:
        for i in range(0, turns, batch):
            body = {"messages": [{"role": "user", "content": filler.format(k)} for k in range(i, min(turns, i + batch))]}
            resp = c.post("/sessions/soak/messages", json=body)
            assert resp.status_code == 200, resp.text
            if i % 100 == 0:
                state = container.window_store().load(TENANT, "soak")
                max_tokens = max(max_tokens, state.tokens)
                max_turns = max(max_turns, len(state.turns))
                max_keys = max(max_keys, sum(1 for _ in r.scan_iter(match=keys_pattern, count=1000)))
    elapsed = time.perf_counter() - started
    state = container.window_store().load(TENANT, "soak")
    return {
        "turns": turns, "seconds": round(elapsed, 1), "rss_start_mb": rss_start / 2**20, "rss_end_mb": proc.memory_info().rss / 2**20,
        "max_tokens": max_tokens, "max_live_turns": max_turns, "max_session_keys": max_keys, "state": state,
        "outbox": container.window_store().outbox_size(), "redis_used_mb": r.info("memory")["used_memory"] / 2**20,
    }


def check_soak(result: dict) -> None:
    from vicw import container

    state = result["state"]
    budget = container.settings().window_budget
    assert result["max_tokens"] <= budget and state.tokens <= budget
    assert result["max_live_turns"] < 60  # bounded by the budget, not by the conversation's length
    assert result["max_session_keys"] <= 3  # the window (+ small per-session helpers), never per turn
    assert state.total_turns == result["turns"] + 1  # + the system prompt
    assert state.offloaded_turns + len(state.turns) == state.total_turns
    assert len(state.history_digests) <= 16
    assert result["outbox"] == 0
    print({k: (round(v, 1) if isinstance(v, float) else v) for k, v in result.items() if k != "state"})


def test_soak_1000_turns_stays_bounded(hot):
    result = soak(hot.url, 1000)
    check_soak(result)
    assert result["rss_end_mb"] - result["rss_start_mb"] < 150


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_soak_10000_turns_stays_bounded(hot):
    result = soak(hot.url, 10_000)
    check_soak(result)
    assert result["rss_end_mb"] - result["rss_start_mb"] < 200
