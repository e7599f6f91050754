"""Long-term memory vectors: one small interface, one adapter (Qdrant).

What is stored: one point per offloaded turn, because a question matches a turn ("what did Bob say
about the invoice?"), not a whole job. A turn too long for the embedding model is split on token
boundaries into parts that share its turn_id. Point ids are deterministic (uuid5 of tenant, session
and turn position), so a job delivered twice, or replayed from the archive, overwrites the same
points instead of duplicating them.

Every read is filtered by tenant: there is no method that can return another tenant's memories.
The collection is created on first use and never dropped or recreated by this code; a collection
whose vector size does not match the model is an operator error and is reported as such.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from vicw.models import OffloadJob, Turn
from vicw.tokens import TokenCounter

POINT_NAMESPACE = uuid.UUID("0b7d2f0e-94c1-4a43-8f0c-3c2b1d9a6e55")
# all-MiniLM-L6-v2 truncates at 256 word pieces; 200 tiktoken tokens stay safely below that.
MAX_CHUNK_TOKENS = 200
_SCROLL_PAGE = 256
_UPSERT_BATCH = 256


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


@runtime_checkable
class VectorStore(Protocol):
    dim: int

    def chunks(self, job: OffloadJob) -> list[Chunk]: ...

    def upsert_job(self, job: OffloadJob, vectors: Sequence[Sequence[float]], chunks: list[Chunk] | None = None) -> int: ...

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


class QdrantVectorStore:
    """Qdrant server (QDRANT_URL + QDRANT_API_KEY) in production; local mode (QDRANT_PATH or
    ":memory:") for development and tests. Local mode locks its folder: one process per path."""

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

    # --- collection ---------------------------------------------------------------------
    def _check_existing(self) -> None:
        from qdrant_client import models

        info = self.client.get_collection(self.collection)
        params = info.config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise VectorStoreError(
                f"Qdrant collection {self.collection!r} uses named vectors; VICW expects one unnamed "
                f"{self.dim}-dim cosine vector. Point QDRANT_COLLECTION at another collection."
            )
        if params.size != self.dim:
            raise VectorStoreError(
                f"Qdrant collection {self.collection!r} holds {params.size}-dim vectors but the embedding "
                f"model makes {self.dim}-dim ones (EMBEDDING_DIM). It will not be dropped automatically: "
                "use another QDRANT_COLLECTION, or migrate it (export, re-embed, import)."
            )
        if params.distance != models.Distance.COSINE:
            raise VectorStoreError(f"Qdrant collection {self.collection!r} uses {params.distance} distance; VICW needs Cosine")

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
                        vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.COSINE),
                    )
                except Exception:
                    # Another worker may have created it in between; anything else re-raises below.
                    if not self.client.collection_exists(self.collection):
                        raise
            self._check_existing()
            if not self.local:  # local mode ignores payload indexes (and warns about them)
                indexes = {
                    "tenant": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
                    "session_id": models.PayloadSchemaType.KEYWORD,
                    "kind": models.PayloadSchemaType.KEYWORD,
                    "job_id": models.PayloadSchemaType.KEYWORD,
                    "timestamp": models.PayloadSchemaType.FLOAT,
                }
                for name, schema in indexes.items():
                    self.client.create_payload_index(self.collection, field_name=name, field_schema=schema)
            self._ready = True

    # --- filters ------------------------------------------------------------------------
    @staticmethod
    def _filter(tenant: str | None, session_id: str | None = None, include_tenant_wide_documents: bool = False) -> Any:
        from qdrant_client import models

        must: list[Any] = []
        if tenant is not None:
            must.append(models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant)))
        if session_id is not None:
            in_session = models.FieldCondition(key="session_id", match=models.MatchValue(value=session_id))
            if include_tenant_wide_documents:
                tenant_docs = models.Filter(
                    must=[
                        models.FieldCondition(key="kind", match=models.MatchValue(value="document")),
                        models.IsNullCondition(is_null=models.PayloadField(key="session_id")),
                    ]
                )
                must.append(models.Filter(should=[in_session, tenant_docs]))
            else:
                must.append(in_session)
        return models.Filter(must=must) if must else None

    # --- writes ---------------------------------------------------------------------------
    def chunks(self, job: OffloadJob) -> list[Chunk]:
        """How this store splits a job into points (what the caller must embed, in order)."""
        return chunk_job(job, encoding=self.encoding)

    def upsert_job(self, job: OffloadJob, vectors: Sequence[Sequence[float]], chunks: list[Chunk] | None = None) -> int:
        from qdrant_client import models

        chunks = self.chunks(job) if chunks is None else chunks
        if len(chunks) != len(vectors):
            raise ValueError(f"job {job.job_id}: {len(chunks)} chunks but {len(vectors)} vectors")
        if not chunks:
            return 0
        bad = [len(v) for v in vectors if len(v) != self.dim]
        if bad:
            raise VectorStoreError(f"vector of size {bad[0]} for a {self.dim}-dim collection")
        self._ensure()
        points = [models.PointStruct(id=c.id, vector=list(v), payload=c.payload) for c, v in zip(chunks, vectors, strict=True)]
        with self._lock:
            self.client.upsert(self.collection, points=points, wait=True)
        return len(points)

    def import_(self, points: Iterable[dict[str, Any]]) -> int:
        """Restore points written by `export` (ids, vectors and payloads unchanged)."""
        from qdrant_client import models

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
            if len(p["vector"]) != self.dim:
                raise VectorStoreError(f"point {p['id']} has a {len(p['vector'])}-dim vector; the collection needs {self.dim}")
            if not p.get("payload", {}).get("tenant"):
                raise VectorStoreError(f"point {p['id']} has no tenant in its payload")
            batch.append(models.PointStruct(id=p["id"], vector=p["vector"], payload=p["payload"]))
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

    def delete_session(self, tenant: str, session_id: str) -> int:
        return self._delete(self._filter(tenant, session_id))

    def delete_tenant(self, tenant: str) -> int:
        if not tenant:
            raise ValueError("tenant is required")
        return self._delete(self._filter(tenant))

    # --- reads --------------------------------------------------------------------------
    def search(
        self,
        tenant: str,
        query_vector: Sequence[float],
        session_id: str | None = None,
        limit: int = 8,
        score_threshold: float | None = None,
        include_tenant_wide_documents: bool = True,
    ) -> list[VectorHit]:
        if not tenant:
            raise ValueError("tenant is required: searches are always scoped to one tenant")
        if limit <= 0:
            return []
        self._ensure()
        with self._lock:
            result = self.client.query_points(
                self.collection,
                query=list(query_vector),
                query_filter=self._filter(tenant, session_id, include_tenant_wide_documents),
                limit=limit,
                score_threshold=score_threshold,
                with_payload=True,
            )
        return [VectorHit(id=str(p.id), score=p.score, **(p.payload or {})) for p in result.points]

    def _scroll_points(self, flt: Any, with_vectors: bool) -> Iterator[Any]:
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

    def scroll(self, tenant: str, session_id: str | None = None, include_tenant_wide_documents: bool = True) -> Iterator[MemoryRecord]:
        if not tenant:
            raise ValueError("tenant is required")
        for p in self._scroll_points(self._filter(tenant, session_id, include_tenant_wide_documents), with_vectors=False):
            yield MemoryRecord(id=str(p.id), **(p.payload or {}))

    def export(self, tenant: str | None = None) -> Iterator[dict[str, Any]]:
        for p in self._scroll_points(self._filter(tenant), with_vectors=True):
            yield {"id": str(p.id), "vector": list(p.vector), "payload": p.payload}

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


def build_vector_store(settings: Any) -> QdrantVectorStore | None:
    """The configured store, or None when neither QDRANT_URL nor QDRANT_PATH is set."""
    if not (settings.qdrant_url or settings.qdrant_path):
        return None
    return QdrantVectorStore(settings)
