"""Chat exports carry naive ISO times (`2023-05-08T13:56:00`). They mean UTC, and a session made
of them retrieves its memories like any other: no TypeError from mixing naive and aware times, no
silent fallback to the live window."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import API_KEY, running_vicw, wait_until
from vicw import container
from vicw.retrieval.packing import to_memory
from vicw.tokens import TokenCounter
from vicw.vector_store import MemoryRecord

START = datetime(2023, 5, 8, 13, 56)  # naive, as chat exports have it
FACT = "My sister Ines is getting married in Sintra on 14 September."
FILLER = [
    "We talked about the weather in Porto and how rainy the spring has been this year.",
    "I am reading a long novel about a lighthouse keeper on a remote Scottish island.",
    "The bakery near the station started selling rye bread with caraway seeds.",
    "My neighbour grows tomatoes and courgettes on a small sunny balcony.",
]


@pytest.fixture()
def cold(tmp_path, redis_url, moto_endpoint, vicw_env, scripted_llm, redis_client):
    from vicw.aws import client
    from vicw.aws_resources import ensure_local_resources

    resources = ensure_local_resources()
    for name in ("OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL"):  # jobs other tests' hot-path-only runs left
        client("sqs").purge_queue(QueueUrl=resources[name])
    scripted_llm.reset()
    env = {**vicw_env, "MAX_CONTEXT_TOKENS": "1024", "LLM_MAX_TOKENS": "128", "COLD_PATH_WORKERS": "1"}
    with running_vicw(tmp_path, redis_url, moto_endpoint, env, cold_path=True) as local:
        yield local


def test_naive_timestamps_mean_utc_and_keep_retrieval_on(cold, scripted_llm, caplog):
    caplog.set_level(logging.WARNING, logger="vicw")
    texts = [FACT, "Congratulations to Ines! Sintra is a lovely place for a wedding."]
    texts += [FILLER[i % len(FILLER)] + f" (note {i})" for i in range(34)]
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t, "name": "Maya" if i % 2 == 0 else "Assistant",
                 "timestamp": (START + timedelta(minutes=i)).isoformat()} for i, t in enumerate(texts)]
    assert "+" not in messages[0]["timestamp"] and "Z" not in messages[0]["timestamp"]  # really naive

    with httpx.Client(base_url=cold.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as api:
        r = api.post("/sessions/naive/messages", json={"messages": messages})
        assert r.status_code == 200, r.text
        stats = api.get("/sessions/naive").json()
        assert stats["offloaded_turns"] >= 2, stats  # the fact has left the live window
        store = container.vector_store()
        wait_until(lambda: store.count("tenant-a", "naive") >= stats["offloaded_turns"], 120, what="shed turns indexed")

        ctx = api.post("/sessions/naive/context", json={"query": "When and where is Ines getting married?"})
        assert ctx.status_code == 200, ctx.text
        body = ctx.json()
        assert body["memory"] == {"status": "ok", "reason": None}, body["memory"]
        hit = next((m for m in body["memories"] if "Ines is getting married" in m["text"]), None)
        assert hit is not None, body["memories"]
        # stored timezone-aware, as UTC: the naive 13:56 is 13:56 UTC
        assert datetime.fromisoformat(hit["timestamp"]) == START.replace(tzinfo=UTC)
        assert "2023-05-08 13:56" in body["messages"][-2]["content"]  # cited with its date in the prompt

        # A dated question takes the temporal path (date arithmetic on the stored times) too.
        dated = api.post("/sessions/naive/context", json={"query": "What did I say on 2023-05-08 about Ines?"}).json()
        assert dated["memory"]["status"] == "ok" and any("Ines" in m["text"] for m in dated["memories"])

        scripted_llm.script("In Sintra, on 14 September.")
        chat = api.post("/chat", json={"session_id": "naive", "message": "Where is my sister's wedding?"}).json()
        assert chat["memory"]["status"] == "ok" and chat["rag_items_injected"] > 0, chat
    assert not [r for r in caplog.records if "memory unavailable" in r.getMessage() or r.exc_info], caplog.text


def test_points_stored_with_a_naive_time_come_back_aware():
    """Points written before timestamps were always aware may hold a naive ISO time."""
    rec = MemoryRecord(id="p", tenant="t", session_id="s", job_id="j", turn_id="3", seq=3, role="user", speaker="Maya",
                       text="[2023-05-08 13:56] Maya: We moved to Porto.", timestamp=START.replace(tzinfo=UTC).timestamp(),
                       iso=START.isoformat(), tokens=12)
    mem = to_memory(rec, 0.5, "dense", TokenCounter("cl100k_base"), max_tokens=40)
    assert mem.timestamp == START.replace(tzinfo=UTC) and mem.timestamp.tzinfo is not None
    assert mem.text == "We moved to Porto."
