"""The retrieval steps one by one, on records built in memory (no stores, no model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vicw.retrieval import steps
from vicw.retrieval.query import analyse, tokenize
from vicw.vector_store import MemoryRecord, VectorHit

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def record(seq: int, content: str, *, session: str | None = "s", kind: str = "conversation", speaker: str = "Alice",
           role: str = "user", days: int = 0) -> MemoryRecord:
    when = T0 + timedelta(days=days, minutes=seq)
    return MemoryRecord(id=f"{kind}-{session}-{seq}", tenant="t", session_id=session, job_id="j", turn_id=str(seq), seq=seq,
                        role=role, speaker=speaker, text=f"[{when:%Y-%m-%d %H:%M}] {speaker}: {content}",
                        timestamp=when.timestamp(), iso=when.isoformat(), tokens=10, kind=kind)


def test_tokenize_keeps_numbers_dates_and_drops_stop_words():
    assert tokenize("The invoice for 4,250 euros is due on 2024-03-05, isn't it?") == [
        "invoice",
        "4250",
        "euros",
        "due",
        "2024-03-05",
        "isn't",
    ]
    assert tokenize("Anna's flight 17") == ["anna", "flight", "17"]


@pytest.mark.parametrize(
    ("query", "start", "days"),
    [
        ("what did we decide on 2024-02-10?", datetime(2024, 2, 10, tzinfo=UTC), 1),
        ("what happened yesterday", datetime(2024, 3, 19, tzinfo=UTC), 1),
        ("anything in February?", datetime(2024, 2, 1, tzinfo=UTC), 29),
        ("what did I say on March 3rd", datetime(2024, 3, 3, tzinfo=UTC), 1),
        ("plans from last week", datetime(2024, 3, 6, tzinfo=UTC), 14),
    ],
)
def test_time_ranges_are_relative_to_the_conversation_clock(query, start, days):
    now = datetime(2024, 3, 20, 15, 30, tzinfo=UTC)
    intent = analyse(query, now)
    assert intent.time_range == (start, start + timedelta(days=days))


def test_when_questions_and_exact_tokens():
    intent = analyse("When did Priya pay the 4,250 invoice?", T0)
    assert intent.asks_when and intent.time_range is None
    assert "4250" in intent.exact and "priya" in intent.exact
    assert analyse("I may come", T0).time_range is None  # "may" the verb is not a month


def test_rrf_rewards_agreement_between_steps():
    r = [record(i, f"turn {i}") for i in range(5)]
    a = steps.Ranking("hybrid", [(r[1], 0.9), (r[2], 0.8), (r[3], 0.7)])
    b = steps.Ranking("graph", [(r[3], 9.0), (r[4], 8.0)])
    fused = steps.rrf_fuse([a, b], {"hybrid": 1.0, "graph": 1.0}, k=60)
    assert fused[0].record.seq == 3 and fused[0].steps == ["hybrid", "graph"]
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert {c.record.seq for c in fused} == {1, 2, 3, 4}


def test_score_fusion_adds_cosine_and_squashed_bm25():
    r = [record(i, f"turn {i}") for i in range(3)]

    def hits(pairs):
        return [VectorHit(score=score, **rec.model_dump()) for rec, score in pairs]

    fused = steps.score_fuse(hits([(r[0], 0.6), (r[1], 0.5)]), hits([(r[1], 12.0), (r[2], 3.0)]), bm25_scale=4.0)
    order = [rec.id for rec, _ in fused.rows]
    assert order == [r[1].id, r[0].id, r[2].id]  # agreement wins; a BM25-only hit comes after the dense ones
    assert steps.squash(0, 4) == 0 and 0 < steps.squash(4, 4) < steps.squash(40, 4) < 1


def test_neighbours_complete_an_exchange():
    q, a, statement, yes = (
        record(i, t)
        for i, t in enumerate(
            ["Where did you park the car?", "Level 3, spot 41.", "An unrelated remark about the weather we had today", "Yes."]
        )
    )
    assert steps.neighbour_seqs(q, "s") == [-1, 1] and steps.neighbour_seqs(record(0, "x", session="other"), "s") == []
    assert steps.completes_exchange(q, a)  # a question pulls its answer
    assert steps.completes_exchange(a, q)  # an answer pulls its question
    assert not steps.completes_exchange(statement, yes) and not steps.completes_exchange(statement, a)  # a statement stands alone
    assert steps.completes_exchange(yes, statement)  # a bare "Yes." needs what it answers


def test_bridge_names_lead_to_a_second_hop():
    first = record(0, "We have a new colleague, Ines, who moved here from Ghent.")
    intent = analyse("Which restaurant did my colleague from Ghent recommend?", T0)
    assert steps.bridge_names([first], intent, {"alice"}) == ["ines"]
    assert steps.bridge_names([record(3, "Ghent is lovely in spring.")], intent, set()) == []  # no new name, no hop
    assert steps.mentions_any(record(1, "Ines told me the best place for dinner is Casa Lupo."), ["ines"])
    assert not steps.mentions_any(record(2, "Someone recommended a restaurant."), ["ines"])


def test_mmr_lets_a_different_turn_past_near_repeats_at_the_cut():
    repeat = "the quarterly budget review moved to the big meeting room on friday"
    fused = [steps.Candidate(record(i, repeat + (" again" * i)), 1.0 / (60 + i), ["hybrid"]) for i in range(4)]
    other = steps.Candidate(record(9, "my sister adopted a tabby kitten from the shelter"), 1.0 / 70, ["hybrid"])
    fused.append(other)
    picked = steps.mmr(fused, 0.7, pool=5)
    assert picked[0] is fused[0]  # the best hit stays first
    assert picked.index(other) == 1  # the different turn comes before the repeats
    assert sorted(c.record.id for c in picked) == sorted(c.record.id for c in fused)  # nothing lost or added


def test_mmr_at_lambda_one_or_beyond_the_pool_keeps_the_fused_order():
    fused = [steps.Candidate(record(i, f"same words here {i}"), 1.0 / (60 + i), ["hybrid"]) for i in range(6)]
    assert steps.mmr(fused, 1.0, pool=6) == fused
    assert steps.mmr(fused, 0.5, pool=3)[3:] == fused[3:]
