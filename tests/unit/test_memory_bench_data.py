"""The memory benchmark's generated chats: deterministic, and every question points at real evidence."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.memory.generate import KINDS, dataset, generate


@pytest.fixture(scope="module")
def quick():
    return dataset(7, quick=True)


def test_same_seed_same_conversations(quick) -> None:
    again = dataset(7, quick=True)
    assert [(t.speaker, t.content, t.timestamp) for c in quick for t in c.turns] == \
        [(t.speaker, t.content, t.timestamp) for c in again for t in c.turns]
    assert [(q.text, q.evidence, q.answer) for c in quick for q in c.questions] == \
        [(q.text, q.evidence, q.answer) for c in again for q in c.questions]
    other = dataset(8, quick=True)
    assert [t.content for t in other[0].turns] != [t.content for t in quick[0].turns]


@pytest.mark.parametrize("seed", [7, 11, 12345])
def test_evidence_ids_point_at_turns_that_exist(seed: int) -> None:
    conv = generate(seed, 500, "c", n_questions=18)
    assert conv.questions
    ids = {t.index for t in conv.turns}
    assert [t.index for t in conv.turns] == list(range(len(conv.turns)))
    for q in conv.questions:
        assert q.kind in KINDS
        assert q.evidence and set(q.evidence) <= ids, q
        assert len(set(q.evidence)) == len(q.evidence)
        for i in q.evidence:
            turn = conv.turns[i]
            assert turn.key and turn.key in turn.content  # an evidence turn carries its fact sentence
        if q.kind == "multi-hop":  # facts spread over sessions
            assert len({conv.turns[i].session_no for i in q.evidence}) >= 2, q


def test_chat_looks_like_an_export(quick) -> None:
    conv = quick[0]
    assert len(set(t.speaker for t in conv.turns)) == 2
    assert all(t.timestamp.tzinfo is None for t in conv.turns)  # naive, as exports carry them
    stamps = [t.timestamp for t in conv.turns]
    assert stamps == sorted(stamps)
    assert len({t.session_no for t in conv.turns}) >= 4
    assert {q.kind for c in quick for q in c.questions} == set(KINDS)
    full = generate(7, 500, "c")
    text = "\n".join(t.content for t in full.turns)
    assert "[shares a photo of" in text
    assert re.search(r"last (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)|days ago|weeks? ago|yesterday|last night", text)


def test_same_conversations_in_another_process() -> None:
    """No set or hash ordering leaks in: two interpreters with different hash seeds generate the same data."""
    import os
    import subprocess

    code = ("import hashlib, sys; sys.path.insert(0, sys.argv[1]); from bench.memory.generate import dataset; d = dataset(7, quick=True); "
            "print(hashlib.sha1(repr([(t.speaker, t.content, t.timestamp, t.key) for c in d for t in c.turns] + "
            "[(q.text, q.evidence, q.answer) for c in d for q in c.questions]).encode()).hexdigest())")
    root = str(Path(__file__).resolve().parents[2])
    digests = {subprocess.run([sys.executable, "-c", code, root], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(digests) == 1
