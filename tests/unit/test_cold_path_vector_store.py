"""QdrantVectorStore against qdrant-client's local mode (the real client, in-process engine)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.test_cold_path_chunks import make_job
from vicw.vector_store import QdrantVectorStore, VectorStore, VectorStoreError, chunk_job

DIM = 16


def basis(i: int, dim: int = DIM) -> list[float]:
    v = np.full(dim, 0.01)
    v[i % dim] = 1.0
    return (v / np.linalg.norm(v)).tolist()


def vectors_for(job, offset: int = 0) -> list[list[float]]:
    return [basis(c.payload["seq"] + offset) for c in chunk_job(job)]


@pytest.fixture()
def store(tmp_path):
    s = QdrantVectorStore(path=str(tmp_path / "qdrant"), collection="test_memories", dim=DIM)
    yield s
    s.close()


def test_implements_the_protocol(store):
    assert isinstance(store, VectorStore)


def test_upsert_twice_does_not_duplicate(store):
    job = make_job(texts=["a", "b", "c"])
    assert store.upsert_job(job, vectors_for(job)) == 3
    assert store.upsert_job(job, vectors_for(job)) == 3
    assert store.count() == 3 == store.count("acme") == store.count("acme", "s1")


def test_search_is_always_tenant_scoped(store):
    acme, globex = make_job(texts=["a", "b"]), make_job(tenant="globex", texts=["a", "b"])
    store.upsert_job(acme, vectors_for(acme))
    store.upsert_job(globex, vectors_for(globex))
    hits = store.search("acme", basis(1), limit=10)
    assert hits and {h.tenant for h in hits} == {"acme"}
    assert hits[0].seq == 1 and hits[0].score > 0.99
    assert hits[0].text.endswith("b") and hits[0].speaker == "Bot" and hits[0].job_id == acme.job_id
    with pytest.raises(ValueError):
        store.search("", basis(1))


def test_session_filter_and_tenant_wide_documents(store):
    s1, s2 = make_job(session_id="s1", texts=["a"]), make_job(session_id="s2", texts=["a"])
    doc = make_job(session_id=None, kind="document", texts=["handbook"], first_seq=0)
    for job in (s1, s2, doc):
        store.upsert_job(job, vectors_for(job))
    found = {(h.session_id, h.kind) for h in store.search("acme", basis(0), session_id="s1", limit=10)}
    assert found == {("s1", "conversation"), (None, "document")}
    only = {(h.session_id, h.kind) for h in store.search("acme", basis(0), session_id="s1", include_tenant_wide_documents=False)}
    assert only == {("s1", "conversation")}
    assert len(store.search("acme", basis(0), limit=10)) == 3


def test_score_threshold_and_limit(store):
    job = make_job(texts=[str(i) for i in range(6)])
    store.upsert_job(job, vectors_for(job))
    assert len(store.search("acme", basis(2), limit=2)) == 2
    close = store.search("acme", basis(2), limit=10, score_threshold=0.9)
    assert [h.seq for h in close] == [2]
    assert store.search("acme", basis(2), limit=0) == []


def test_scroll_count_and_deletes(store):
    jobs = [make_job(session_id="s1", texts=["a", "b"]), make_job(session_id="s2", texts=["c"]), make_job(tenant="globex", texts=["d"])]
    for job in jobs:
        store.upsert_job(job, vectors_for(job))
    assert sorted(r.text[-1] for r in store.scroll("acme")) == ["a", "b", "c"]
    assert sorted(r.text[-1] for r in store.scroll("acme", "s1")) == ["a", "b"]
    assert store.delete_session("acme", "s1") == 2
    assert store.delete_session("acme", "s1") == 0
    assert store.count("acme") == 1
    assert store.delete_tenant("acme") == 1
    assert store.count() == 1 and store.count("globex") == 1


def test_export_import_roundtrip(store, tmp_path):
    job = make_job(texts=["a", "b", "c"])
    store.upsert_job(job, vectors_for(job))
    dump = list(store.export("acme"))
    assert len(dump) == 3 and all(len(p["vector"]) == DIM for p in dump)
    other = QdrantVectorStore(path=str(tmp_path / "restored"), collection="test_memories", dim=DIM)
    try:
        assert other.import_(dump) == 3
        assert other.import_(dump) == 3  # same ids: overwrite
        assert other.count("acme") == 3
        assert other.search("acme", basis(1))[0].seq == 1
    finally:
        other.close()


def test_dimension_mismatch_is_reported_and_nothing_is_dropped(tmp_path):
    path = str(tmp_path / "qdrant")
    first = QdrantVectorStore(path=path, collection="memories", dim=DIM)
    job = make_job(texts=["a"])
    first.upsert_job(job, vectors_for(job))
    first.close()
    wrong = QdrantVectorStore(path=path, collection="memories", dim=DIM * 2)
    try:
        with pytest.raises(VectorStoreError, match="16-dim vectors .* 32-dim"):
            wrong.count()
    finally:
        wrong.close()
    again = QdrantVectorStore(path=path, collection="memories", dim=DIM)
    try:
        assert again.count() == 1
    finally:
        again.close()


def test_bad_vectors_are_refused(store):
    job = make_job(texts=["a", "b"])
    with pytest.raises(ValueError, match="2 chunks but 1 vectors"):
        store.upsert_job(job, vectors_for(job)[:1])
    with pytest.raises(VectorStoreError):
        store.upsert_job(job, [[1.0, 0.0]] * 2)
    assert store.count() == 0


def test_ping(store):
    assert store.ping()
    unreachable = QdrantVectorStore(url="http://127.0.0.1:9", dim=DIM, timeout=1)
    assert not unreachable.ping()


class PickyModel:
    """An embedding model that cannot embed one particular text (as a tokenizer bug might)."""

    def __init__(self, broken: str = "", down: bool = False) -> None:
        self.broken, self.down = broken, down

    def embed(self, texts: list[str]) -> list[list[float]]:
        if self.down or any(self.broken and self.broken in t for t in texts):
            raise RuntimeError("model cannot embed this")
        return [basis(len(t)) for t in texts]


def test_a_turn_the_model_cannot_embed_is_left_out_and_its_neighbours_are_stored(store, caplog):
    from vicw.cold_path import OffloadProcessor

    job = make_job(texts=["first fine turn", "the KAPUTT turn", "third fine turn"])
    out = OffloadProcessor(PickyModel("KAPUTT"), store).process(job)
    assert out["quarantined_turns"] == [1] and out["points"] == 2
    assert sorted(r.seq for r in store.scroll("acme")) == [0, 2]
    assert any("turn quarantined" in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_model_that_embeds_nothing_fails_the_job_for_a_retry(store):
    from vicw.cold_path import OffloadProcessor

    with pytest.raises(RuntimeError):
        OffloadProcessor(PickyModel(down=True), store).process(make_job(texts=["a", "b"]))
    assert store.count() == 0
