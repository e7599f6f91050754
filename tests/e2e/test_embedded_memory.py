"""The whole memory loop with a real (small, offline) model: a fact leaves the window, goes through
the cold path into Qdrant, comes back through retrieval, and the embedded model answers from it."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ADMIN_KEY, API_KEY, patient, running_vicw
from vicw.llm import embedded

pytestmark = pytest.mark.skipif(embedded.unavailable_reason() is not None, reason=f"{embedded.unavailable_reason()}")

FILLER = [
    "The bus to the harbour leaves every twenty minutes on weekdays.",
    "I repainted the kitchen cupboards a pale green colour.",
    "The library closes early on the first Monday of each month.",
    "My neighbour grows tomatoes and courgettes on his balcony.",
    "We watched a documentary about glaciers last night.",
    "The new bakery on the corner sells rye bread with caraway.",
]


REPLIES = ["Interesting.", "Good to know.", "I see.", "Sounds nice.", "Okay."]


@pytest.fixture()
def embedded_vicw(tmp_path, redis_url, moto_endpoint, vicw_env, redis_client):
    env = {
        **vicw_env,
        "VICW_LLM_API_URL": "",  # nothing configured: the embedded model is the default
        "VICW_LLM_PROVIDER": "auto",
        "MAX_CONTEXT_TOKENS": "1024",  # a small window, so the fact leaves it quickly and prompts stay cheap
        "LLM_MAX_TOKENS": "48",
        "MEMORY_TOKEN_BUDGET": "200",
    }
    with running_vicw(tmp_path, redis_url, moto_endpoint, env, cold_path=True) as local:
        yield local


def test_embedded_model_answers_from_an_offloaded_memory(embedded_vicw):
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=embedded_vicw.url, headers=headers, timeout=180) as c:
        health = c.get("/health", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()  # details: admin only
        assert health["checks"]["llm"]["provider"] == "embedded"
        turns = [{"role": "user", "content": "My dog's name is Biscuit."}, {"role": "assistant", "content": "Noted!"}]
        for i in range(40):
            turns += [{"role": "user", "content": FILLER[i % len(FILLER)] + f" (note {i})"},
                      {"role": "assistant", "content": REPLIES[i % len(REPLIES)]}]
        assert c.post("/sessions/dog/messages", json={"messages": turns}).status_code == 200
        stats = c.get("/sessions/dog").json()
        assert stats["offloaded_turns"] > 2  # the fact is no longer in the live window

        deadline = time.monotonic() + patient(150)
        while c.get("/stats").json()["vectors"].get("points", 0) < stats["offloaded_turns"]:
            assert time.monotonic() < deadline, "cold path did not index the offloaded turns"
            time.sleep(1)

        reply = c.post(
            "/v1/chat/completions",
            headers={"X-Session-Id": "dog"},
            json={"messages": [{"role": "user", "content": "What is my dog's name?"}], "temperature": 0, "max_tokens": 24},
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["vicw"]["memories_injected"] >= 1
        assert "Biscuit" in body["choices"][0]["message"]["content"]
