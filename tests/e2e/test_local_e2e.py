"""End to end through the real `vicw local` command: HTTP -> chat handler -> SNS/SQS -> cold-path
handlers -> Qdrant + FalkorDB -> retrieval, then a clean Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import patient, wait_until
from tests.fakes.llm_server import ScriptedLLM
from vicw.local.services import free_port

KEY = "e2e-key-0123456789"
FACT = "My sister Ottilie keeps three ferrets named Pip, Mango and Sergeant in Reykjavik."


def filler(i: int) -> str:
    topics = ["the weather forecast", "a recipe for lentil soup", "train timetables", "a chess opening",
              "gardening tips for tomatoes", "the history of lighthouses", "a jazz record", "saving for a bike"]
    return f"Turn {i}: let us talk about {topics[i % len(topics)]} for a while, with a few more details number {i * 7}."




def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    data = tmp_path_factory.mktemp("vicw-local")
    port = free_port()
    with ScriptedLLM() as llm:
        env = {
            **os.environ,
            "VICW_API_KEYS": f"{KEY}:e2e",
            "VICW_ADMIN_TENANTS": "e2e",  # /stats shows queue depths to admin tenants only
            "VICW_LLM_API_URL": llm.url,
            "VICW_LLM_MODEL_NAME": "scripted-model",
            "COLD_PATH_WORKERS": "2",
            "PYTHONUNBUFFERED": "1",
            "HEALTH_CHECK_TIMEOUT": str(patient(30)),  # a busy test machine answers slower than production
        }
        for name in ("AWS_ENDPOINT_URL", "REDIS_URL", "QDRANT_PATH", "FALKORDB_URL", "OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL",
                     "OFFLOAD_TOPIC_ARN", "ARCHIVE_BUCKET", "OFFLOAD_DLQ_URL", "GRAPH_DLQ_URL", "GRAPH_BACKEND"):
            env.pop(name, None)
        log = open(data / "stdout.log", "w+")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "vicw.cli", "local", "--port", str(port), "--data-dir", str(data)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        try:
            wait_until(lambda: "VICW is running" in Path(log.name).read_text() or proc.poll() is not None, 90)
            assert proc.poll() is None, Path(log.name).read_text()
            yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "llm": llm, "log": Path(log.name), "port": port}
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def client(running):
    with httpx.Client(base_url=running["url"], headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
        yield c


def test_health_is_green(client):
    r = client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "healthy"


def test_300_turns_flow_through_the_cold_path_exactly_once(client):
    turns = [{"role": "user", "content": FACT, "name": "Dana", "timestamp": "2024-03-02T09:15:00Z"}]
    turns += [{"role": "user" if i % 2 else "assistant", "content": filler(i)} for i in range(1, 300)]
    for i in range(0, 300, 100):
        r = client.post("/sessions/e2e/messages", json={"messages": turns[i : i + 100]})
        assert r.status_code == 200, r.text
    session = client.get("/sessions/e2e").json()
    assert session["offloaded_jobs"] > 0 and session["tokens"] <= session["budget"]

    def drained():
        stats = client.get("/stats").json()
        q = stats["queues"]
        idle = all(q[n]["visible"] == 0 and q[n]["in_flight"] == 0 for n in ("offload", "graph"))
        return stats if idle and stats["vectors"].get("points") == session["offloaded_turns"] else None

    stats = wait_until(drained, 240, every=1.0)
    assert stats["vectors"]["points"] == session["offloaded_turns"]  # one point per shed turn, no duplicates
    assert stats["graph"]["nodes"] > 0 and stats["graph"]["edges"] > 0
    assert stats["queues"]["offload"]["dlq"] == 0 and stats["queues"]["graph"]["dlq"] == 0
    assert stats["workers"]["offload"]["processed"] >= session["offloaded_jobs"]


def test_openai_sdk_through_vicw_local(running):
    from openai import OpenAI

    running["llm"].script("Three ferrets.")
    sdk = OpenAI(base_url=f"{running['url']}/v1", api_key=KEY, default_headers={"X-Session-Id": "e2e"})
    reply = sdk.chat.completions.create(model="any", messages=[{"role": "user", "content": "How many ferrets does Ottilie keep?"}])
    assert reply.choices[0].message.content == "Three ferrets."


def test_ctrl_c_stops_everything(running):
    proc = running["proc"]
    text = running["log"].read_text()
    services = re.search(r"redis: redis://127.0.0.1:(\d+)/0  aws: http://127.0.0.1:(\d+)", text)
    assert services, text
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 0, running["log"].read_text()
    assert "stopped." in running["log"].read_text()
    assert not port_open(running["port"])
    for port in services.groups():  # the Redis and moto servers it started are gone too
        assert not port_open(int(port))
