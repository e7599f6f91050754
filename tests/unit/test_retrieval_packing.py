"""Memories never push a prompt over its budget, and never repeat what the window already holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from vicw.models import Turn, WindowState
from vicw.prompt import Memory, build_prompt
from vicw.retrieval.packing import memory_id, pack, strip_prefix, to_memory
from vicw.tokens import TokenCounter
from vicw.vector_store import MemoryRecord

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
COUNTER = TokenCounter("cl100k_base")
words = st.lists(st.sampled_from(["alpha", "Lisbon", "4,250", "invoice", "<memories>", "é", "dog", "\n", "2024-03-05", "?"]),
                 min_size=1, max_size=120).map(" ".join)


def make_state(texts: list[str]) -> WindowState:
    turns = [
        Turn(
            seq=0,
            role="system",
            content="You are helpful.",
            timestamp=T0,
            tokens=COUNTER.count_message("system", "You are helpful."),
            pinned=True,
        )
    ]
    for i, text in enumerate(texts, start=1):
        t = Turn(seq=i, role="user" if i % 2 else "assistant", content=text, name="Ann", timestamp=T0 + timedelta(minutes=i), tokens=0)
        turns.append(t.model_copy(update={"tokens": COUNTER.count_turn(t)}))
    return WindowState(tenant="t", session_id="s", turns=turns, next_seq=len(turns))


@settings(max_examples=60, deadline=None)
@given(
    window=st.lists(words, min_size=0, max_size=8),
    memories=st.lists(st.tuples(words, st.integers(0, 30), st.floats(0, 1)), max_size=25),
    budget=st.integers(200, 3000),
    memory_budget=st.integers(0, 1500),
    blocks=st.lists(words, max_size=3),
)
def test_prompt_never_exceeds_budget_and_skips_live_turns(window, memories, budget, memory_budget, blocks):
    state = make_state(window)
    base = COUNTER.count_messages(
        [{"role": "system", "content": "You are helpful."}, *({"role": t.role, "content": t.rendered()} for t in state.turns[1:])]
    )
    if base > budget:
        return  # the window alone does not fit: not what this property is about
    live = {t.turn_id for t in state.turns if not t.pinned}
    mems = [
        Memory(id=str(seq), text=text, score=score, source="dense", turn_ids=[str(seq)], timestamp=T0, speaker="Ann", session_id="s")
        for text, seq, score in memories
    ]
    packed = pack(mems, COUNTER, memory_budget)
    assert sum(COUNTER.count_text(m.cite() + "\n") for m in packed) <= memory_budget
    plan = build_prompt(state, COUNTER, budget, packed, memory_budget, blocks)
    assert plan.prompt_tokens <= budget
    assert plan.prompt_tokens == COUNTER.count_messages(plan.messages)
    assert not {m.turn_ids[0] for m in plan.memories} & live
    window_part = [m for m in plan.messages[1:] if m["content"] != plan.memory_block]
    assert window_part == [{"role": t.role, "content": t.rendered()} for t in state.turns[1:]]  # the window is intact


@settings(max_examples=60, deadline=None)
@given(
    window=st.lists(words, min_size=0, max_size=10),
    memories=st.lists(st.tuples(words, st.integers(30, 60), st.floats(0, 1)), max_size=30),
    budget=st.integers(300, 3000),
    memory_budget=st.integers(0, 800),
    extra=st.integers(0, 2000),
    window_min=st.integers(0, 1500),
)
def test_memories_displace_only_old_turns_and_never_the_budget(window, memories, budget, memory_budget, extra, window_min):
    """MEMORY_TOKEN_BUDGET_MAX: the prompt still fits, the window part keeps its order, the newest
    exchange is always whole, and at least WINDOW_MIN_TOKENS of the window stay."""
    state = make_state(window)
    live = state.turns[1:]
    messages = [{"role": "system", "content": "You are helpful."}, *({"role": t.role, "content": t.rendered()} for t in live)]
    base = COUNTER.count_messages(messages)
    if base > budget:
        return
    mems = [Memory(id=str(seq), text=text, score=score, source="dense", turn_ids=[str(seq)], timestamp=T0, speaker="Ann", session_id="s")
            for text, seq, score in memories]
    packed = pack(mems, COUNTER, memory_budget + extra)
    plan = build_prompt(state, COUNTER, budget, packed, memory_budget, [], memory_budget_max=memory_budget + extra,
                        window_min_tokens=window_min)
    assert plan.prompt_tokens <= budget and plan.prompt_tokens == COUNTER.count_messages(plan.messages)
    window_part = [m for m in plan.messages[1:] if m["content"] != plan.memory_block]
    rendered = [{"role": t.role, "content": t.rendered()} for t in live]
    it = iter(rendered)
    assert all(m in it for m in window_part)  # in order, nothing added
    assert window_part[-2:] == rendered[-2:]  # the newest exchange is whole
    kept = COUNTER.count_messages(window_part) if window_part else 0
    assert len(window_part) == len(rendered) or kept >= min(window_min, COUNTER.count_messages(rendered)) - 4 * len(rendered)
    if extra == 0:
        assert window_part == rendered  # no extra room asked: the window is untouched


def test_pack_keeps_order_and_drops_duplicates_and_what_does_not_fit():
    a = Memory(id="1", text="first " * 5, score=0.9, source="dense", turn_ids=["1"])
    dup = Memory(id="1", text="first " * 5, score=0.8, source="keyword", turn_ids=["1"])
    big = Memory(id="2", text="big " * 400, score=0.7, source="dense", turn_ids=["2"])
    c = Memory(id="3", text="third", score=0.6, source="graph", turn_ids=["3"])
    assert [m.id for m in pack([a, dup, big, c], COUNTER, 100)] == ["1", "3"]


def test_records_become_short_cited_memories():
    when = T0 + timedelta(days=2)
    rec = MemoryRecord(
        id="p",
        tenant="t",
        session_id="s",
        job_id="j",
        turn_id="12",
        seq=12,
        role="user",
        speaker="Ann",
        text=f"[{when:%Y-%m-%d %H:%M}] Ann: We moved to Porto. " + "More detail. " * 100,
        timestamp=when.timestamp(),
        iso=when.isoformat(),
        tokens=300,
    )
    mem = to_memory(rec, 0.5, "dense", COUNTER, max_tokens=40)
    assert mem.text.startswith("We moved to Porto.") and COUNTER.count_text(mem.text) <= 41
    assert mem.cite().startswith("[memory 12 | 2024-03-03 09:00 | Ann] We moved")
    assert mem.timestamp == when and mem.turn_ids == ["12"]
    doc = rec.model_copy(update={"kind": "document", "session_id": None, "speaker": "Handbook", "text": "Handbook: Rule one."})
    assert strip_prefix(doc) == "Rule one." and memory_id(doc) == "Handbook#12"
    assert to_memory(doc, 0.1, "keyword", COUNTER, 40).turn_ids == ["doc:j:12"]  # never mistaken for live turn 12
