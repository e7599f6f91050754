"""One turn the cold path cannot process never takes its neighbours with it.

The job is put on the queue by hand (the API refuses such input at the edge): one turn carries a
lone surrogate, which no store, archive or JSON encoder accepts, another a speaker name with one.
Both consumers store the other turns, report the bad ones (WARNING with traceback, a metric, a
/stats counter) and succeed, so the record is not retried into the DLQ.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from tests.integration.test_offload import cold_env, load_function, offload, offload_app  # noqa: F401 - fixtures
from vicw import container
from vicw.lambda_context import local_context
from vicw.models import OffloadJob
from vicw.worker_stats import read_worker_stats

SESSION = "poisoned"


def poisoned_body() -> tuple[str, set[int], set[int]]:
    """A job's JSON as a producer might have sent it: turns 1 and 3 cannot be processed."""
    texts = [
        "Ingrid booked the Bergen ferry for the fourteenth of May.",
        "The hull number is \ud800 unreadable in the scan.",  # lone surrogate: not encodable as UTF-8
        "Tomas confirmed the cabin upgrade to deck seven.",
        "Reminder about the harbour fees.",
        "The return sailing leaves Stavanger at nine in the evening.",
    ]
    turns = [
        {"seq": 10 + i, "role": "user" if i % 2 == 0 else "assistant", "content": t, "name": "Ingrid" if i != 3 else "Bo\udfffb",
         "timestamp": "2024-05-01T10:00:00" if i != 4 else "0001-01-01T00:00:00", "tokens": 20}
        for i, t in enumerate(texts)
    ]
    job = {"job_id": OffloadJob.make_id("acme", SESSION, 10, 14), "tenant": "acme", "session_id": SESSION,
           "turns": turns, "token_count": 100}
    return json.dumps(job), {10, 12, 14}, {11, 13}


def quarantine_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "turn quarantined" in r.getMessage()]


def test_offload_stores_the_good_turns_and_reports_the_bad_ones(offload, cold_env, redis_client, caplog):
    body, good, bad = poisoned_body()
    cold_env.send(body)
    result = offload.handler(cold_env.event(cold_env.receive(1)), local_context("vicw-offload"))
    assert result["batchItemFailures"] == []
    stored = {r.seq for r in cold_env.vectors.scroll("acme", SESSION, include_tenant_wide_documents=False)}
    assert stored == good
    archived = list(cold_env.archive.iter_jobs("acme", SESSION))
    assert [sorted(t.seq for t in j.turns) for j in archived] == [sorted(good)]
    warned = quarantine_warnings(caplog)
    assert sorted(r.seq for r in warned) == sorted(bad)  # type: ignore[attr-defined]
    assert all(r.exc_info for r in warned)  # with the traceback
    assert read_worker_stats(redis_client)["offload"]["quarantined_turns"] == len(bad)


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


def test_graph_stores_the_good_turns_and_reports_the_bad_ones(graph_app, cold_env, redis_client, caplog):
    body, good, bad = poisoned_body()
    cold_env.send(body, cold_env.graph_url)
    result = graph_app.handler(cold_env.event(cold_env.receive(1, cold_env.graph_url), cold_env.graph_url), local_context("vicw-graph"))
    assert result["batchItemFailures"] == []
    store = container.graph_store()
    assert store.counts("acme")["nodes"] > 0
    hits = store.related("acme", SESSION, ["tomas", "stavanger", "ingrid"], limit=10)
    assert hits, "the good turns' entities are in the graph"
    warned = quarantine_warnings(caplog)
    assert sorted(r.seq for r in warned) == sorted(bad)  # type: ignore[attr-defined]
    assert read_worker_stats(redis_client)["graph"]["quarantined_turns"] == len(bad)
