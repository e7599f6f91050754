"""Long-term memory vectors: one port (`VectorStore`), two adapters, one schema.

What is stored: one point per offloaded turn, because a question matches a turn ("what did Bob say
about the invoice?"), not a whole job. A turn too long for the embedding model is split on token
boundaries into parts that share its turn_id. Point ids are deterministic (uuid5 of tenant, session
and turn position), so a job delivered twice, or replayed from the archive, overwrites the same
points instead of duplicating them.

Each point carries two named vectors: `dense` (the sentence embedding, cosine) and `bm25` (a sparse
BM25 vector; the engine applies IDF at query time). Retrieval runs in the engine: hybrid candidates
through the Query API (prefetch dense + sparse, fused there), payload filters for tenant, session,
time range and turn numbers. No process holds a copy of anyone's memory.

Adapters: `EdgeVectorStore` (vicw.vector_edge: Qdrant Edge, the engine in-process, the default for
`vicw local`, tests and CI) and `QdrantVectorStore` (below: a Qdrant server through qdrant-client;
its local mode speaks the same API and is used to test this adapter on small data). Both encode
BM25 with the same encoder (vicw.bm25, equal to Qdrant Edge's built-in `Bm25`, whose config mirrors
the server's), so a point written by one is found the same way by the other.

Every read is filtered by tenant in the engine: there is no method that can return another
tenant's memories. A collection is created on first use and never dropped or recreated by this
code; one in an older or foreign schema is an operator error and is reported as such.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from vicw import bm25
from vicw.models import OffloadJob, Turn
from vicw.tokens import TokenCounter

POINT_NAMESPACE = uuid.UUID("0b7d2f0e-94c1-4a43-8f0c-3c2b1d9a6e55")
# all-MiniLM-L6-v2 truncates at 256 word pieces; 200 tiktoken tokens stay safely below that.
MAX_CHUNK_TOKENS = 200
_SCROLL_PAGE = 256
_UPSERT_BATCH = 256


DENSE = "dense"
SPARSE = "bm25"
# Payload fields with an index, and their types. `tenant` is the tenant key (co-located storage).
INDEXED_FIELDS = {"tenant": "tenant", "session_id": "keyword", "kind": "keyword", "job_id": "keyword",
                  "speaker": "keyword", "seq": "integer", "timestamp": "float"}
FUSIONS = ("rrf", "dbsf")


class VectorStoreError(RuntimeError):
    """The vector store is misconfigured (never raised for a transient outage)."""


class MemoryRecord(BaseModel):
    """One stored point's payload: a turn (or a part of one) from a conversation or a document."""

    id: str
    tenant: str
    session_id: str | None
    job_id: str
    turn_id: str
    seq: int
    part: int = 0
    parts: int = 1
    role: str
    speaker: str | None = None
    text: str
    timestamp: float
    iso: str
    tokens: int
    kind: str = "conversation"
    metadata: dict[str, str] = Field(default_factory=dict)


class VectorHit(MemoryRecord):
    score: float


class Chunk(BaseModel):
    """A unit to embed and store: the text the model sees and the payload it is stored with."""

    id: str
    text: str
    payload: dict[str, Any]


def point_id(job: OffloadJob, seq: int, part: int) -> str:
    # A conversation turn is unique by its position in the session, whichever job carried it.
    # Document parts restart their numbering per job, so the job is part of their identity.
    owner = job.session_id if job.kind == "conversation" else f"{job.session_id}/{job.job_id}"
    return str(uuid.uuid5(POINT_NAMESPACE, f"{job.kind}/{job.tenant}/{owner}/{seq}/{part}"))


@lru_cache(maxsize=4)
def _counter(encoding: str) -> TokenCounter:
    return TokenCounter(encoding)


def _turn_parts(turn: Turn, counter: TokenCounter, max_tokens: int) -> list[tuple[str, int]]:
    """(rendered text, tokens) for each part of a turn; every part keeps the speaker/date prefix."""
    whole = turn.rendered()
    n = counter.count_text(whole)
    if n <= max_tokens:
        return [(whole, n)]
    prefix_tokens = n - counter.count_text(turn.content)
    # a little slack: tokens can merge differently where the prefix meets the piece
    pieces = counter.split(turn.content, max(32, max_tokens - prefix_tokens - 4))
    out = []
    for piece in pieces:
        text = turn.model_copy(update={"content": piece}).rendered()
        out.append((text, counter.count_text(text)))
    return out


def chunk_job(job: OffloadJob, *, max_tokens: int = MAX_CHUNK_TOKENS, encoding: str = "cl100k_base") -> list[Chunk]:
    """The points a job becomes, in order. Pure and deterministic: same job, same chunks, same ids."""
    counter = _counter(encoding)
    chunks: list[Chunk] = []
    for turn in job.turns:
        if not turn.content.strip():
            continue
        parts = _turn_parts(turn, counter, max_tokens)
        for i, (text, tokens) in enumerate(parts):
            pid = point_id(job, turn.seq, i)
            record = MemoryRecord(
                id=pid,
                tenant=job.tenant,
                session_id=job.session_id,
                job_id=job.job_id,
                turn_id=turn.turn_id,
                seq=turn.seq,
                part=i,
                parts=len(parts),
                role=turn.role,
                speaker=turn.name,
                text=text,
                timestamp=turn.timestamp.timestamp(),
                iso=turn.timestamp.isoformat(),
                tokens=tokens,
                kind=job.kind,
                metadata=job.metadata,
            )
            chunks.append(Chunk(id=pid, text=text, payload=record.model_dump(exclude={"id"})))
    return chunks


def bm25_text(payload: dict[str, Any]) -> str:
    """What the sparse vector indexes: the turn's text plus its date in words, so "in May 2023" or
    "on Sunday" matches a turn from then (the stored prefix only has digits)."""
    text = payload.get("text") or ""
    ts = payload.get("timestamp")
    if ts is None:
        return text
    when = datetime.fromtimestamp(float(ts), UTC)
    return f"{text} ({when:%A} {when.day} {when:%B %Y})"


def bm25_document(payload: dict[str, Any]) -> tuple[list[int], list[float]]:
    """(indices, values) of a point's sparse vector; the same encoder for both adapters (vicw.bm25)."""
    return bm25.encode_document(bm25_text(payload))


def bm25_query(text: str) -> tuple[list[int], list[float]]:
    return bm25.encode_query(text)


@dataclass(frozen=True)
class MemoryQuery:
    """One search, run in the engine. Dense and/or sparse: with both, the engine fuses the two
    candidate lists (`fusion`); with one, it is a plain nearest-neighbour query on that vector.

    Scope: always one tenant; a session (plus, optionally, the tenant's shared documents) or the
    whole tenant; optionally a time range; never the session's turns listed in `exclude_seqs` (the
    ones still in the live window)."""

    tenant: str
    session_id: str | None = None
    dense: Sequence[float] | None = None
    text: str | None = None  # BM25 query text
    limit: int = 8
    prefetch_limit: int = 24  # candidates each vector contributes to the fusion
    fusion: str = "rrf"
    dense_threshold: float | None = None
    time_range: tuple[float, float] | None = None  # [start, end) epoch seconds
    exclude_seqs: tuple[int, ...] = ()
    include_tenant_wide_documents: bool = True
    speaker: str | None = None  # only turns by this speaker

    def with_(self, **changes: Any) -> MemoryQuery:
        return replace(self, **changes)


@runtime_checkable
class VectorStore(Protocol):
    """The port every part of VICW uses for vectors (chat retrieval, cold path, backup, forget)."""

    dim: int
    collection: str

    def chunks(self, job: OffloadJob) -> list[Chunk]: ...

    def upsert_job(self, job: OffloadJob, vectors: Sequence[Sequence[float]], chunks: list[Chunk] | None = None) -> int: ...

    def query(self, queries: Sequence[MemoryQuery]) -> list[list[VectorHit]]: ...

    def turns(self, tenant: str, session_id: str, seqs: Iterable[int]) -> list[MemoryRecord]: ...

    def search(
        self,
        tenant: str,
        query_vector: Sequence[float],
        session_id: str | None = None,
        limit: int = 8,
        score_threshold: float | None = None,
        include_tenant_wide_documents: bool = True,
    ) -> list[VectorHit]: ...

    def scroll(self, tenant: str, session_id: str | None = None, include_tenant_wide_documents: bool = True) -> Iterator[MemoryRecord]: ...

    def count(self, tenant: str | None = None, session_id: str | None = None) -> int: ...

    def delete_session(self, tenant: str, session_id: str) -> int: ...

    def delete_tenant(self, tenant: str) -> int: ...

    def export(self, tenant: str | None = None) -> Iterator[dict[str, Any]]: ...

    def import_(self, points: Iterable[dict[str, Any]]) -> int: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


# --- filters, written once for both adapters -------------------------------------------------------
@dataclass(frozen=True)
class FilterDialect:
    """How one client library spells the few filter parts VICW uses."""

    match: Callable[[str, Any], Any]
    match_any: Callable[[str, list[Any]], Any]
    is_null: Callable[[str], Any]
    range: Callable[[str, float | None, float | None], Any]  # key, gte, lt
    filter: Callable[..., Any]  # must=, should=, must_not=


def scope_filter(
    d: FilterDialect,
    tenant: str | None,
    session_id: str | None = None,
    include_tenant_wide_documents: bool = False,
    time_range: tuple[float, float] | None = None,
    exclude_seqs: Sequence[int] = (),
    speaker: str | None = None,
) -> Any:
    must: list[Any] = []
    must_not: list[Any] = []
    if tenant is not None:
        must.append(d.match("tenant", tenant))
    if session_id is not None:
        in_session = d.match("session_id", session_id)
        if include_tenant_wide_documents:
            tenant_docs = d.filter(must=[d.match("kind", "document"), d.is_null("session_id")])
            must.append(d.filter(should=[in_session, tenant_docs]))
        else:
            must.append(in_session)
        if exclude_seqs:
            must_not.append(d.filter(must=[in_session, d.match("kind", "conversation"), d.match_any("seq", sorted(set(exclude_seqs)))]))
    if time_range is not None:
        must.append(d.range("timestamp", time_range[0], time_range[1]))
    if speaker is not None:
        must.append(d.match("speaker", speaker))
    if not must and not must_not:
        return None
    return d.filter(must=must or None, must_not=must_not or None)


def record_from(point_id: Any, payload: dict[str, Any] | None) -> MemoryRecord:
    return MemoryRecord(id=str(point_id), **(payload or {}))


def hit_from(point_id: Any, score: float, payload: dict[str, Any] | None) -> VectorHit:
    return VectorHit(id=str(point_id), score=float(score), **(payload or {}))


def check_import_point(p: dict[str, Any], dim: int) -> list[float]:
    """The dense vector of an exported point (old single-vector backups and new named ones)."""
    vector = p.get("vector")
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    if not isinstance(vector, list) or len(vector) != dim:
        size = len(vector) if isinstance(vector, list) else "no"
        raise VectorStoreError(f"point {p.get('id')} has a {size}-dim dense vector; the collection needs {dim}")
    if not (p.get("payload") or {}).get("tenant"):
        raise VectorStoreError(f"point {p.get('id')} has no tenant in its payload")
    return [float(x) for x in vector]


def _require_tenant(tenant: str | None) -> str:
    if not tenant:
        raise ValueError("tenant is required: every read is scoped to one tenant")
    return tenant


# --- the Qdrant server adapter ---------------------------------------------------------------------
def _client_dialect() -> FilterDialect:
    from qdrant_client import models as m

    def flt(must: Any = None, should: Any = None, must_not: Any = None) -> Any:
        return m.Filter(must=must, should=should, must_not=must_not)

    return FilterDialect(
        match=lambda k, v: m.FieldCondition(key=k, match=m.MatchValue(value=v)),
        match_any=lambda k, vs: m.FieldCondition(key=k, match=m.MatchAny(any=vs)),
        is_null=lambda k: m.IsNullCondition(is_null=m.PayloadField(key=k)),
        range=lambda k, gte, lt: m.FieldCondition(key=k, range=m.Range(gte=gte, lt=lt)),
        filter=flt,
    )


class QdrantSchemaStore:
    """What both adapters do the same way, written once over their filter dialect (`_d`), their
    `_scroll_points` and `_delete`: the schema and filters are the same, only the calls differ."""

    _d: FilterDialect
    encoding: str

    def _scroll_points(self, flt: Any, with_vectors: bool | list[str]) -> Iterator[Any]:
        raise NotImplementedError

    def _delete(self, flt: Any) -> int:
        raise NotImplementedError

    def _filter(self, tenant: str | None, session_id: str | None = None, include_tenant_wide_documents: bool = False, **kw: Any) -> Any:
        return scope_filter(self._d, tenant, session_id, include_tenant_wide_documents, **kw)

    def chunks(self, job: OffloadJob) -> list[Chunk]:
        """How this store splits a job into points (what the caller must embed, in order)."""
        return chunk_job(job, encoding=self.encoding)

    def delete_session(self, tenant: str, session_id: str) -> int:
        return self._delete(self._filter(_require_tenant(tenant), session_id))

    def delete_tenant(self, tenant: str) -> int:
        return self._delete(self._filter(_require_tenant(tenant)))

    def turns(self, tenant: str, session_id: str, seqs: Iterable[int]) -> list[MemoryRecord]:
        """The session's stored conversation turns with these numbers (neighbours, graph mentions)."""
        wanted = sorted(set(seqs))
        if not wanted:
            return []
        d = self._d
        flt = d.filter(
            must=[
                d.match("tenant", _require_tenant(tenant)),
                d.match("session_id", session_id),
                d.match("kind", "conversation"),
                d.match_any("seq", wanted),
            ]
        )
        return [record_from(p.id, p.payload) for p in self._scroll_points(flt, with_vectors=False)]

    def scroll(self, tenant: str, session_id: str | None = None, include_tenant_wide_documents: bool = True) -> Iterator[MemoryRecord]:
        for p in self._scroll_points(self._filter(_require_tenant(tenant), session_id, include_tenant_wide_documents), with_vectors=False):
            yield record_from(p.id, p.payload)

    def export(self, tenant: str | None = None) -> Iterator[dict[str, Any]]:
        """Every point (of one tenant, or all): id, dense vector, payload. The sparse vector is left
        out: `import_` recomputes it from the payload."""
        for p in self._scroll_points(self._filter(tenant), with_vectors=[DENSE]):
            vector = p.vector.get(DENSE) if isinstance(p.vector, dict) else p.vector
            yield {"id": str(p.id), "vector": [float(x) for x in vector], "payload": p.payload}


class QdrantVectorStore(QdrantSchemaStore):
    """A Qdrant server (QDRANT_URL + QDRANT_API_KEY) for production; qdrant-client's local mode
    (`path=` or ":memory:") speaks the same API in Python and checks this adapter in tests on small
    data (its filters run in Python: ~1 s per filtered call at 10,000 points, not an engine)."""

    def __init__(
        self,
        settings: Any | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: str | None = None,
        collection: str | None = None,
        dim: int | None = None,
        encoding: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        from qdrant_client import QdrantClient

        if settings is not None:
            url = url or settings.qdrant_url
            if api_key is None and settings.qdrant_api_key is not None:
                api_key = settings.qdrant_api_key.get_secret_value()
            path = path or settings.qdrant_path
            collection = collection or settings.qdrant_collection
            dim = dim or settings.embedding_dim
            encoding = encoding or settings.token_encoding
        if url:
            # No version probe at construction: building the store must not need the network.
            self.client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout), check_compatibility=False)
            self.local = False
        else:
            location = path or ":memory:"
            self.client = QdrantClient(location=":memory:") if location == ":memory:" else QdrantClient(path=location)
            self.local = True
        self.collection = collection or "vicw_memories"
        self.dim = dim or 384
        self.encoding = encoding or "cl100k_base"
        self._ready = False
        self._lock = threading.RLock()
        self._d = _client_dialect()

    # --- collection ---------------------------------------------------------------------
    def _check_existing(self) -> None:
        from qdrant_client import models

        info = self.client.get_collection(self.collection)
        params = info.config.params.vectors
        dense = params.get(DENSE) if isinstance(params, dict) else None
        sparse = (info.config.params.sparse_vectors or {}).get(SPARSE)
        if dense is None or sparse is None:
            raise VectorStoreError(
                f"Qdrant collection {self.collection!r} is not in VICW's schema (named vectors {DENSE!r} and sparse "
                f"{SPARSE!r}); collections made before the hybrid schema have one unnamed vector. Point "
                "QDRANT_COLLECTION at a new collection and rebuild it (docs/migration.md)."
            )
        if dense.size != self.dim:
            raise VectorStoreError(
                f"Qdrant collection {self.collection!r} holds {dense.size}-dim vectors but the embedding "
                f"model makes {self.dim}-dim ones (EMBEDDING_DIM). It will not be dropped automatically: "
                "use another QDRANT_COLLECTION, or migrate it (export, re-embed, import)."
            )
        if dense.distance != models.Distance.COSINE:
            raise VectorStoreError(f"Qdrant collection {self.collection!r} uses {dense.distance} distance; VICW needs Cosine")

    def _ensure(self) -> None:
        if self._ready:
            return
        from qdrant_client import models

        with self._lock:
            if self._ready:
                return
            if not self.client.collection_exists(self.collection):
                try:
                    self.client.create_collection(
                        self.collection,
                        vectors_config={DENSE: models.VectorParams(size=self.dim, distance=models.Distance.COSINE)},
                        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    )
                except Exception:
                    # Another worker may have created it in between; anything else re-raises below.
                    if not self.client.collection_exists(self.collection):
                        raise
            self._check_existing()
            if not self.local:  # local mode ignores payload indexes (and warns about them)
                schemas = {
                    "tenant": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
                    "keyword": models.PayloadSchemaType.KEYWORD,
                    "integer": models.PayloadSchemaType.INTEGER,
                    "float": models.PayloadSchemaType.FLOAT,
                }
                for name, kind in INDEXED_FIELDS.items():
                    self.client.create_payload_index(self.collection, field_name=name, field_schema=schemas[kind])
            self._ready = True

    def _point(self, pid: str, dense: Sequence[float], payload: dict[str, Any]) -> Any:
        from qdrant_client import models

        indices, values = bm25_document(payload)
        return models.PointStruct(id=pid, vector={DENSE: list(dense), SPARSE: models.SparseVector(indices=indices, values=values)},
                                  payload=payload)

    # --- writes ---------------------------------------------------------------------------

    def upsert_job(self, job: OffloadJob, vectors: Sequence[Sequence[float]], chunks: list[Chunk] | None = None) -> int:
        chunks = self.chunks(job) if chunks is None else chunks
        if len(chunks) != len(vectors):
            raise ValueError(f"job {job.job_id}: {len(chunks)} chunks but {len(vectors)} vectors")
        if not chunks:
            return 0
        bad = [len(v) for v in vectors if len(v) != self.dim]
        if bad:
            raise VectorStoreError(f"vector of size {bad[0]} for a {self.dim}-dim collection")
        self._ensure()
        points = [self._point(c.id, v, c.payload) for c, v in zip(chunks, vectors, strict=True)]
        with self._lock:
            self.client.upsert(self.collection, points=points, wait=True)
        return len(points)

    def import_(self, points: Iterable[dict[str, Any]]) -> int:
        """Restore points written by `export` (ids, dense vectors and payloads unchanged; the sparse
        vector is recomputed from the payload, so backups from before the hybrid schema restore too)."""
        self._ensure()
        total = 0
        batch: list[Any] = []

        def flush() -> None:
            nonlocal total, batch
            if batch:
                with self._lock:
                    self.client.upsert(self.collection, points=batch, wait=True)
                total += len(batch)
                batch = []

        for p in points:
            dense = check_import_point(p, self.dim)
            batch.append(self._point(p["id"], dense, p["payload"]))
            if len(batch) >= _UPSERT_BATCH:
                flush()
        flush()
        return total

    def _delete(self, flt: Any) -> int:
        from qdrant_client import models

        self._ensure()
        with self._lock:
            n = self.client.count(self.collection, count_filter=flt, exact=True).count
            if n:
                self.client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)
        return n

    # --- reads --------------------------------------------------------------------------
    def _request(self, q: MemoryQuery) -> Any:
        from qdrant_client import models

        _require_tenant(q.tenant)
        flt = self._filter(q.tenant, q.session_id, q.include_tenant_wide_documents, time_range=q.time_range, exclude_seqs=q.exclude_seqs,
                           speaker=q.speaker)
        sparse = None
        if q.text:
            indices, values = bm25_query(q.text)
            sparse = models.SparseVector(indices=indices, values=values) if indices else None
        dense = list(q.dense) if q.dense is not None else None
        if dense is not None and sparse is not None:
            fusion = models.FusionQuery(fusion=models.Fusion.DBSF if q.fusion == "dbsf" else models.Fusion.RRF)
            return models.QueryRequest(
                prefetch=[
                    models.Prefetch(query=dense, using=DENSE, filter=flt, limit=q.prefetch_limit, score_threshold=q.dense_threshold),
                    models.Prefetch(query=sparse, using=SPARSE, filter=flt, limit=q.prefetch_limit),
                ],
                query=fusion, filter=flt, limit=q.limit, with_payload=True,
            )
        if dense is not None:
            return models.QueryRequest(
                query=dense, using=DENSE, filter=flt, limit=q.limit, score_threshold=q.dense_threshold, with_payload=True
            )
        if sparse is not None:
            return models.QueryRequest(query=sparse, using=SPARSE, filter=flt, limit=q.limit, with_payload=True)
        return None

    def query(self, queries: Sequence[MemoryQuery]) -> list[list[VectorHit]]:
        """All `queries` in one batched call; one result list per query, best first."""
        requests = [self._request(q) for q in queries]
        live = [r for r in requests if r is not None and r.limit > 0]
        if not live:
            return [[] for _ in queries]
        self._ensure()
        with self._lock:
            responses = iter(self.client.query_batch_points(self.collection, requests=live))
        out: list[list[VectorHit]] = []
        for r in requests:
            if r is None or r.limit <= 0:
                out.append([])
                continue
            out.append([hit_from(p.id, p.score, p.payload) for p in next(responses).points])
        return out

    def search(
        self,
        tenant: str,
        query_vector: Sequence[float],
        session_id: str | None = None,
        limit: int = 8,
        score_threshold: float | None = None,
        include_tenant_wide_documents: bool = True,
    ) -> list[VectorHit]:
        """Dense nearest neighbours (a `query` with only the dense vector)."""
        if limit <= 0:
            _require_tenant(tenant)
            return []
        q = MemoryQuery(
            tenant,
            session_id,
            dense=query_vector,
            limit=limit,
            dense_threshold=score_threshold,
            include_tenant_wide_documents=include_tenant_wide_documents,
        )
        return self.query([q])[0]

    def _scroll_points(self, flt: Any, with_vectors: bool | list[str]) -> Iterator[Any]:
        self._ensure()
        offset = None
        while True:
            with self._lock:
                points, offset = self.client.scroll(
                    self.collection, scroll_filter=flt, limit=_SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=with_vectors
                )
            yield from points
            if offset is None:
                return

    def count(self, tenant: str | None = None, session_id: str | None = None) -> int:
        if session_id is not None and tenant is None:
            raise ValueError("a session is only meaningful within a tenant")
        self._ensure()
        with self._lock:
            return self.client.count(self.collection, count_filter=self._filter(tenant, session_id), exact=True).count

    def ping(self) -> bool:
        try:
            with self._lock:
                self.client.get_collections()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable" for a health check
            return False

    def close(self) -> None:
        with self._lock:
            self.client.close()
            self._ready = False


def vector_engine(settings: Any) -> str | None:
    """Which adapter the settings ask for: "qdrant" (a server URL, or VECTOR_ENGINE=qdrant with a
    path for qdrant-client's local mode), "edge" (a path: Qdrant Edge in process), or None."""
    engine = getattr(settings, "vector_engine", None)
    if settings.qdrant_url:
        return "qdrant"
    if not settings.qdrant_path:
        return None
    return engine or "edge"

