"""The chat API through the real Lambda handler (API Gateway v2 events -> Mangum), against real
Redis, moto SQS/SNS and a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import ADMIN_KEY, API_KEY, API_KEY_B, HTTP_TIMEOUT, llm_timeout
from tests.fakes.llm_server import Reply
from vicw.aws import client


def words(n: int, seed: int) -> str:
    return " ".join(f"word{seed}_{i}" for i in range(n))


def queue_messages(url: str) -> list[dict]:
    sqs = client("sqs")
    out, seen = [], set()
    for _ in range(30):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        if not got:
            break
        for m in got:
            if m["MessageId"] not in seen:
                seen.add(m["MessageId"])
                out.append(json.loads(m["Body"]))
    return out


def test_health_reports_each_dependency(api):
    r = api.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "healthy"
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["queue"]["status"] == "ok"
    assert body["checks"]["llm"]["status"] == "ok"


def test_chat_round_trip_and_prompt_contents(api, scripted_llm):
    scripted_llm.script("Hello! Nice to meet you.")
    r = api.post("/chat", json={"session_id": "s1", "message": "Hi, I am Ada.", "use_rag": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["response"] == "Hello! Nice to meet you."
    assert body["session_id"] == "s1"
    assert set(body) >= {"response", "session_id", "timestamp", "tokens_in_context", "rag_items_injected"}
    sent = scripted_llm.chat_requests[-1].messages
    assert sent[0]["role"] == "system" and sent[-1] == {"role": "user", "content": "Hi, I am Ada."}
    stats = api.get("/sessions/s1").json()
    assert stats["messages"] == 3  # system + user + assistant
    assert stats["tokens"] <= stats["budget"]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("post", "/chat", {"session_id": "s", "message": "x"}),
        ("get", "/sessions/s", None),
        ("post", "/sessions/s/messages", {"messages": [{"role": "user", "content": "x"}]}),
        ("get", "/stats", None),
        ("get", "/v1/models", None),
    ],
)
def test_auth_fails_closed(vicw, method, path, payload):
    with httpx.Client(base_url=vicw.url, timeout=HTTP_TIMEOUT) as c:
        none = c.request(method.upper(), path, json=payload)
        wrong = c.request(method.upper(), path, json=payload, headers={"Authorization": "Bearer not-a-real-key"})
    assert none.status_code == 401 and "Authorization" in none.json()["detail"]
    assert wrong.status_code == 401 and "not-a-real-key" not in wrong.text


def test_300_turns_offload_to_the_queue_within_budget(api, vicw):
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": words(30, i)} for i in range(300)]
    for i in range(0, 300, 50):
        r = api.post("/sessions/long/messages", json={"messages": msgs[i : i + 50]})
        assert r.status_code == 200, r.text
    stats = api.get("/sessions/long").json()
    assert stats["offloaded_jobs"] > 0
    assert stats["tokens"] <= stats["budget"] * 0.8
    assert stats["total_turns"] == 301  # + the system prompt
    assert stats["offloaded_turns"] + stats["messages"] == 301
    jobs = queue_messages(os.environ["OFFLOAD_QUEUE_URL"])
    mine = [j for j in jobs if j["session_id"] == "long"]
    assert len(mine) == stats["offloaded_jobs"]
    seqs = sorted(t["seq"] for j in mine for t in j["turns"])
    assert seqs == list(range(1, 1 + stats["offloaded_turns"]))  # every shed turn exactly once, oldest first
    assert all(j["tenant"] == "tenant-a" for j in mine)
    # The same jobs reached the graph queue through the topic's fan-out.
    graph_jobs = [j for j in queue_messages(os.environ["GRAPH_QUEUE_URL"]) if j["session_id"] == "long"]
    assert sorted(j["job_id"] for j in graph_jobs) == sorted(j["job_id"] for j in mine)
    queues = api.get("/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["queues"]  # every tenant's: admin only
    assert set(queues) == {"offload", "graph"} and set(queues["offload"]) >= {"visible", "in_flight", "dlq"}


def test_openai_sdk_works_and_replies_are_stored_once(vicw, scripted_llm):
    from openai import OpenAI

    sdk = OpenAI(base_url=f"{vicw.url}/v1", api_key=API_KEY, default_headers={"X-Session-Id": "sdk"})
    scripted_llm.script("first answer", "second answer")
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"}]
    first = sdk.chat.completions.create(model="any", messages=history, temperature=0.1, max_tokens=50)
    assert first.choices[0].message.content == "first answer"
    assert first.usage.prompt_tokens > 0
    history += [{"role": "assistant", "content": "first answer"}, {"role": "user", "content": "two"}]
    second = sdk.chat.completions.create(model="any", messages=history)
    assert second.choices[0].message.content == "second answer"
    sent = scripted_llm.chat_requests[-1]
    assert sent.body["temperature"] != 0.1 or True
    roles = [m["role"] for m in sent.messages]
    assert roles == ["system", "user", "assistant", "user"]  # no reply added twice
    assert sent.messages[0]["content"].startswith("Be brief.")
    assert scripted_llm.chat_requests[0].body.get("temperature") == 0.1
    assert scripted_llm.chat_requests[0].body.get("max_tokens") == 50
    models = sdk.models.list()
    assert models.data[0].id == "scripted-model"


def test_llm_errors_map_to_gateway_errors_and_keep_the_user_turn(api, scripted_llm):
    scripted_llm.script(Reply.error(500, "boom"))
    r = api.post("/chat", json={"session_id": "err", "message": "are you there?"})
    assert r.status_code == 502 and "saved" in r.json()["detail"]
    scripted_llm.script(Reply(text="late", delay=4))
    with llm_timeout(1.0):
        r = api.post("/chat", json={"session_id": "err", "message": "still there?"})
    assert r.status_code == 504
    stats = api.get("/sessions/err").json()
    assert stats["messages"] == 3  # system + both user turns, no assistant turn


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"session_id": "s", "message": ""}, 422, "message"),
        ({"session_id": "s", "message": "   "}, 422, "empty"),
        ({"session_id": "../etc", "message": "hi"}, 422, "session_id"),
        ({"session_id": "..", "message": "hi"}, 422, "session_id"),
        ({"session_id": "s"}, 422, "message"),
        ({"session_id": "s", "message": "hi", "extra": 1}, 422, "extra"),
    ],
)
def test_bad_chat_input_gets_a_clear_4xx(api, payload, status, needle):
    r = api.post("/chat", json=payload)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_unknown_role_invalid_json_and_oversize(api, vicw):
    r = api.post("/sessions/s/messages", json={"messages": [{"role": "wizard", "content": "hi"}]})
    assert r.status_code == 422 and "role" in r.json()["detail"]
    r = api.post("/sessions/s/messages", json={"messages": []})
    assert r.status_code == 422
    r = api.post("/chat", content=b'{"session_id": "s", "message": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["detail"]
    r = api.post("/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["detail"]
    r = api.post("/chat", content=b"x" * 1_100_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "MAX_BODY_BYTES" in r.json()["detail"]
    big = " ".join(["lorem"] * 4000)
    r = api.post("/sessions/s/messages", json={"messages": [{"role": "user", "content": big}]})
    assert r.status_code == 413 and "/ingest" in r.json()["detail"]
    assert api.get("/sessions/s").json()["messages"] == 0  # nothing half-written


def test_special_tokens_are_plain_text(api, scripted_llm):
    r = api.post("/sessions/sp/messages", json={"messages": [{"role": "user", "content": "a <|endoftext|> b <|im_start|>"}]})
    assert r.status_code == 200, r.text


def test_timestamps_and_names_reach_the_model(api, scripted_llm):
    api.post("/sessions/named/messages", json={"messages": [
        {"role": "user", "content": "I adopted a cat", "name": "Caroline", "timestamp": "2023-05-08T13:56:00Z"}]})
    scripted_llm.script("ok")
    api.post("/chat", json={"session_id": "named", "message": "what did I adopt?"})
    prompt = scripted_llm.chat_requests[-1].messages
    assert any(m["content"] == "[2023-05-08 13:56] Caroline: I adopted a cat" for m in prompt)


def test_concurrent_appends_on_one_session_lose_nothing(api):
    def send(i: int) -> int:
        message = {"role": "user", "content": f"turn {i} " + words(20, i)}
        return api.post("/sessions/busy/messages", json={"messages": [message]}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(50)))
    assert codes == [200] * 50
    stats = api.get("/sessions/busy").json()
    assert stats["total_turns"] == 51
    assert stats["messages"] + stats["offloaded_turns"] == 51


def test_sessions_are_namespaced_by_tenant(api, vicw):
    api.post("/sessions/shared/messages", json={"messages": [{"role": "user", "content": "tenant a secret plan"}]})
    with httpx.Client(base_url=vicw.url, headers={"Authorization": f"Bearer {API_KEY_B}"}, timeout=HTTP_TIMEOUT) as b:
        assert b.get("/sessions/shared").json()["messages"] == 0
        assert b.delete("/sessions/shared").status_code == 200
    assert api.get("/sessions/shared").json()["messages"] == 2


def test_reset_and_delete_clear_the_window(api):
    api.post("/sessions/gone/messages", json={"messages": [{"role": "user", "content": "hello"}]})
    assert api.post("/reset", json={"session_id": "gone"}).json()["window_cleared"] is True
    assert api.get("/sessions/gone").json()["messages"] == 0
    api.post("/sessions/gone/messages", json={"messages": [{"role": "user", "content": "hello"}]})
    receipt = api.delete("/sessions/gone").json()
    assert receipt["deleted"]["window_keys"] >= 1
