"""Record parsing and job chunking: pure, deterministic, no store involved."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from vicw.cold_path import InvalidJob, parse_job
from vicw.models import OffloadJob, Turn
from vicw.tokens import TokenCounter
from vicw.vector_store import MAX_CHUNK_TOKENS, chunk_job

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def make_job(
    tenant: str = "acme",
    session_id: str | None = "s1",
    texts: list[str] | None = None,
    first_seq: int = 0,
    kind: str = "conversation",
    names: tuple[str, str] = ("Alice", "Bot"),
    metadata: dict[str, str] | None = None,
) -> OffloadJob:
    """An offload job like the hot path sheds: alternating user/assistant turns, one minute apart."""
    texts = texts if texts is not None else ["My invoice INV-7 is due on Friday.", "Noted, INV-7 due Friday."]
    turns = [
        Turn(seq=first_seq + i, role="user" if i % 2 == 0 else "assistant", content=t, name=names[i % 2],
             timestamp=T0 + timedelta(minutes=first_seq + i), tokens=len(t.split()) + 4)
        for i, t in enumerate(texts)
    ]
    last = first_seq + max(len(texts) - 1, 0)
    return OffloadJob(
        job_id=OffloadJob.make_id(tenant, session_id, first_seq, last, kind), tenant=tenant, session_id=session_id,
        kind=kind, turns=turns, token_count=sum(t.tokens for t in turns), created_at=T0 + timedelta(minutes=last + 1),
        metadata=metadata or {},
    )


def test_parse_job_roundtrip_and_sns_envelope():
    job = make_job()
    assert parse_job(job.model_dump_json()) == job
    assert parse_job(job.model_dump_json().encode()) == job
    envelope = json.dumps({"Type": "Notification", "MessageId": "m", "Message": job.model_dump_json()})
    assert parse_job(envelope) == job


@pytest.mark.parametrize("body", ["", "not json", "[]", '{"job_id": "x"}', '{"Type": "Notification", "Message": "{}"}'])
def test_parse_job_rejects_junk_clearly(body):
    with pytest.raises(InvalidJob):
        parse_job(body)


def test_parse_job_error_does_not_echo_user_text():
    job = json.loads(make_job(texts=["my secret password is hunter2"]).model_dump_json())
    job["turns"][0]["role"] = "wizard"
    with pytest.raises(InvalidJob) as info:
        parse_job(json.dumps(job))
    assert "hunter2" not in str(info.value)
    assert "turns.0.role" in str(info.value)


def test_one_chunk_per_turn_with_payload():
    job = make_job(metadata={"source": "chat"})
    chunks = chunk_job(job)
    assert [c.payload["seq"] for c in chunks] == [0, 1]
    first = chunks[0].payload
    assert first["tenant"] == "acme" and first["session_id"] == "s1" and first["job_id"] == job.job_id
    assert first["role"] == "user" and first["speaker"] == "Alice" and first["kind"] == "conversation"
    assert first["timestamp"] == T0.timestamp() and first["iso"].startswith("2026-03-01T09:30")
    assert first["metadata"] == {"source": "chat"}
    # the stored text is what the model saw: speaker and date included
    assert chunks[0].text == "[2026-03-01 09:30] Alice: My invoice INV-7 is due on Friday."


def test_ids_are_deterministic_and_scoped():
    a, b = chunk_job(make_job()), chunk_job(make_job())
    assert [c.id for c in a] == [c.id for c in b]
    other_tenant = chunk_job(make_job(tenant="globex"))
    other_session = chunk_job(make_job(session_id="s2"))
    assert not {c.id for c in a} & {c.id for c in other_tenant}
    assert not {c.id for c in a} & {c.id for c in other_session}


def test_same_turn_in_a_different_job_keeps_its_id():
    # A replay that cut jobs differently must overwrite, not duplicate, a conversation turn.
    wide = chunk_job(make_job(texts=["a b c", "d e f", "g h i"]))
    narrow = chunk_job(make_job(texts=["d e f", "g h i"], first_seq=1))
    assert {c.id for c in narrow} <= {c.id for c in wide}


def test_documents_are_scoped_by_job():
    d1 = chunk_job(make_job(session_id=None, kind="document", texts=["part one"], metadata={"title": "Handbook"}))
    d2 = chunk_job(make_job(session_id=None, kind="document", texts=["part one"], first_seq=5))
    assert d1[0].payload["session_id"] is None and d1[0].payload["metadata"]["title"] == "Handbook"
    assert d1[0].id != d2[0].id


def test_long_turn_is_split_token_aware_with_shared_turn_id():
    counter = TokenCounter()
    long_text = " ".join(f"sentence {i} about the quarterly budget review." for i in range(120))
    chunks = chunk_job(make_job(texts=["short question", long_text]))
    parts = [c for c in chunks if c.payload["seq"] == 1]
    assert len(parts) > 1
    assert {c.payload["turn_id"] for c in parts} == {"1"}
    assert [c.payload["part"] for c in parts] == list(range(len(parts)))
    assert all(c.payload["parts"] == len(parts) for c in parts)
    assert all(counter.count_text(c.text) <= MAX_CHUNK_TOKENS for c in parts)
    assert all(c.text.startswith("[2026-03-01 09:31] Bot: ") for c in parts)
    assert len({c.id for c in parts}) == len(parts)
    # nothing lost: the parts put together hold the whole message
    joined = "".join(c.text.removeprefix("[2026-03-01 09:31] Bot: ") for c in parts)
    assert joined.replace(" ", "") == long_text.replace(" ", "")


def test_blank_turns_are_skipped():
    assert [c.payload["seq"] for c in chunk_job(make_job(texts=["hello", "   "]))] == [0]
