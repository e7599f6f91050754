"""Hot-path guarantees against real Redis and moto: the outbox survives an SQS outage, no-LLM mode,
streaming through the OpenAI SDK, and concurrent writers at the store level."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import httpx
import pytest

from tests.conftest import API_KEY, HTTP_TIMEOUT, run_in_threads, running_vicw
from vicw.aws import client
from vicw.models import WindowState
from vicw.queues import JobPublisher
from vicw.window import NewTurn, WindowPolicy, append_turns
from vicw.window_store import WindowStore

POLICY = WindowPolicy(budget=600, offload_threshold=0.8, hysteresis_threshold=0.7, target_after_relief=0.6)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def grow(store: WindowStore, session: str, n: int, tokens: int = 60):
    def change(current):
        state = current or WindowState(tenant="t", session_id=session)
        new = [NewTurn(role="user", content=f"m{i}", tokens=tokens, timestamp=NOW) for i in range(n)]
        state, jobs = append_turns(state, new, POLICY, NOW)
        return state, jobs, None

    return store.update("t", session, change)


def test_sqs_outage_keeps_jobs_in_the_outbox_until_resent(redis_client, moto_endpoint):
    store = WindowStore(redis_client)
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="outbox-test")["QueueUrl"]
    import boto3
    from botocore.config import Config

    unreachable = boto3.client("sqs", endpoint_url="http://127.0.0.1:9",  # nothing listens on port 9
                               config=Config(connect_timeout=0.5, retries={"max_attempts": 1}))
    down = JobPublisher(store, None, url, sqs=unreachable)
    state, jobs, _ = grow(store, "s", 12)
    assert jobs, "the window should have shed turns"
    assert down.publish(jobs) == 0  # send failed, but the turn itself completed
    assert store.outbox_size() == len(jobs)
    assert store.load("t", "s").offloaded_turns == sum(len(j.turns) for j in jobs)

    up = JobPublisher(store, None, url)
    assert up.flush_outbox() == len(jobs)
    assert store.outbox_size() == 0
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert sorted(b["job_id"] for b in bodies) == sorted(j.job_id for j in jobs)


def test_store_level_concurrency_loses_and_duplicates_nothing(redis_client):
    store = WindowStore(redis_client)
    jobs_seen: list = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            _, jobs, _ = grow(store, "race", 1, tokens=40)
            with lock:
                jobs_seen.extend(jobs)

    run_in_threads(worker, 8)
    state = store.load("t", "race")
    kept = [t.seq for t in state.turns]
    shed = [t.seq for j in jobs_seen for t in j.turns]
    assert sorted(kept + shed) == list(range(80))
    assert len(set(j.job_id for j in jobs_seen)) == len(jobs_seen) == state.offloaded_jobs


@pytest.fixture()
def no_llm_vicw(tmp_path, redis_url, moto_endpoint, vicw_env, redis_client):
    env = {**vicw_env, "VICW_LLM_API_URL": "", "VICW_LLM_PROVIDER": "none"}
    with running_vicw(tmp_path, redis_url, moto_endpoint, env) as local:
        yield local


def test_without_an_llm_health_stays_green_and_chat_explains(no_llm_vicw):
    with httpx.Client(base_url=no_llm_vicw.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=HTTP_TIMEOUT) as c:
        health = c.get("/health")
        assert health.status_code == 200
        assert health.json()["checks"]["llm"]["status"] == "not_configured"
        r = c.post("/chat", json={"session_id": "x", "message": "hello"})
        assert r.status_code == 503 and "VICW_LLM_API_URL" in r.json()["detail"]
        assert c.post("/sessions/x/messages", json={"messages": [{"role": "user", "content": "hi"}]}).status_code == 200


def test_streaming_through_the_openai_sdk(vicw, scripted_llm):
    from openai import OpenAI

    scripted_llm.script("The quick brown fox jumps over the lazy dog again and again.")
    sdk = OpenAI(base_url=f"{vicw.url}/v1", api_key=API_KEY, default_headers={"X-Session-Id": "stream"})
    chunks = list(sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "tell me"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The quick brown fox jumps over the lazy dog again and again."
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    with httpx.Client(base_url=vicw.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=HTTP_TIMEOUT) as c:
        stats = c.get("/sessions/stream").json()
    assert stats["messages"] == 3  # system, user, and the reply stored once after the stream ended
