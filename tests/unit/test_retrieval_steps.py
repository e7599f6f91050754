"""The retrieval steps one by one, on a corpus built in memory (no stores, no model)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from vicw.models import Turn, WindowState
from vicw.retrieval import steps
from vicw.retrieval.corpus import CorpusCache, SessionCorpus, expected_last_seq
from vicw.retrieval.query import analyse, tokenize
from vicw.vector_store import MemoryRecord

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def record(seq: int, content: str, *, session: str | None = "s", kind: str = "conversation", speaker: str = "Alice",
           role: str = "user", days: int = 0) -> MemoryRecord:
    when = T0 + timedelta(days=days, minutes=seq)
    return MemoryRecord(id=f"{kind}-{session}-{seq}", tenant="t", session_id=session, job_id="j", turn_id=str(seq), seq=seq,
                        role=role, speaker=speaker, text=f"[{when:%Y-%m-%d %H:%M}] {speaker}: {content}",
                        timestamp=when.timestamp(), iso=when.isoformat(), tokens=10, kind=kind)


def corpus_of(texts: list[str], dim: int = 8, **kw) -> SessionCorpus:
    rng = np.random.default_rng(0)
    points = []
    for i, text in enumerate(texts):
        v = rng.normal(size=dim)
        points.append((record(i, text, days=i, **kw), list(v / np.linalg.norm(v))))
    return SessionCorpus.build("t", "s", points)


def test_tokenize_keeps_numbers_dates_and_drops_stop_words():
    assert tokenize("The invoice for 4,250 euros is due on 2024-03-05, isn't it?") == ["invoice", "4250", "euros", "due", "2024-03-05", "isn't"]
    assert tokenize("Anna's flight 17") == ["anna", "flight", "17"]


@pytest.mark.parametrize(
    ("query", "start", "days"),
    [
        ("what did we decide on 2024-02-10?", datetime(2024, 2, 10, tzinfo=timezone.utc), 1),
        ("what happened yesterday", datetime(2024, 3, 19, tzinfo=timezone.utc), 1),
        ("anything in February?", datetime(2024, 2, 1, tzinfo=timezone.utc), 29),
        ("what did I say on March 3rd", datetime(2024, 3, 3, tzinfo=timezone.utc), 1),
        ("plans from last week", datetime(2024, 3, 6, tzinfo=timezone.utc), 14),
    ],
)
def test_time_ranges_are_relative_to_the_conversation_clock(query, start, days):
    now = datetime(2024, 3, 20, 15, 30, tzinfo=timezone.utc)
    intent = analyse(query, now)
    assert intent.time_range == (start, start + timedelta(days=days))


def test_when_questions_and_exact_tokens():
    intent = analyse("When did Priya pay the 4,250 invoice?", T0)
    assert intent.asks_when and intent.time_range is None
    assert "4250" in intent.exact and "priya" in intent.exact
    assert analyse("I may come", T0).time_range is None  # "may" the verb is not a month


def test_dense_step_respects_threshold_k_and_the_live_window():
    corpus = corpus_of([f"turn {i}" for i in range(6)])
    query = corpus.vectors[2]
    scores = steps.dense_scores(corpus, query)
    allowed = np.ones(len(corpus), dtype=bool)
    assert steps.dense_step(corpus, scores, allowed, 1, -1.0).rows[0][0] == 2
    state = WindowState(tenant="t", session_id="s", turns=[Turn(seq=2, role="user", content="x", timestamp=T0, tokens=1)])
    live = corpus.live_mask(state)
    ranked = steps.dense_step(corpus, scores, live, 6, -1.0).rows
    assert 2 not in [r for r, _ in ranked] and len(ranked) == 5
    assert steps.dense_step(corpus, scores, allowed, 6, 0.999).rows == [(2, pytest.approx(1.0, abs=1e-5))]


def test_keyword_step_puts_rows_with_every_exact_token_first():
    corpus = corpus_of([
        "invoices invoices invoices are due, send the invoice invoice",
        "the invoice for 4,250 euros goes to Priya",
        "Priya said 4250 was too much",
    ])
    intent = analyse("Which invoice was 4,250 for Priya?", T0)
    ranked = steps.keyword_step(corpus, intent, steps.keyword_scores(corpus, intent), np.ones(3, dtype=bool), 3).rows
    assert [r for r, _ in ranked][0] == 1  # the only row with 4250 AND priya (and invoice)
    nothing = analyse("zebra", T0)
    assert steps.keyword_step(corpus, nothing, steps.keyword_scores(corpus, nothing), np.ones(3, dtype=bool), 3).rows == []


def test_temporal_step_only_returns_rows_inside_the_range():
    corpus = corpus_of(["a", "b", "c", "d"])  # one day apart from 2024-03-01
    intent = analyse("what did we talk about on 2024-03-03?", T0)
    ranked = steps.temporal_step(corpus, intent, np.ones(4), np.ones(4, dtype=bool), 5).rows
    assert [r for r, _ in ranked] == [2]


def test_rrf_rewards_agreement_between_steps():
    a = steps.Ranking("dense", [(1, 0.9), (2, 0.8), (3, 0.7)])
    b = steps.Ranking("keyword", [(3, 9.0), (4, 8.0)])
    fused = steps.rrf_fuse([a, b], {"dense": 1.0, "keyword": 1.0}, k=60)
    assert fused[0][0] == 3 and fused[0][2] == ["dense", "keyword"]
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)
    assert {row for row, _, _ in fused} == {1, 2, 3, 4}


def test_neighbours_complete_an_exchange():
    corpus = corpus_of(["Where did you park the car?", "Level 3, spot 41.", "An unrelated remark about the weather we had today", "Yes."])
    allowed = np.ones(4, dtype=bool)
    assert steps.neighbours(corpus, 0, allowed) == [1]  # a question pulls its answer
    assert steps.neighbours(corpus, 1, allowed) == [0]  # an answer pulls its question
    assert steps.neighbours(corpus, 2, allowed) == []  # a statement stands alone
    assert steps.neighbours(corpus, 3, allowed) == [2]  # a bare "Yes." needs what it answers
    allowed[0] = False
    assert steps.neighbours(corpus, 1, allowed) == []  # never a turn that is in the window


def test_corpus_cache_reloads_on_change_and_settles():
    clock = [0.0]
    loads = []
    sizes = iter([3, 5, 5, 5, 6])

    def load(tenant: str, session_id: str) -> SessionCorpus:
        n = next(sizes)
        loads.append(n)
        return corpus_of([f"t{i}" for i in range(n)])

    cache = CorpusCache(load, clock=lambda: clock[0])
    assert len(cache.get("t", "s", (1,), expected_seq=4)) == 3  # first load: behind (3 turns of 5)
    assert len(cache.get("t", "s", (1,), expected_seq=4)) == 3  # within the recheck interval: cached
    clock[0] += 1.5
    assert len(cache.get("t", "s", (1,), expected_seq=4)) == 5  # rechecked: the cold path caught up
    clock[0] += 2.5
    assert len(cache.get("t", "s", (1,), expected_seq=4)) == 5  # same size, caught up: settled
    clock[0] += 1000
    assert len(cache.get("t", "s", (1,), expected_seq=4)) == 5 and loads == [3, 5, 5]
    assert len(cache.get("t", "s", (2,), expected_seq=5)) == 5 and loads == [3, 5, 5, 5]  # signal changed
    assert len(cache.get("u", "s", (2,))) == 6  # another tenant is another entry


def test_expected_last_seq_is_the_last_shed_turn():
    turns = [Turn(seq=0, role="system", content="s", timestamp=T0, tokens=1, pinned=True),
             Turn(seq=7, role="user", content="x", timestamp=T0, tokens=1)]
    assert expected_last_seq(WindowState(tenant="t", session_id="s", turns=turns, offloaded_turns=6, next_seq=8)) == 6
    assert expected_last_seq(WindowState(tenant="t", session_id="s", turns=turns)) == -1
    assert expected_last_seq(None) == -1


def test_hop_step_follows_a_name_found_in_the_first_hits():
    corpus = corpus_of([
        "We have a new colleague, Ines, who moved here from Ghent.",
        "Ines told me the best place for dinner is Casa Lupo.",
        "Someone recommended a restaurant but I forgot the name.",
        "Ghent is lovely in spring.",
    ])
    intent = analyse("Which restaurant did my colleague from Ghent recommend?", T0)
    assert steps.bridge_names(corpus, [0], intent) == ["ines"]
    hop = steps.hop_step(corpus, intent, [0], np.ones(4, dtype=bool), 3)
    assert [r for r, _ in hop.rows] == [1]
    assert steps.hop_step(corpus, intent, [3], np.ones(4, dtype=bool), 3).rows == []  # no new name, no hop
