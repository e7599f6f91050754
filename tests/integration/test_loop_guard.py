"""The echo guard rung by rung, with the scripted OpenAI-compatible server (what the LLM received on
each retry is asserted), real Redis for the reply history and the real embedding model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import patient
from vicw.cold_path import OffloadProcessor
from vicw.config import load_settings
from vicw.conversation import Conversation, IncomingMessage
from vicw.embeddings import Embedder
from vicw.llm.openai_compat import OpenAICompatProvider
from vicw.loop_guard import (
    ECHO_INSTRUCTIONS,
    LAST_INSTRUCTION,
    LOOP_HEADER,
    BoredomCounter,
    EchoGuard,
    LoopGuard,
    echo_key,
    injected_lines,
    with_instruction,
)
from vicw.metrics_export import bridge
from vicw.models import OffloadJob, Turn
from vicw.prompt import MEMORY_OPEN
from vicw.queues import JobPublisher
from vicw.retrieval import HybridMemorySource, RetrievalRecipe
from vicw.tokens import TokenCounter
from vicw.vector_edge import EdgeVectorStore
from vicw.window_store import WindowStore

COUNTER = TokenCounter("cl100k_base")
T0 = datetime(2024, 1, 5, 10, 0, tzinfo=UTC)
ECHO = "The lighthouse on Berlenga island was built in 1841 and is still working today."


@pytest.fixture(scope="module")
def embedder():
    e = Embedder()
    e.warm_up()
    return e


@pytest.fixture()
def convo(redis_client, scripted_llm, embedder):
    """A conversation whose session has archived turns about the lighthouse (so memories are injected)."""
    scripted_llm.reset()
    settings = load_settings(vicw_llm_api_url=scripted_llm.url, llm_max_retries=0, max_context_tokens=4096)
    vectors = EdgeVectorStore(collection=f"echo{uuid.uuid4().hex[:8]}")
    archived = [
        Turn(seq=100 + i, role="user", content=text, name="Rui", timestamp=T0 + timedelta(days=i), tokens=20)
        for i, text in enumerate(["We visited the Berlenga lighthouse by boat.", "The lighthouse keeper told us it dates from 1841."])
    ]
    OffloadProcessor(embedder, vectors).process(
        OffloadJob(job_id="old", tenant="t", session_id="s", turns=archived, token_count=40))
    memory = HybridMemorySource(RetrievalRecipe(), COUNTER, vectors=vectors, embedder=embedder, redis=redis_client)
    guard = LoopGuard(EchoGuard(redis_client, embedder, history_size=5, threshold=0.95, max_attempts=3),
                      BoredomCounter(redis_client, 5))
    windows = WindowStore(redis_client)
    llm = OpenAICompatProvider(scripted_llm.url, model="scripted", timeout=patient(30), max_retries=0)
    yield Conversation(settings, COUNTER, windows, JobPublisher(windows, None, None), llm, memory, guard)
    vectors.close()


def ask(convo: Conversation, text: str):
    return convo.chat("t", "s", [IncomingMessage("user", text, "Rui")])


def system_of(request) -> str:
    return request.messages[0]["content"]


def echo_count() -> float:
    # The Prometheus counter only grows; the Powertools metric set can be flushed by another thread.
    value = bridge().registry.get_sample_value("vicw_echo_regenerations_total")
    return value or 0.0


def test_every_rung_then_keeps_the_last_reply(convo, scripted_llm):
    scripted_llm.script(ECHO)
    ask(convo, "Tell me about the lighthouse.")
    assert len(scripted_llm.chat_requests) == 1
    before = echo_count()

    scripted_llm.script(ECHO, ECHO, ECHO, ECHO)  # the first answer and all three regenerations echo
    result = ask(convo, "And what about the lighthouse now?")
    reqs = scripted_llm.chat_requests[1:]
    assert len(reqs) == 4
    original, first, second, last = (system_of(r) for r in reqs)
    memory_block = next(m["content"] for m in reqs[0].messages if MEMORY_OPEN in m["content"])
    assert "1841" in memory_block.split(MEMORY_OPEN, 1)[1]
    assert first.endswith(ECHO_INSTRUCTIONS[0]) and first.startswith(original)
    assert second.endswith(ECHO_INSTRUCTIONS[1]) and second.startswith(original)
    assert last.endswith(LAST_INSTRUCTION) and last.startswith(original)
    assert [r.messages[1:] for r in reqs[1:3]] == [reqs[0].messages[1:]] * 2  # same window and memories
    # the last rung drops the memories and nothing else
    assert not any(MEMORY_OPEN in m["content"] for m in reqs[3].messages)
    assert reqs[3].messages[1:] == [m for m in reqs[0].messages[1:] if m["content"] != memory_block]
    temps = [r.body["temperature"] for r in reqs]
    assert temps == sorted(temps) and temps[-1] > temps[0]
    assert result.completion.text == ECHO  # nothing better came: the reply is still stored once
    assert [t.content for t in result.state.turns if t.role == "assistant"] == [ECHO, ECHO]
    assert echo_count() - before == 3


def test_a_fresh_regeneration_stops_the_ladder(convo, scripted_llm, redis_client):
    scripted_llm.script(ECHO)
    ask(convo, "Tell me about the lighthouse.")
    fresh = "Boats to Berlenga leave from Peniche harbour several times a day during the summer months."
    scripted_llm.script(ECHO, fresh)
    result = ask(convo, "Anything else?")
    assert len(scripted_llm.chat_requests) == 3
    assert system_of(scripted_llm.chat_requests[2]).endswith(ECHO_INSTRUCTIONS[0])
    assert result.completion.text == fresh
    assert redis_client.llen(echo_key("t", "s")) == 2  # both stored replies are in the history


def test_short_replies_and_other_sessions_are_not_echoes(convo, scripted_llm):
    scripted_llm.script("Sure.", "Sure.", ECHO)
    ask(convo, "Can you help?")
    ask(convo, "Can you help again?")
    convo.chat("t", "other-session", [IncomingMessage("user", "Tell me about the lighthouse.")])
    scripted_llm.script(ECHO)
    convo.chat("t", "s", [IncomingMessage("user", "Tell me about the lighthouse.")])  # first long reply in "s"
    assert len(scripted_llm.chat_requests) == 4


def test_one_attempt_goes_straight_to_the_last_rung(redis_client, embedder):
    guard = EchoGuard(redis_client, embedder, history_size=2, threshold=0.9, max_attempts=1)
    from vicw.llm.base import CompletionRequest

    req = CompletionRequest(messages=[{"role": "system", "content": "sys <memories>x</memories>"}, {"role": "user", "content": "q"}],
                            max_tokens=10, temperature=0.5)
    out = guard.request_for(req, 1, lambda: [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}])
    assert out.messages[0]["content"] == f"sys\n\n{LAST_INSTRUCTION}" and out.temperature == pytest.approx(0.7)
    assert with_instruction([{"role": "user", "content": "q"}], "be brief")[0] == {"role": "system", "content": "be brief"}


def test_boredom_counts_state_lines_but_not_the_warning(redis_client):
    counter = BoredomCounter(redis_client, threshold=2)
    blocks = ["Conversation state:\n- goal: run a marathon\n- task: buy shoes", f"{LOOP_HEADER}\n- goal: run a marathon"]
    lines = injected_lines(blocks)
    assert lines == ["- goal: run a marathon", "- task: buy shoes"]
    for _ in range(3):
        counter.count("t", "s", lines[:1])
    assert counter.counts("t", "s", lines) == [3, 0]
    assert counter.over_threshold("t", "s", lines) == ["- goal: run a marathon"]
    assert counter.over_threshold("t", "other", lines) == []
    assert counter.over_threshold("u", "s", lines) == []
