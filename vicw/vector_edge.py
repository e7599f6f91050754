"""`EdgeVectorStore`: the `VectorStore` port on Qdrant Edge, the Qdrant engine inside this process.

The default for `vicw local`, the tests and CI: the same schema and query plan as the server
adapter (named `dense` + sparse `bm25` vectors, keyword/integer/float payload indexes, prefetch +
fusion in the engine), with the engine's own filtering and indexes instead of qdrant-client's
Python local mode. One process owns a shard folder (the engine locks its write-ahead log): that is
`vicw local`'s shape, one machine, one process. Many Lambdas share a Qdrant server instead.

Layout: the shard lives in `<QDRANT_PATH>/edge-<collection>`, next to (never inside) a folder that
qdrant-client's local mode may have written before; see docs/migration.md.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vicw.models import OffloadJob
from vicw.observability import logger
from vicw.vector_store import (
    _SCROLL_PAGE,
    _UPSERT_BATCH,
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    Chunk,
    FilterDialect,
    MemoryQuery,
    QdrantSchemaStore,
    VectorHit,
    VectorStoreError,
    _require_tenant,
    bm25_document,
    bm25_query,
    check_import_point,
    hit_from,
)


def _edge_dialect() -> FilterDialect:
    import qdrant_edge as e

    def flt(must: Any = None, should: Any = None, must_not: Any = None) -> Any:
        return e.Filter(must=must, should=should, must_not=must_not)

    return FilterDialect(
        match=lambda k, v: e.FieldCondition(key=k, match=e.MatchValue(v)),
        match_any=lambda k, vs: e.FieldCondition(key=k, match=e.MatchAny(vs)),
        is_null=lambda k: e.IsNullCondition(k),
        range=lambda k, gte, lt: e.FieldCondition(key=k, range=e.RangeFloat(gte=gte, lt=lt)),
        filter=flt,
    )


def _unique(hits: Iterable[VectorHit]) -> list[VectorHit]:
    """Hits in order, each point once (a search running while a write lands can meet a point twice)."""
    seen: set[str] = set()
    unique = []
    for h in hits:
        if h.id not in seen:
            seen.add(h.id)
            unique.append(h)
    return unique


def shard_path(path: str | Path, collection: str) -> Path:
    return Path(path) / f"edge-{collection}"


class EdgeVectorStore(QdrantSchemaStore):
    """Qdrant Edge shard at `<path>/edge-<collection>`; with no path, a temporary one (tests)."""

    def __init__(
        self,
        settings: Any | None = None,
        *,
        path: str | None = None,
        collection: str | None = None,
        dim: int | None = None,
        encoding: str | None = None,
    ) -> None:
        if settings is not None:
            path = path or settings.qdrant_path
            collection = collection or settings.qdrant_collection
            dim = dim or settings.embedding_dim
            encoding = encoding or settings.token_encoding
        self.collection = collection or "vicw_memories"
        self.dim = dim or 384
        self.encoding = encoding or "cl100k_base"
        self._temporary = path is None
        base = Path(tempfile.mkdtemp(prefix="vicw-edge-")) if path is None else Path(path)
        self.path = shard_path(base, self.collection)
        self.local = True
        self._shard: Any = None
        self._lock = threading.RLock()  # one writer at a time; reads go straight to the engine
        self._d = _edge_dialect()

    # --- the shard ----------------------------------------------------------------------
    def _config(self) -> Any:
        import qdrant_edge as e

        return e.EdgeConfig(
            vectors={DENSE: e.EdgeVectorParams(size=self.dim, distance=e.Distance.Cosine)},
            sparse_vectors={SPARSE: e.EdgeSparseVectorParams(modifier=e.Modifier.Idf)},
        )

    def _open(self) -> Any:
        shard = self._shard
        if shard is not None:
            return shard
        try:
            import qdrant_edge as e
        except ImportError as exc:
            raise VectorStoreError("QDRANT_PATH uses the embedded engine, Qdrant Edge: install it with "
                                   "`pip install 'vicw[local]'` (qdrant-edge-py), or set QDRANT_URL to a Qdrant server") from exc

        with self._lock:
            if self._shard is not None:
                return self._shard
            if self.path.exists() and any(self.path.iterdir()):
                try:
                    shard = e.EdgeShard.load(str(self.path), self._config())
                except Exception as exc:
                    raise VectorStoreError(
                        f"cannot open the Qdrant Edge shard for collection {self.collection!r}: {exc}. Another process may "
                        "hold it (one process per QDRANT_PATH), or it was made with another EMBEDDING_DIM."
                    ) from exc
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                shard = e.EdgeShard.create(str(self.path), self._config())
                legacy = self.path.parent / "meta.json"
                if legacy.exists():
                    logger.warning("QDRANT_PATH holds a qdrant-client local-mode folder from an older VICW; it is not read. "
                                   "Rebuild the vectors with `vicw replay archive --target vectors` or restore a backup "
                                   "(docs/migration.md)")
            have = set(shard.info().payload_schema)
            for name, kind in INDEXED_FIELDS.items():
                if name not in have:
                    shard.update(e.UpdateOperation.create_field_index(name, self._index_schema(kind)))
            self._shard = shard
            return shard

    @staticmethod
    def _index_schema(kind: str) -> Any:
        import qdrant_edge as e

        if kind == "tenant":
            return e.KeywordIndexParams(is_tenant=True)
        return {"keyword": e.PayloadSchemaType.Keyword, "integer": e.PayloadSchemaType.Integer,
                "float": e.PayloadSchemaType.Float}[kind]

    def _point(self, pid: str, dense: Sequence[float], payload: dict[str, Any]) -> Any:
        import qdrant_edge as e

        indices, values = bm25_document(payload)
        return e.Point(pid, {DENSE: [float(x) for x in dense], SPARSE: e.SparseVector(indices, values)}, payload)

    def _upsert(self, points: list[Any]) -> None:
        import qdrant_edge as e

        shard = self._open()
        with self._lock:
            shard.update(e.UpdateOperation.upsert_points(points))

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
        self._upsert([self._point(c.id, v, c.payload) for c, v in zip(chunks, vectors, strict=True)])
        return len(chunks)

    def upsert_points(self, points: Iterable[tuple[str, Sequence[float], dict[str, Any]]]) -> int:
        """(id, dense vector, payload) triples written as they are: bulk loads and benchmarks."""
        total = 0
        batch: list[Any] = []
        for pid, dense, payload in points:
            batch.append(self._point(pid, dense, payload))
            if len(batch) >= 1024:
                self._upsert(batch)
                total, batch = total + len(batch), []
        if batch:
            self._upsert(batch)
            total += len(batch)
        return total

    def import_(self, points: Iterable[dict[str, Any]]) -> int:
        """Restore points written by `export` (the sparse vector is recomputed from the payload)."""
        self._open()
        total = 0
        batch: list[Any] = []
        for p in points:
            batch.append(self._point(p["id"], check_import_point(p, self.dim), p["payload"]))
            if len(batch) >= _UPSERT_BATCH:
                self._upsert(batch)
                total, batch = total + len(batch), []
        if batch:
            self._upsert(batch)
            total += len(batch)
        self.optimize()
        return total

    def _delete(self, flt: Any) -> int:
        import qdrant_edge as e

        shard = self._open()
        with self._lock:
            n = shard.count(e.CountRequest(filter=flt, exact=True))
            if n:
                shard.update(e.UpdateOperation.delete_points_by_filter(flt))
        return n

    def optimize(self) -> None:
        """Build the engine's indexes for what was appended (after bulk loads)."""
        shard = self._open()
        with self._lock:
            shard.optimize()

    # --- reads --------------------------------------------------------------------------
    def _request(self, q: MemoryQuery) -> Any:
        import qdrant_edge as e

        _require_tenant(q.tenant)
        if q.limit <= 0:
            return None
        flt = self._filter(q.tenant, q.session_id, q.include_tenant_wide_documents, time_range=q.time_range, exclude_seqs=q.exclude_seqs,
                           speaker=q.speaker)
        sparse = None
        if q.text:
            indices, values = bm25_query(q.text)
            sparse = e.SparseVector(indices, values) if indices else None
        dense = [float(x) for x in q.dense] if q.dense is not None else None
        if dense is not None and sparse is not None:
            return e.QueryRequest(
                limit=q.limit,
                prefetches=[
                    e.Prefetch(
                        limit=q.prefetch_limit, query=e.Query.Nearest(dense, using=DENSE), filter=flt, score_threshold=q.dense_threshold
                    ),
                    e.Prefetch(limit=q.prefetch_limit, query=e.Query.Nearest(sparse, using=SPARSE), filter=flt),
                ],
                query=e.Fusion.Dbsf() if q.fusion == "dbsf" else e.Fusion.Rrf(k=60),
                filter=flt,
                with_payload=True,
            )
        if dense is not None:
            return e.QueryRequest(
                limit=q.limit, query=e.Query.Nearest(dense, using=DENSE), filter=flt, score_threshold=q.dense_threshold, with_payload=True
            )
        if sparse is not None:
            return e.QueryRequest(limit=q.limit, query=e.Query.Nearest(sparse, using=SPARSE), filter=flt, with_payload=True)
        return None

    def query(self, queries: Sequence[MemoryQuery]) -> list[list[VectorHit]]:
        import qdrant_edge as e

        requests = [self._request(q) for q in queries]
        live = [r for r in requests if r is not None]
        if not live:
            return [[] for _ in queries]
        shard = self._open()
        results = iter(shard.query_batch(e.QueryBatchRequest(live)) if len(live) > 1 else [shard.query(live[0])])
        return [[] if r is None else _unique(hit_from(p.id, p.score, p.payload) for p in next(results)) for r in requests]

    def search(
        self,
        tenant: str,
        query_vector: Sequence[float],
        session_id: str | None = None,
        limit: int = 8,
        score_threshold: float | None = None,
        include_tenant_wide_documents: bool = True,
    ) -> list[VectorHit]:
        _require_tenant(tenant)
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
        import qdrant_edge as e

        shard = self._open()
        offset = None
        while True:
            points, offset = shard.scroll(
                e.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, filter=flt, with_payload=True, with_vector=with_vectors)
            )
            yield from points
            if offset is None:
                return

    def count(self, tenant: str | None = None, session_id: str | None = None) -> int:
        import qdrant_edge as e

        if session_id is not None and tenant is None:
            raise ValueError("a session is only meaningful within a tenant")
        shard = self._open()
        with self._lock:  # a count taken while a write lands can see a point twice
            return shard.count(e.CountRequest(filter=self._filter(tenant, session_id), exact=True))

    def ping(self) -> bool:
        try:
            self._open().info()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable" for a health check
            return False

    def close(self) -> None:
        with self._lock:
            shard, self._shard = self._shard, None
            if shard is not None:
                shard.flush()
                shard.close()
            if self._temporary:
                shutil.rmtree(self.path.parent, ignore_errors=True)
