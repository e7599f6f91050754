"""Documents into long-term memory: splitting, POST /ingest (202/413/422), the `vicw ingest` command,
and a 50-page document retrievable through the real cold path (queue -> embed -> Qdrant)."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from tests.conftest import API_KEY, API_KEY_B, patient, running_vicw
from vicw.ingest import PART_TOKENS, build_jobs, split_document
from vicw.tokens import TokenCounter

COUNTER = TokenCounter("cl100k_base")
FACT = "The spare key for the emergency generator is kept in cabinet K-4471, behind the boiler room door."
SUBJECTS = ["The maintenance team", "Each tenant", "The night porter", "A contractor", "The facilities office", "Visitors"]
VERBS = ["should check", "must report", "may request", "will inspect", "records", "reviews"]
OBJECTS = ["the fire doors on every floor", "the water pressure in the east wing", "the parking permits for the month",
           "the lift inspection certificate", "the recycling schedule", "the heating timers in the lobby",
           "the roof access log", "the delivery bay camera footage"]
WHEN = ["every Monday morning", "before the end of each quarter", "after any storm warning", "at least twice a year",
        "whenever the alarm panel shows a fault", "during the annual audit"]


def handbook(pages: int = 50, seed: int = 7) -> str:
    """~500 words a page of plausible building-handbook prose, with one planted fact on page 37."""
    rng = random.Random(seed)
    out = []
    for page in range(1, pages + 1):
        out.append(f"## Page {page}: {rng.choice(OBJECTS).capitalize()}")
        for _ in range(5):
            sentences = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(WHEN)}." for _ in range(7)]
            if page == 37 and not any(FACT in p for p in out):
                sentences.insert(3, FACT)
            out.append(" ".join(sentences))
    return "\n\n".join(out)


def test_split_keeps_paragraphs_together_and_parts_small():
    text = "First paragraph, short.\n\nSecond paragraph, also short.\n\n" + "A long sentence goes on. " * 200
    parts = split_document(text, COUNTER, 100)
    assert parts[0].startswith("First paragraph, short.\n\nSecond paragraph, also short.\n\n")  # packed together
    assert all(COUNTER.count_text(p) <= 100 for p in parts)
    assert "".join(parts).replace("\n\n", "").replace(" ", "") == text.replace("\n\n", "").replace(" ", "")  # nothing lost


def test_jobs_are_deterministic_and_fit_a_queue_message():
    doc = handbook(50)
    doc_id, jobs, tokens = build_jobs("t", None, doc, {"title": "Handbook"}, COUNTER)
    again, jobs2, _ = build_jobs("t", None, doc, {"title": "Handbook"}, COUNTER)
    assert doc_id == again and [j.job_id for j in jobs] == [j.job_id for j in jobs2]
    assert build_jobs("t", "s1", doc, {"title": "Handbook"}, COUNTER)[0] != doc_id  # scope is part of the identity
    assert all(len(j.model_dump_json()) < 200_000 and j.kind == "document" and j.session_id is None for j in jobs)
    parts = [t for j in jobs for t in j.turns]
    assert [t.seq for t in parts] == list(range(len(parts)))
    assert all(t.role == "user" and t.name == "Handbook" and COUNTER.count_text(t.content) <= PART_TOKENS for t in parts)
    assert 24_000 <= len(doc.split()) <= 27_000 and tokens > 25_000


@pytest.fixture()
def live(tmp_path, redis_url, moto_endpoint, vicw_env, scripted_llm, redis_client):
    env = {**vicw_env, "MAX_INGEST_BYTES": "400000"}
    scripted_llm.reset()
    with running_vicw(tmp_path, redis_url, moto_endpoint, env, cold_path=True) as local:
        yield local


def wait_for_points(api: httpx.Client, at_least: int, timeout: float = 150) -> int:
    timeout = patient(timeout)
    deadline = time.monotonic() + timeout
    points = 0
    while time.monotonic() < deadline:
        points = api.get("/stats").json()["vectors"]["points"] or 0
        if points >= at_least:
            return points
        time.sleep(1)
    raise AssertionError(f"only {points} of {at_least} points stored after {timeout}s")


def test_a_fifty_page_document_becomes_retrievable(live, tmp_path):
    doc = handbook(50)
    path = tmp_path / "building-handbook.md"
    path.write_text(doc)
    from vicw.cli import main

    assert main(["ingest", str(path), "--url", live.url, "--api-key", API_KEY, "--quiet"]) == 0
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as api:
        expected = sum(len(j.turns) for j in build_jobs("tenant-a", None, doc, {"title": "building-handbook",
                                                                                 "source": "building-handbook.md"}, COUNTER)[1])
        assert wait_for_points(api, expected) == expected
        ctx = api.post("/sessions/any-session/context", json={"query": "Where is the spare key for the emergency generator?"}).json()
        assert any("K-4471" in m["content"] for m in ctx["messages"])
        hit = next(m for m in ctx["memories"] if "K-4471" in m["text"])
        assert hit["session_id"] is None and hit["id"].startswith("building-handbook#")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {API_KEY_B}"}, timeout=60) as other:
        ctx = other.post("/sessions/any-session/context", json={"query": "Where is the spare key for the emergency generator?"}).json()
        assert "K-4471" not in str(ctx)  # another tenant never sees it


def test_ingest_limits_and_validation(live):
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as api:
        too_big = api.post("/ingest", json={"document": "x" * 400_001})
        assert too_big.status_code == 413 and "MAX_INGEST_BYTES" in too_big.json()["error"]["message"]
        assert api.post("/ingest", json={"document": "   "}).status_code == 422
        assert api.post("/ingest", json={"document": "ok", "session_id": "bad id!"}).status_code == 422
        ok = api.post("/ingest", json={"document": "Short note about the Tuesday deliveries.", "metadata": {"title": "Note"},
                                       "session_id": "s1"})
        assert ok.status_code == 202 and ok.json()["parts"] == 1 and ok.json()["tokens"] > 0
        again = api.post("/ingest", json={"document": "Short note about the Tuesday deliveries.", "metadata": {"title": "Note"},
                                          "session_id": "s1"})
        assert again.json()["job_id"] == ok.json()["job_id"]  # idempotent
    assert httpx.post(f"{live.url}/ingest", json={"document": "x"}, timeout=patient(60)).status_code == 401
