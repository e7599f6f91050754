"""A failure of long-term memory is never silent: with the vector store down, /chat, /v1 and
/context still answer, each saying memory was unavailable and why; a metric counts it; a WARNING
with the traceback is logged; /health names the failing dependency. An embedding model that cannot
load makes /health unhealthy (it names the embedder)."""

from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest

from tests.conftest import ADMIN_KEY, API_KEY, running_vicw
from tests.integration.test_ops_metrics import scrape, value


def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def no_vectors(tmp_path, redis_url, moto_endpoint, vicw_env, scripted_llm, redis_client):
    """VICW whose Qdrant server is down (a URL nobody answers)."""
    scripted_llm.reset()
    env = {**vicw_env, "QDRANT_URL": f"http://127.0.0.1:{closed_port()}", "VICW_METRICS_TOKEN": ""}
    with running_vicw(tmp_path, redis_url, moto_endpoint, env) as local:
        yield local


def test_a_store_outage_is_reported_in_every_answer(no_vectors, scripted_llm, caplog):
    caplog.set_level(logging.WARNING, logger="vicw")
    before = scrape(no_vectors.url)
    with httpx.Client(base_url=no_vectors.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as api:
        scripted_llm.script("From the window only.")
        chat = api.post("/chat", json={"session_id": "down", "message": "What did I tell you about Lisbon?"})
        assert chat.status_code == 200, chat.text
        memory = chat.json()["memory"]
        assert memory["status"] == "unavailable" and memory["reason"].startswith("retrieval failed: "), memory

        scripted_llm.script("Still from the window.")
        v1 = api.post("/v1/chat/completions", headers={"X-Session-Id": "down"},
                      json={"messages": [{"role": "user", "content": "And about Porto?"}]})
        assert v1.status_code == 200, v1.text
        assert v1.json()["vicw"]["memory"] == memory  # the same shape, the same reason

        scripted_llm.script("Streamed from the window.")
        with api.stream("POST", "/v1/chat/completions", headers={"X-Session-Id": "down"},
                        json={"stream": True, "messages": [{"role": "user", "content": "And Braga?"}]}) as stream:
            chunks = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: {")]
        assert chunks[-1]["vicw"]["memory"] == memory  # the final chunk of a stream says it too

        ctx = api.post("/sessions/down/context", json={"query": "Lisbon"})
        assert ctx.status_code == 200 and ctx.json()["memory"] == memory, ctx.text

        scripted_llm.script("No memory asked for.")
        off = api.post("/chat", json={"session_id": "down", "message": "hi", "use_rag": False}).json()["memory"]
        assert off == {"status": "off", "reason": "use_rag is false in this request"}

        health = api.get("/health", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert health.status_code == 503 and "vectors" in health.json()["failing"], health.text

    after = scrape(no_vectors.url)
    assert value(after, "vicw_memory_unavailable_total") - value(before, "vicw_memory_unavailable_total") == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "long-term memory unavailable" in r.getMessage()]
    assert len(warnings) == 4 and all(r.exc_info and r.exc_info[1] is not None for r in warnings)
    assert "Traceback" in caplog.text and memory["reason"] in warnings[0].getMessage()


def test_an_embedding_model_that_cannot_load_makes_health_unhealthy(tmp_path, redis_url, moto_endpoint, vicw_env, redis_client):
    # The model folder is assembled under FASTEMBED_CACHE_PATH (<data dir>/fastembed_cache locally, /tmp
    # on Lambda): when that cannot be written the model cannot load, and no offload can succeed.
    (tmp_path / "fastembed_cache").write_text("not a directory")
    with running_vicw(tmp_path, redis_url, moto_endpoint, vicw_env) as local:
        anon = httpx.get(f"{local.url}/health", timeout=30)
        assert anon.status_code == 503 and "embedder" in anon.json()["failing"], anon.text
        assert anon.json()["checks"]["embedder"] == {"status": "error"}
        detail = httpx.get(f"{local.url}/health", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30).json()
        assert detail["checks"]["embedder"]["error"] in ("FileExistsError", "NotADirectoryError"), detail


def test_a_healthy_embedder_is_reported(vicw):
    detail = httpx.get(f"{vicw.url}/health", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30).json()
    assert detail["checks"]["embedder"]["status"] == "ok"
    assert detail["checks"]["embedder"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
