"""The knowledge graph: one `GraphStore` interface, a FalkorDB and a Neo4j adapter.

`build_graph_store(settings)` picks the backend from GRAPH_BACKEND; `process_graph_job` is the
cold-path step (extract + write) the graph function runs for each offload job.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from vicw.graph_store.base import DEFAULT_STATUSES, GraphHit, GraphStore, GraphStoreError
from vicw.graph_store.cypher import document_session_id

if TYPE_CHECKING:
    from vicw.config import Settings
    from vicw.extraction import Extractor
    from vicw.models import OffloadJob

__all__ = [
    "DEFAULT_STATUSES",
    "GraphHit",
    "GraphStore",
    "GraphStoreError",
    "build_graph_store",
    "graph_session_id",
    "process_graph_job",
]


def build_graph_store(settings: Settings, *, ensure_schema: bool = True) -> GraphStore | None:
    """The configured graph store, or None when GRAPH_BACKEND=none. Connects lazily where the driver does."""
    backend = settings.graph_backend
    if backend == "none":
        return None
    if backend == "falkordb":
        from vicw.graph_store.falkordb import FalkorDBGraphStore

        return FalkorDBGraphStore.from_url(settings.falkordb_url, settings.graph_name, ensure_schema=ensure_schema)
    if backend == "neo4j":
        from vicw.graph_store.neo4j import Neo4jGraphStore

        if not settings.neo4j_uri:
            raise GraphStoreError("GRAPH_BACKEND=neo4j needs NEO4J_URI")
        password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
        store = Neo4jGraphStore.connect(settings.neo4j_uri, settings.neo4j_user, password, database=settings.neo4j_database)
        if ensure_schema:
            store.ensure_schema()
        return store
    raise GraphStoreError(f"unknown GRAPH_BACKEND {backend!r}")


def graph_session_id(job: OffloadJob) -> str:
    """Where a job's state lives: its session, or one pseudo-session per document."""
    if job.session_id is not None:
        return job.session_id
    return document_session_id(job.metadata.get("document_id") or job.job_id)


def process_graph_job(job: OffloadJob, store: GraphStore, extractor: Extractor | None = None) -> dict[str, Any]:
    """Extract knowledge from one offload job and MERGE it into the graph (safe to replay)."""
    from vicw.extraction import extract

    started = time.perf_counter()
    extraction = (extractor or extract)(job)
    extracted = time.perf_counter()
    store.write(job.tenant, graph_session_id(job), job.job_id, extraction, job.turns)
    return {
        "job_id": job.job_id,
        "turns": len(job.turns),
        "entities": len(extraction.entities),
        "items": len(extraction.items),
        "updates": len(extraction.updates),
        "extract_ms": round((extracted - started) * 1000, 1),
        "write_ms": round((time.perf_counter() - extracted) * 1000, 1),
    }
