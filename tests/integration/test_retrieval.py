"""Hybrid retrieval against the real stores: Qdrant Edge (the vector engine in process), FalkorDB,
Redis and the embedding model. Jobs go in through the cold path's own processors, exactly as the
offload/graph functions do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vicw.cold_path import OffloadProcessor
from vicw.embeddings import Embedder
from vicw.graph_store import process_graph_job
from vicw.graph_store.falkordb import FalkorDBGraphStore
from vicw.loop_guard import LOOP_HEADER, BoredomCounter, injected_lines
from vicw.models import OffloadJob, Turn, WindowState
from vicw.prompt import build_prompt
from vicw.retrieval import HybridMemorySource, RetrievalRecipe
from vicw.retrieval.source import STATE_HEADER
from vicw.tokens import TokenCounter
from vicw.vector_edge import EdgeVectorStore

T0 = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)
COUNTER = TokenCounter("cl100k_base")


@pytest.fixture(scope="module")
def embedder():
    e = Embedder()
    e.warm_up()
    return e


def turns(texts: list[str], first: int = 0, names=("Maya", "Assistant"), day0: int = 0) -> list[Turn]:
    return [
        Turn(seq=first + i, role="user" if i % 2 == 0 else "assistant", content=t, name=names[i % 2],
             timestamp=T0 + timedelta(days=day0 + i, minutes=i), tokens=COUNTER.count_message("user", t))
        for i, t in enumerate(texts)
    ]


def job(tenant: str, session: str | None, ts: list[Turn], kind: str = "conversation", title: str | None = None) -> OffloadJob:
    meta = {"title": title} if title else {}
    return OffloadJob(job_id=str(uuid.uuid4()), tenant=tenant, session_id=session, kind=kind, turns=ts,
                      token_count=sum(t.tokens for t in ts), metadata=meta)


A_TEXTS = [
    "My sister Ines is getting married in Sintra on 14 September.",
    "Congratulations to Ines! Do you need help planning the trip to Sintra?",
    "Yes. Also my goal is to finish the Lisbon marathon in under four hours.",
    "A sub-four-hour marathon needs about 16 weeks of training.",
    "My locker code at the gym is 7319.",
    "I will remember that the locker code is 7319.",
    "The weather in Porto was rainy all week.",
    "Rain is common in Porto in spring.",
]
B_TEXTS = [
    "My sister Clara is getting married in Sintra next year.",
    "Lovely! Sintra is beautiful.",
    "My locker code at the gym is 5555.",
    "Noted: 5555.",
]


@pytest.fixture()
def stores(redis_url, redis_client, embedder):
    vectors = EdgeVectorStore(collection=f"t{uuid.uuid4().hex[:8]}")
    graph = FalkorDBGraphStore.from_url(redis_url.rsplit("/", 1)[0], f"g{uuid.uuid4().hex[:8]}")
    offload = OffloadProcessor(embedder, vectors)
    jobs = [
        job("tenant-a", "s", turns(A_TEXTS)),
        job("tenant-a", "other", turns(["My locker code at the gym is 1111 in the other session."], first=0)),
        job(
            "tenant-a",
            None,
            turns(["Company travel policy: trains are booked through the Rail Desk in Coimbra."], names=("Travel policy", "")),
            kind="document",
            title="Travel policy",
        ),
        job("tenant-b", "s", turns(B_TEXTS, names=("Tom", "Assistant"))),
    ]
    for j in jobs:
        offload.process(j)
        process_graph_job(j, graph)
    source = HybridMemorySource(
        RetrievalRecipe(),
        COUNTER,
        vectors=vectors,
        embedder=embedder,
        graph=graph,
        redis=redis_client,
        boredom=BoredomCounter(redis_client, threshold=2),
    )
    yield source, vectors, graph
    graph.delete_tenant("tenant-a")
    graph.delete_tenant("tenant-b")
    vectors.close()


def window(tenant: str, live: list[Turn], shed: int) -> WindowState:
    return WindowState(tenant=tenant, session_id="s", turns=live, next_seq=(live[-1].seq + 1) if live else shed, offloaded_turns=shed)


def texts_of(memories) -> str:
    return "\n".join(m.text for m in memories)


def test_tenant_and_session_filters_hold_with_the_same_session_id(stores):
    source, _, _ = stores
    a = source.retrieve("tenant-a", "s", "What is my locker code at the gym?", window("tenant-a", [], 8))
    b = source.retrieve("tenant-b", "s", "What is my locker code at the gym?", window("tenant-b", [], 4))
    assert "7319" in texts_of(a) and "5555" not in texts_of(a) and "1111" not in texts_of(a)
    assert "5555" in texts_of(b) and "7319" not in texts_of(b) and "Coimbra" not in texts_of(b)
    assert all(m.session_id in ("s", None) for m in a + b)
    docs = source.retrieve("tenant-a", "s", "How are trains booked under the travel policy?", window("tenant-a", [], 8))
    assert any("Rail Desk" in m.text and m.session_id is None for m in docs)  # tenant-wide document
    with pytest.raises(ValueError):
        source.retrieve("", "s", "anything", window("tenant-a", [], 8))


def test_exact_numbers_names_and_dates_come_back_with_their_timestamp(stores):
    source, _, _ = stores
    mems = source.retrieve("tenant-a", "s", "When is Ines getting married?", window("tenant-a", [], 8))
    best = next(m for m in mems if "Ines is getting married" in m.text)
    assert best.timestamp == T0 and best.speaker == "Maya"
    assert "2024-05-02 18:00" in best.cite()
    code = source.retrieve("tenant-a", "s", "which code is 7319?", window("tenant-a", [], 8))
    assert all("7319" in m.text for m in code[:2])  # both turns holding the number lead


def test_turns_in_the_live_window_are_never_returned(stores):
    source, _, _ = stores
    live = turns(A_TEXTS)[4:6]
    state = window("tenant-a", live, 4)
    mems = source.retrieve("tenant-a", "s", "What is my locker code at the gym?", state)
    assert not {m.turn_ids[0] for m in mems} & {"4", "5"}
    assert "7319" not in texts_of(mems)
    plan = build_prompt(state, COUNTER, 3000, mems, 1024, [])
    assert plan.messages[0]["content"].count("7319") == 0  # only the window itself carries it
    assert sum(m["content"].count("7319") for m in plan.messages) == 2


def test_state_block_and_boredom_warning(stores):
    source, _, graph = stores
    state = window("tenant-a", [], 8)
    blocks = source.extra_blocks("tenant-a", "s", state)
    assert blocks and blocks[0].startswith(STATE_HEADER)
    assert "marathon" in blocks[0].lower()
    assert "marathon" not in "".join(source.extra_blocks("tenant-b", "s", window("tenant-b", [], 4))).lower()
    lines = injected_lines(blocks)
    for _ in range(3):  # injected three times: more than the threshold of 2
        source.boredom.count("tenant-a", "s", lines)
    warned = source.extra_blocks("tenant-a", "s", state)
    assert warned[0].startswith(LOOP_HEADER) and any("marathon" in line.lower() for line in warned[0].splitlines()[1:])
    assert injected_lines(warned) == lines  # the warning itself is not counted again


def test_new_points_are_found_at_once_no_cache_to_refresh(stores, embedder):
    source, vectors, _ = stores
    assert "Azores" not in texts_of(source.retrieve("tenant-a", "s", "Where is the ferry to the Azores?", window("tenant-a", [], 8)))
    OffloadProcessor(embedder, vectors).process(job("tenant-a", "s", turns(["The ferry to the Azores leaves from pier 9."], first=8)))
    mems = source.retrieve("tenant-a", "s", "Where is the ferry to the Azores?", window("tenant-a", [], 9))
    assert "pier 9" in texts_of(mems)


def test_time_named_in_the_question_is_an_engine_filter(stores):
    source, _, _ = stores
    # A_TEXTS turn i is dated T0 + i days: "on 2024-05-08" is turn 6 (Porto rain), whatever the words say
    source = HybridMemorySource(RetrievalRecipe(temporal_filter=True), COUNTER, vectors=source.vectors, embedder=source.embedder)
    mems = source.retrieve("tenant-a", "s", "What did we talk about on 2024-05-08?", window("tenant-a", [], 8))
    assert any("temporal" in m.source and "Porto" in m.text for m in mems[:2])
    others = HybridMemorySource(RetrievalRecipe(), COUNTER, vectors=source.vectors, embedder=source.embedder)
    assert all("temporal" not in m.source for m in others.retrieve("tenant-a", "s", "What did we talk about on 2024-05-08?",
                                                                   window("tenant-a", [], 8)))  # off by default


def test_every_step_can_be_switched_off(stores, redis_client, embedder):
    _, vectors, graph = stores
    bare = RetrievalRecipe(top_k_keyword=0, top_k_relational=0, hop_from=0, neighbour_hits=0, temporal_filter=False)
    every = RetrievalRecipe(fusion="rrf", hop_from=3, temporal_filter=True, speaker_filter=True)
    for recipe in (bare, every, RetrievalRecipe(top_k_semantic=0), RetrievalRecipe(fusion="dbsf"), RetrievalRecipe()):
        source = HybridMemorySource(recipe, COUNTER, vectors=vectors, embedder=embedder, graph=graph, redis=redis_client)
        mems = source.retrieve("tenant-a", "s", "What is my locker code at the gym?", window("tenant-a", [], 8))
        assert "7319" in texts_of(mems), recipe
        if recipe is bare:
            assert {m.source for m in mems} == {"hybrid"}
