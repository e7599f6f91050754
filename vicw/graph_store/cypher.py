"""The backend-independent half of the graph store: everything above "run this Cypher".

An adapter subclasses `CypherGraphStore` and supplies `_run` (execute one parameterised query,
return rows as dicts plus delete counters), `ensure_schema`, `ping` and `close`. Reads, writes,
deletes and backups are written once here against the shared queries in `queries.py`.

Writes are not one transaction (FalkorDB has no multi-statement transactions): each step is an
idempotent MERGE, so a job that fails half-way is simply retried and converges.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from vicw.extraction import Extraction, StateItem, entity_key, load_rules, match_update
from vicw.graph_store import queries as q
from vicw.graph_store.base import DEFAULT_STATUSES, GraphHit, GraphStoreError
from vicw.models import Turn

ALL_STATUSES = ("active", "completed", "invalid")
EXPORT_FORMAT = "vicw-graph"
MAX_UPDATE_CANDIDATES = 500
MAX_QUERY_TERMS = 20


@dataclass
class Outcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    nodes_deleted: int = 0
    relationships_deleted: int = 0


def chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def document_session_id(job_id: str) -> str:
    """The pseudo-session a job without a session (a document part) is filed under."""
    return f"document:{job_id}"


# --- backup format -----------------------------------------------------------------------------
Label = Literal["Session", "Turn", "Entity", "StateItem"]
RelType = Literal["HAS_TURN", "HAS_STATE", "FROM_TURN", "ABOUT", "MENTIONED_IN"]


class ExportNode(BaseModel):
    label: Label
    props: dict[str, Any]

    @model_validator(mode="after")
    def _has_identity(self) -> ExportNode:
        missing = [p for p in q.IDENTITY[self.label] if self.props.get(p) is None]
        if missing:
            raise ValueError(f"{self.label} node lacks identity properties {missing}")
        return self


class ExportEdge(BaseModel):
    type: RelType
    src: dict[str, Any]
    dst: dict[str, Any]
    props: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_identity(self) -> ExportEdge:
        src, dst = q.EDGES[self.type]
        for end, label, ident in (("src", src, self.src), ("dst", dst, self.dst)):
            missing = [p for p in q.IDENTITY[label] if ident.get(p) is None]
            if missing:
                raise ValueError(f"{self.type} edge {end} lacks {label} identity properties {missing}")
        return self


class GraphExport(BaseModel):
    format: Literal["vicw-graph"] = EXPORT_FORMAT
    version: Literal[1] = 1
    tenant: str | None = None
    nodes: list[ExportNode] = Field(default_factory=list)
    edges: list[ExportEdge] = Field(default_factory=list)


# --- the shared store --------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Driver containers (OrderedDict, tuples) as plain JSON-serialisable values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _item(row: dict[str, Any]) -> StateItem:
    data = {k: v for k, v in row.items() if v is not None}
    data["turn_seqs"] = sorted(data.get("turn_seqs") or [])
    return StateItem.model_validate(data)


def _epoch(turn: Turn) -> int:
    return int(turn.timestamp.timestamp())


class CypherGraphStore(ABC):
    backend = "cypher"

    def __init__(self, *, batch_size: int = 50) -> None:
        if not 1 <= batch_size <= 500:
            raise ValueError("batch_size must be between 1 and 500")
        self.batch_size = batch_size

    # -- what an adapter provides -------------------------------------------------------------
    @abstractmethod
    def _run(self, query: str, params: dict[str, Any], *, write: bool) -> Outcome: ...

    @abstractmethod
    def ensure_schema(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def ping(self) -> None:
        rows = self._run(q.PING, {}, write=False).rows
        if not rows or rows[0].get("ok") != 1:
            raise GraphStoreError(f"{self.backend} did not answer the health query")

    # -- writes -------------------------------------------------------------------------------
    def _batched(self, query: str, rows: Sequence[dict[str, Any]], params: dict[str, Any]) -> None:
        for chunk in chunks(rows, self.batch_size):
            self._run(query, {**params, "rows": list(chunk)}, write=True)

    def write(self, tenant: str, session_id: str | None, job_id: str, extraction: Extraction, turns: list[Turn]) -> None:
        _check_tenant(tenant)
        sid = session_id if session_id is not None else document_session_id(job_id)
        base = {"tenant": tenant, "sid": sid}
        turn_ts = {t.seq: _epoch(t) for t in turns}
        stamps = list(turn_ts.values()) + [i.updated_at for i in extraction.items]
        self._run(q.MERGE_SESSION, {**base, "ts": max(stamps, default=0)}, write=True)

        turn_rows = [{"seq": t.seq, "role": t.role, "speaker": t.name, "ts": _epoch(t)} for t in turns]
        self._batched(q.MERGE_TURNS, turn_rows, {**base, "job_id": job_id})

        entity_rows = [
            {
                "key": e.key,
                "name": e.name,
                "type": e.type,
                "turn_seqs": sorted(e.turn_seqs),
                "ts": max((turn_ts.get(s, 0) for s in e.turn_seqs), default=0),
            }
            for e in extraction.entities
        ]
        self._batched(q.MERGE_ENTITIES, entity_rows, base)

        item_rows = [
            i.model_dump(include={"key", "kind", "status", "text", "subject", "turn_seqs", "entity_keys",
                                  "dates", "amounts", "status_seq", "updated_at"})
            for i in extraction.items
        ]
        self._batched(q.MERGE_ITEMS, item_rows, base)
        links = [{"key": i.key, "seq": s} for i in extraction.items for s in i.turn_seqs if s in turn_ts]
        about = [{"key": i.key, "entity": k} for i in extraction.items for k in i.entity_keys]

        if extraction.updates:
            candidates = self._items(tenant, sid, ALL_STATUSES, MAX_UPDATE_CANDIDATES)
            status_rows = []
            for upd in extraction.updates:
                target = match_update(upd, candidates)
                if target is not None:
                    status_rows.append({"key": target.key, "status": upd.status, "seq": upd.seq, "updated_at": upd.updated_at})
                    links.append({"key": target.key, "seq": upd.seq})
            self._batched(q.APPLY_STATUS, status_rows, base)

        self._batched(q.LINK_ITEM_TURNS, links, base)
        self._batched(q.LINK_ITEM_ENTITIES, about, base)

    # -- reads --------------------------------------------------------------------------------
    def _items(self, tenant: str, session_id: str, statuses: Iterable[str], limit: int) -> list[StateItem]:
        params = {"tenant": tenant, "sid": session_id, "statuses": list(statuses), "limit": int(limit)}
        return [_item(r) for r in self._run(q.STATE_ITEMS, params, write=False).rows]

    def state_items(
        self, tenant: str, session_id: str, statuses: Sequence[str] = DEFAULT_STATUSES, limit: int = 50
    ) -> list[StateItem]:
        _check_tenant(tenant)
        unknown = set(statuses) - set(ALL_STATUSES)
        if unknown:
            raise ValueError(f"unknown statuses {sorted(unknown)}")
        return self._items(tenant, session_id, statuses, max(0, limit))

    def related(self, tenant: str, session_id: str | None, terms: list[str], limit: int = 10) -> list[GraphHit]:
        _check_tenant(tenant)
        words = _query_terms(terms)
        if not words or limit <= 0:
            return []
        params = {"tenant": tenant, "sid": session_id, "terms": words, "cap": limit * 20}
        hits: dict[str, GraphHit] = {}
        for row in self._run(q.RELATED_ENTITIES, params, write=False).rows:
            hit = hits.get(row["key"])
            if hit is None:
                matched = sum(1 for w in words if _whole_word(w, row["key"]))
                hit = hits[row["key"]] = GraphHit(entity_key=row["key"], name=row["name"], type=row["type"], score=matched)
            hit.mentions[row["session_id"]] = sorted(set(row["turn_seqs"] or []))
        for hit in hits.values():  # more mentions, slightly more relevant; never outweighs a matched term
            hit.score = round(hit.score + min(len(hit.turn_seqs), 20) / 100, 3)
        best = sorted(hits.values(), key=lambda h: (-h.score, h.entity_key))[:limit]
        if best:
            params = {"tenant": tenant, "sid": session_id, "keys": [h.entity_key for h in best], "cap": limit * 20}
            by_key = {h.entity_key: h for h in best}
            for row in self._run(q.RELATED_ITEMS, params, write=False).rows:
                key = row.pop("entity_key")
                by_key[key].items.append(_item(row))
        for hit in best:
            hit.items.sort(key=lambda i: (-i.updated_at, i.key))
        return best

    def counts(self, tenant: str | None = None) -> dict[str, int]:
        params = {"tenant": tenant}
        nodes = sum(self._scalar(q.count_nodes(label), params) for label in q.IDENTITY)
        edges = sum(self._scalar(q.count_edges(rel), params) for rel in q.EDGES)
        return {"nodes": nodes, "edges": edges}

    def _scalar(self, query: str, params: dict[str, Any]) -> int:
        rows = self._run(query, params, write=False).rows
        return int(next(iter(rows[0].values()))) if rows else 0

    # -- deletes ------------------------------------------------------------------------------
    def _delete_all(self, query: str, params: dict[str, Any], totals: dict[str, int]) -> None:
        while True:
            out = self._run(query, {**params, "batch": self.batch_size}, write=True)
            deleted = int(out.rows[0]["deleted"]) if out.rows else 0
            totals["nodes"] += deleted
            totals["edges"] += out.relationships_deleted
            if deleted < self.batch_size:
                return

    def delete_session(self, tenant: str, session_id: str) -> dict[str, int]:
        _check_tenant(tenant)
        params = {"tenant": tenant, "sid": session_id}
        keys = [r["key"] for r in self._run(q.SESSION_ENTITY_KEYS, params, write=False).rows]
        totals = {"nodes": 0, "edges": 0}
        for label in q.SESSION_LABELS:
            self._delete_all(q.delete_batch(label, session=True), params, totals)
        for chunk in chunks(keys, self.batch_size):
            out = self._run(q.DELETE_ORPHAN_ENTITIES, {"tenant": tenant, "keys": list(chunk)}, write=True)
            totals["nodes"] += int(out.rows[0]["deleted"]) if out.rows else 0
            totals["edges"] += out.relationships_deleted
        return totals

    def delete_tenant(self, tenant: str) -> dict[str, int]:
        _check_tenant(tenant)
        totals = {"nodes": 0, "edges": 0}
        for label in (*q.SESSION_LABELS, "Entity"):
            self._delete_all(q.delete_batch(label, session=False), {"tenant": tenant}, totals)
        return totals

    # -- backups ------------------------------------------------------------------------------
    def export(self, tenant: str | None = None) -> dict:
        params = {"tenant": tenant}
        nodes = [
            {"label": label, "props": _plain(row["props"])}
            for label in q.IDENTITY
            for row in self._run(q.export_nodes(label), params, write=False).rows
        ]
        edges = []
        for rel, (src, dst) in q.EDGES.items():
            for row in self._run(q.export_edges(rel), params, write=False).rows:
                edges.append(
                    {
                        "type": rel,
                        "src": {p: row[f"a_{p}"] for p in q.IDENTITY[src]},
                        "dst": {p: row[f"b_{p}"] for p in q.IDENTITY[dst]},
                        "props": _plain(row["props"] or {}),
                    }
                )
        return {"format": EXPORT_FORMAT, "version": 1, "tenant": tenant, "nodes": nodes, "edges": edges}

    def import_(self, data: dict) -> None:
        backup = GraphExport.model_validate(data)
        for label in q.IDENTITY:
            rows = [
                {"id": {p: n.props[p] for p in q.IDENTITY[label]}, "props": n.props}
                for n in backup.nodes
                if n.label == label
            ]
            self._batched(q.import_nodes(label), rows, {})
        for rel in q.EDGES:
            rows = [{"src": e.src, "dst": e.dst, "props": e.props} for e in backup.edges if e.type == rel]
            self._batched(q.import_edges(rel), rows, {})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str) or not tenant:
        raise ValueError("tenant must be a non-empty string")


def _whole_word(term: str, key: str) -> bool:
    return key == term or key.startswith(term + " ") or key.endswith(" " + term) or f" {term} " in key


def _query_terms(terms: Iterable[str]) -> list[str]:
    """Query words as entity keys, without stop words and one-letter noise."""
    rules = load_rules()
    skip = rules.c("stop") | rules.c("common")
    out: list[str] = []
    for term in terms:
        key = entity_key(term)
        if len(key) >= 2 and key not in skip and key not in out:
            out.append(key)
    return out[:MAX_QUERY_TERMS]
