"""A session's long-term memory held in process: texts, vectors and a BM25 index.

Why in process: the keyword step needs every archived turn of the session anyway (BM25 scores a
query against the whole corpus), and once the texts are here the vectors cost little more. Dense
search over a few thousand 384-dim vectors is one matrix product (well under a millisecond), and
it avoids a filtered vector-store query per chat turn; Qdrant's local mode evaluates payload
filters in Python, about a second per call at 10,000 points.

The cache is refreshed when the session's memory can have changed, without asking the vector
store: the window reports how many turns it has shed (`offloaded_turns`) and ingestion bumps a
version counter in Redis. The cold path stores points a little after the shed, so an entry stays
"unsettled" after a change and is re-read with backoff until it holds what the window has shed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from vicw.models import WindowState
from vicw.retrieval.query import tokenize
from vicw.vector_store import MemoryRecord

FIRST_RECHECK_S = 1.0
MAX_RECHECK_S = 30.0


def read_points(store: Any, tenant: str, session_id: str) -> Iterator[tuple[MemoryRecord, list[float] | None]]:
    """(record, vector) for every point of the session and the tenant's shared documents.

    Uses the store's vector-returning scroll when it has one; otherwise records come without
    vectors and the dense step falls back to the store's own search.
    """
    scroll_points = getattr(store, "_scroll_points", None)
    make_filter = getattr(store, "_filter", None)
    if scroll_points is None or make_filter is None:
        for record in store.scroll(tenant, session_id, include_tenant_wide_documents=True):
            yield record, None
        return
    for p in scroll_points(make_filter(tenant, session_id, True), with_vectors=True):
        payload = p.payload or {}
        if payload.get("tenant") != tenant:  # belt and braces: never trust a filter with another tenant's data
            continue
        yield MemoryRecord(id=str(p.id), **payload), list(p.vector) if p.vector is not None else None


@dataclass
class SessionCorpus:
    tenant: str
    session_id: str
    records: list[MemoryRecord]
    vectors: np.ndarray | None  # (n, dim) unit vectors, row i for records[i]
    bm25: Any = None
    by_seq: dict[int, list[int]] = field(default_factory=dict)  # this session's conversation turns -> rows
    timestamps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    token_sets: list[frozenset[str]] = field(default_factory=list)  # each row's BM25 tokens, for exact matches

    @classmethod
    def build(cls, tenant: str, session_id: str, points: list[tuple[MemoryRecord, list[float] | None]]) -> SessionCorpus:
        points.sort(key=lambda p: (p[0].kind, p[0].session_id or "", p[0].job_id if p[0].kind == "document" else "", p[0].seq, p[0].part))
        records = [r for r, _ in points]
        vectors = None
        if records and all(v is not None for _, v in points):
            vectors = np.asarray([v for _, v in points], dtype=np.float32)
        corpus = cls(tenant, session_id, records, vectors)
        for i, r in enumerate(records):
            if r.kind == "conversation" and r.session_id == session_id:
                corpus.by_seq.setdefault(r.seq, []).append(i)
        corpus.timestamps = np.asarray([r.timestamp for r in records], dtype=np.float64)
        tokens = [tokenize(r.text) or ["<empty>"] for r in records]
        corpus.token_sets = [frozenset(t) for t in tokens]
        if records:
            import bm25s

            corpus.bm25 = bm25s.BM25()
            corpus.bm25.index(tokens, show_progress=False)
        corpus.speakers, corpus.token_rows  # noqa: B018 - derive once at load, not on the first query
        return corpus

    @cached_property
    def speakers(self) -> frozenset[str]:
        """Lower-cased speaker names of every row."""
        return frozenset((r.speaker or "").lower() for r in self.records)

    @cached_property
    def token_rows(self) -> dict[str, np.ndarray]:
        """Inverted index: BM25 token -> the rows holding it (ascending)."""
        rows: dict[str, list[int]] = {}
        for i, tokens in enumerate(self.token_sets):
            for tok in tokens:
                rows.setdefault(tok, []).append(i)
        return {tok: np.asarray(ix, dtype=np.int64) for tok, ix in rows.items()}

    def rows_with_any(self, tokens: Iterable[str]) -> np.ndarray:
        """Boolean mask of the rows holding at least one of `tokens`."""
        mask = np.zeros(len(self.records), dtype=bool)
        for tok in tokens:
            ix = self.token_rows.get(tok)
            if ix is not None:
                mask[ix] = True
        return mask

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last_conversation_seq(self) -> int:
        return max(self.by_seq, default=-1)

    def live_mask(self, state: WindowState | None) -> np.ndarray:
        """True for rows that may be returned: not a turn of this session still in the live window."""
        mask = np.ones(len(self.records), dtype=bool)
        if state is not None:
            for t in state.turns:
                for i in self.by_seq.get(t.seq, ()):
                    mask[i] = False
        return mask

    def turn_rows(self, seq: int) -> list[int]:
        return self.by_seq.get(seq, [])


def expected_last_seq(state: WindowState | None) -> int:
    """The last turn the window has shed, which the cold path should eventually store."""
    if state is None or state.offloaded_turns == 0:
        return -1
    live = [t.seq for t in state.turns if not t.pinned]
    return (min(live) if live else state.next_seq) - 1


@dataclass
class _Entry:
    corpus: SessionCorpus
    signal: tuple
    loaded_at: float
    recheck_s: float = FIRST_RECHECK_S
    settled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class CorpusCache:
    """LRU of session corpora with change detection (see the module docstring)."""

    def __init__(self, load: Callable[[str, str], SessionCorpus], max_sessions: int = 64, clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self.max_sessions = max_sessions
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, tenant: str, session_id: str, signal: tuple, expected_seq: int = -1) -> SessionCorpus:
        key = (tenant, session_id)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        now = self._clock()
        if entry is not None and entry.signal == signal and (entry.settled or now - entry.loaded_at < entry.recheck_s):
            return entry.corpus
        if entry is not None and entry.lock.locked():
            return entry.corpus  # another request is refreshing it: answer from what we have
        guard = entry.lock if entry is not None else threading.Lock()
        with guard:
            corpus = self._load(tenant, session_id)
            self.loads += 1
            previous = entry.corpus if entry is not None and entry.signal == signal else None
            caught_up = corpus.last_conversation_seq >= expected_seq
            settled = caught_up and previous is not None and len(previous) == len(corpus)
            recheck = min(MAX_RECHECK_S, entry.recheck_s * 2) if previous is not None else FIRST_RECHECK_S
            fresh = _Entry(corpus, signal, self._clock(), recheck, settled)
        with self._lock:
            self._entries[key] = fresh
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_sessions:
                self._entries.popitem(last=False)
        return corpus

    def forget(self, tenant: str, session_id: str) -> None:
        with self._lock:
            self._entries.pop((tenant, session_id), None)
