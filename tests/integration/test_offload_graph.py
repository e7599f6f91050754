"""The graph function end to end: moto SQS events -> real handler -> FalkorDB (the conftest Redis)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_offload import cold_env, load_function  # noqa: F401 - fixture
from tests.unit.test_cold_path_chunks import make_job
from vicw import container
from vicw.lambda_context import local_context


@pytest.fixture()
def graph_app(cold_env, redis_url, monkeypatch):
    monkeypatch.setenv("GRAPH_BACKEND", "falkordb")
    monkeypatch.setenv("FALKORDB_URL", redis_url.rsplit("/", 1)[0])
    monkeypatch.setenv("GRAPH_NAME", f"g_{uuid.uuid4().hex[:8]}")
    cold_env.rebuild()
    app = load_function("graph")
    yield app
    store = container.graph_store()
    store.delete_tenant("acme")
    store.close()


def test_graph_handler_writes_once_per_job(graph_app, cold_env):
    jobs = [
        make_job(texts=["I'm Alice and I work at Globex in Berlin.", "Nice to meet you, Alice."]),
        make_job(first_seq=2, texts=["My manager Bob moved to Acme Corp last week.", "Thanks for the update."]),
    ]
    for job in jobs:
        cold_env.send(job.model_dump_json(), cold_env.graph_url)
    cold_env.send("{not json", cold_env.graph_url)
    messages = cold_env.receive(3, cold_env.graph_url)
    result = graph_app.handler(cold_env.event(messages, cold_env.graph_url), local_context("vicw-graph"))
    assert len(result["batchItemFailures"]) == 1
    counts = container.graph_store().counts("acme")
    assert counts["nodes"] > 0 and counts["edges"] > 0, counts

    # redelivery of both jobs: a no-op for the graph
    for job in jobs:
        cold_env.send(job.model_dump_json(), cold_env.graph_url)
    again = graph_app.handler(cold_env.event(cold_env.receive(2, cold_env.graph_url), cold_env.graph_url), None)
    assert again["batchItemFailures"] == []
    assert container.graph_store().counts("acme") == counts


def test_graph_extractor_setting_picks_the_llm_extractor(cold_env, monkeypatch, scripted_llm):
    from vicw.bootstrap import graph_worker as build_graph_worker
    from vicw.config import SettingsError
    from vicw.extraction import LLMExtractor

    monkeypatch.setenv("GRAPH_BACKEND", "none")
    monkeypatch.setenv("GRAPH_EXTRACTOR", "llm")
    monkeypatch.setenv("VICW_LLM_PROVIDER", "openai")
    monkeypatch.setenv("VICW_LLM_API_URL", scripted_llm.url)
    cold_env.rebuild()
    assert isinstance(build_graph_worker().runner.handler.__self__.extractor, LLMExtractor)

    monkeypatch.setenv("VICW_LLM_PROVIDER", "none")  # asked for the LLM but gave none: refuse at start
    cold_env.rebuild()
    with pytest.raises(SettingsError, match="GRAPH_EXTRACTOR=llm"):
        build_graph_worker()

    monkeypatch.setenv("GRAPH_EXTRACTOR", "rules")
    cold_env.rebuild()
    assert build_graph_worker().runner.handler.__self__.extractor is None
