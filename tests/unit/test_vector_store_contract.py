"""One contract, two adapters: Qdrant Edge (the engine in process) and the Qdrant server adapter
(exercised through qdrant-client's local mode, which speaks the server API). Every test runs on both."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.unit.test_cold_path_chunks import T0, make_job
from vicw.vector_edge import EdgeVectorStore
from vicw.vector_store import MemoryQuery, QdrantVectorStore, VectorStore, VectorStoreError, bm25_document, bm25_query, bm25_text, chunk_job

DIM = 16
ADAPTERS = ("edge", "qdrant")


def basis(i: int, dim: int = DIM) -> list[float]:
    v = np.full(dim, 0.01)
    v[i % dim] = 1.0
    return (v / np.linalg.norm(v)).tolist()


def vectors_for(job, offset: int = 0) -> list[list[float]]:
    return [basis(c.payload["seq"] + offset) for c in chunk_job(job)]


def open_store(kind: str, path, collection: str = "test_memories", dim: int = DIM) -> VectorStore:
    if kind == "edge":
        return EdgeVectorStore(path=str(path), collection=collection, dim=dim)
    return QdrantVectorStore(path=str(path), collection=collection, dim=dim)


@pytest.fixture(params=ADAPTERS)
def kind(request) -> str:
    return request.param


@pytest.fixture()
def store(kind, tmp_path):
    s = open_store(kind, tmp_path / "vectors")
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
    with pytest.raises(ValueError):
        store.query([MemoryQuery("", dense=basis(1), text="a")])


def test_cross_tenant_probe_finds_nothing(store):
    """Same session id, same words, same vectors: another tenant's query still finds nothing."""
    secret = make_job(tenant="acme", texts=["the vault code is 4417", "noted 4417"])
    store.upsert_job(secret, vectors_for(secret))
    for q in (MemoryQuery("globex", "s1", dense=basis(0), text="vault code 4417", limit=10),
              MemoryQuery("globex", None, dense=basis(0), limit=10),
              MemoryQuery("globex", "s1", text="vault code 4417", limit=10)):
        assert store.query([q]) == [[]]
    assert store.turns("globex", "s1", [0, 1]) == []
    assert list(store.scroll("globex")) == [] and store.count("globex") == 0
    assert store.delete_tenant("globex") == 0 and store.count("acme") == 2


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


TEXTS = ["My invoice INV-7 for 4250 euros is due on Friday.", "Noted, the invoice is due Friday.",
         "We adopted a puppy called Biscuit.", "Biscuit loves the beach.", "The weather was rainy.", "Rain again."]


def test_hybrid_query_fuses_dense_and_bm25_in_the_engine(store):
    job = make_job(texts=TEXTS)
    store.upsert_job(job, vectors_for(job))
    # the dense vector points at the rain turn, the words at the puppy: both come back, fused
    for fusion in ("rrf", "dbsf"):
        hits = store.query([MemoryQuery("acme", "s1", dense=basis(4), text="puppy Biscuit", limit=4, fusion=fusion)])[0]
        seqs = [h.seq for h in hits]
        assert 4 in seqs[:3] and 2 in seqs[:3], (fusion, seqs)
    # sparse alone: stemmed words ("invoices" finds "invoice"), numbers kept
    sparse = store.query([MemoryQuery("acme", "s1", text="invoices 4250", limit=3)])[0]
    assert sparse[0].seq == 0 and {h.seq for h in sparse} <= {0, 1}
    # a batch answers every query, in order; an empty query answers nothing
    both = store.query([MemoryQuery("acme", "s1", text="beach", limit=2), MemoryQuery("acme", "s1", limit=2),
                        MemoryQuery("acme", "s1", dense=basis(5), limit=1)])
    assert [h.seq for h in both[0]] == [3] and both[1] == [] and [h.seq for h in both[2]] == [5]


def test_time_range_and_live_window_are_engine_filters(store):
    job = make_job(texts=TEXTS)
    store.upsert_job(job, vectors_for(job))
    start = (T0 + timedelta(minutes=2)).timestamp()
    inside = store.query([MemoryQuery("acme", "s1", dense=basis(0), limit=10, time_range=(start, start + 120))])[0]
    assert sorted(h.seq for h in inside) == [2, 3]
    rest = store.query([MemoryQuery("acme", "s1", dense=basis(0), text="invoice", limit=10, exclude_seqs=(0, 1, 5))])[0]
    assert {h.seq for h in rest} <= {2, 3, 4} and rest


def test_turns_by_number(store):
    job, other = make_job(texts=TEXTS), make_job(session_id="s2", texts=TEXTS)
    store.upsert_job(job, vectors_for(job))
    store.upsert_job(other, vectors_for(other))
    got = store.turns("acme", "s1", [3, 1, 99])
    assert sorted(r.seq for r in got) == [1, 3] and {r.session_id for r in got} == {"s1"}
    assert store.turns("acme", "s1", []) == []


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
    assert store.query([MemoryQuery("acme", "s1", text="a b c", limit=5)]) == [[]]


@pytest.mark.parametrize("target", ADAPTERS)
def test_export_import_roundtrip_across_adapters(store, tmp_path, target):
    job = make_job(texts=TEXTS)
    store.upsert_job(job, vectors_for(job))
    dump = list(store.export("acme"))
    assert len(dump) == 6 and all(len(p["vector"]) == DIM for p in dump)
    other = open_store(target, tmp_path / "restored")
    try:
        assert other.import_(dump) == 6
        assert other.import_(dump) == 6  # same ids: overwrite
        assert other.count("acme") == 6
        assert other.search("acme", basis(1))[0].seq == 1
        assert other.query([MemoryQuery("acme", "s1", text="puppy", limit=1)])[0][0].seq == 2  # sparse rebuilt
    finally:
        other.close()


def test_old_single_vector_backups_restore(store):
    job = make_job(texts=["a", "b"])
    old = [{"id": c.id, "vector": basis(i), "payload": c.payload} for i, c in enumerate(chunk_job(job))]
    assert store.import_(old) == 2 and store.search("acme", basis(1))[0].seq == 1
    with pytest.raises(VectorStoreError):
        store.import_([{"id": old[0]["id"], "vector": [1.0, 0.0], "payload": old[0]["payload"]}])
    with pytest.raises(VectorStoreError):
        store.import_([{"id": old[0]["id"], "vector": basis(0), "payload": {"text": "no tenant"}}])


def test_dimension_mismatch_is_reported_and_nothing_is_dropped(kind, tmp_path):
    path = tmp_path / "vectors"
    first = open_store(kind, path, "memories")
    job = make_job(texts=["a"])
    first.upsert_job(job, vectors_for(job))
    first.close()
    wrong = open_store(kind, path, "memories", dim=DIM * 2)
    try:
        with pytest.raises(VectorStoreError):
            wrong.count()
    finally:
        wrong.close()
    again = open_store(kind, path, "memories")
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


def test_unreachable_server_fails_ping():
    assert not QdrantVectorStore(url="http://127.0.0.1:9", dim=DIM, timeout=1).ping()


def test_bm25_encoding_is_deterministic_and_dates_are_words():
    chunk = chunk_job(make_job(texts=["Biscuit loves the beach"]))[0]
    assert bm25_text(chunk.payload).endswith(f"(Sunday 1 March {T0.year})")
    a, b = bm25_document(chunk.payload), bm25_document(dict(chunk.payload))
    assert a == b and a[0]
    march = set(bm25_query("march")[0])
    assert march and march <= set(a[0])


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
