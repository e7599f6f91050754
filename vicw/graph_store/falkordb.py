"""FalkorDB over its own RESP protocol (the `falkordb` client): the embedded default and CI backend.

The client sends parameters in a `CYPHER name=value` header that it quotes and escapes itself,
so user text never reaches the query string.
"""

from __future__ import annotations

from typing import Any

from vicw.graph_store.base import GraphStoreError
from vicw.graph_store.cypher import CypherGraphStore, Outcome

# FalkorDB indexes single attributes; a node is found by the most selective one.
INDEXES: dict[str, tuple[str, ...]] = {
    "Session": ("tenant", "session_id"),
    "Turn": ("tenant", "session_id", "seq"),
    "Entity": ("tenant", "key"),
    "StateItem": ("tenant", "session_id", "key", "status"),
}


class FalkorDBGraphStore(CypherGraphStore):
    backend = "falkordb"

    def __init__(self, db: Any, graph_name: str, *, batch_size: int = 50, ensure_schema: bool = True) -> None:
        super().__init__(batch_size=batch_size)
        self._db = db
        self.graph_name = graph_name
        self._graph = db.select_graph(graph_name)
        if ensure_schema:
            self.ensure_schema()

    @classmethod
    def from_url(cls, url: str, graph_name: str, **kwargs: Any) -> FalkorDBGraphStore:
        from falkordb import FalkorDB

        try:
            db = FalkorDB.from_url(url)
        except Exception as exc:  # the client connects (and probes the server mode) right away
            raise GraphStoreError(f"falkordb unreachable: {exc}") from exc
        return cls(db, graph_name, **kwargs)

    def _run(self, query: str, params: dict[str, Any], *, write: bool) -> Outcome:
        try:
            result = self._graph.query(query, params) if write else self._graph.ro_query(query, params)
        except Exception as exc:  # the client raises redis errors of several kinds
            if not write and _missing_graph(exc):
                return Outcome([], 0, 0)  # nothing written yet: reads see an empty graph
            raise GraphStoreError(f"falkordb query failed: {exc}") from exc
        names = [h[1] for h in result.header] if result.header else []
        rows = [dict(zip(names, row, strict=True)) for row in result.result_set]
        return Outcome(rows, int(result.nodes_deleted or 0), int(result.relationships_deleted or 0))

    def ensure_schema(self) -> None:
        existing = self._existing_indexes()
        for label, props in INDEXES.items():
            missing = [p for p in props if p not in existing.get(label, set())]
            if missing:
                fields = ", ".join(f"n.{p}" for p in missing)
                self._run(f"CREATE INDEX FOR (n:{label}) ON ({fields})", {}, write=True)

    def _existing_indexes(self) -> dict[str, set[str]]:
        try:
            rows = self._run("CALL db.indexes() YIELD label, properties RETURN label, properties", {}, write=False).rows
        except GraphStoreError:  # a graph that does not exist yet has no indexes
            return {}
        return {r["label"]: set(r["properties"]) for r in rows}

    def ping(self) -> None:
        try:
            self._db.connection.ping()
        except Exception as exc:
            raise GraphStoreError(f"falkordb unreachable: {exc}") from exc
        super().ping()

    def drop(self) -> None:
        """Delete the whole graph (all tenants) - for tests and `vicw local reset`."""
        try:
            self._graph.delete()
        except Exception as exc:
            if not _missing_graph(exc):
                raise GraphStoreError(f"falkordb graph delete failed: {exc}") from exc

    def close(self) -> None:
        try:
            self._db.connection.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection is not an error worth raising
            pass


def _missing_graph(exc: Exception) -> bool:
    text = str(exc).lower()
    return "empty key" in text or "invalid graph" in text
