"""Per-session window state in Redis, updated atomically, with a durable outbox for offload jobs.

Every change is read-compute-write under WATCH/MULTI: if another request changed the session in
between, the transaction is retried with the fresh state, so concurrent requests on one session can
neither lose nor duplicate a turn. Offload jobs are written to the outbox *in the same transaction*
as the window change, so a job exists durably before its turns leave the window; the publisher
removes it from the outbox only once the queue has accepted it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import redis

from vicw.models import OffloadJob, WindowState

T = TypeVar("T")
OUTBOX = "vicw:outbox"  # hash job_id -> job JSON
OUTBOX_SINCE = "vicw:outbox:since"  # zset job_id -> epoch seconds when written


class ConflictRetriesExhausted(RuntimeError):
    pass


def session_prefix(tenant: str, session_id: str) -> str:
    # Braces keep a session's keys in one Redis Cluster slot (tenant and session are both in it).
    return f"vicw:t:{tenant}:s:{{{session_id}}}"


class WindowStore:
    def __init__(self, client: redis.Redis, max_retries: int = 200) -> None:
        self.r = client
        self.max_retries = max_retries

    @classmethod
    def from_url(cls, url: str) -> WindowStore:
        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30))

    def _key(self, tenant: str, session_id: str) -> str:
        return session_prefix(tenant, session_id) + ":window"

    def load(self, tenant: str, session_id: str) -> WindowState | None:
        raw = self.r.get(self._key(tenant, session_id))
        return WindowState.model_validate_json(raw) if raw else None

    def update(
        self,
        tenant: str,
        session_id: str,
        change: Callable[[WindowState | None], tuple[WindowState, list[OffloadJob], T]],
    ) -> tuple[WindowState, list[OffloadJob], T]:
        """Apply `change` atomically. `change` must be pure: it may run more than once."""
        key = self._key(tenant, session_id)
        for attempt in range(self.max_retries):
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    current = WindowState.model_validate_json(raw) if raw else None
                    state, jobs, extra = change(current)
                    pipe.multi()
                    pipe.set(key, state.model_dump_json())
                    now = time.time()
                    for job in jobs:
                        pipe.hset(OUTBOX, job.job_id, job.model_dump_json())
                        pipe.zadd(OUTBOX_SINCE, {job.job_id: now})
                    pipe.execute()
                    return state, jobs, extra
                except redis.WatchError:
                    time.sleep(min(0.001 * attempt, 0.02))
                    continue
        raise ConflictRetriesExhausted(f"session {session_id} is too busy; try again")

    def delete(self, tenant: str, session_id: str) -> int:
        keys = list(self.r.scan_iter(match=session_prefix(tenant, session_id) + ":*", count=500))
        return self.r.delete(*keys) if keys else 0

    def delete_transient(self, tenant: str, session_id: str) -> int:
        """Delete a session's keys except its window and its documents' version (what reset keeps)."""
        prefix = session_prefix(tenant, session_id)
        kept = {f"{prefix}:window".encode(), f"{prefix}:documents:version".encode()}
        keys = [k for k in self.r.scan_iter(match=prefix + ":*", count=500) if k not in kept]
        return self.r.delete(*keys) if keys else 0

    def advance_seq(self, tenant: str, session_id: str, at_least: int) -> int:
        """Raise a session's turn counter to at least `at_least` (creating an empty window if none).

        Restores and archive replays call this with the highest seq they brought back plus one, so
        the next turn never takes an id that long-term memory already holds. Returns the counter.
        """
        from vicw.window import advance_seq

        state, _, _ = self.update(tenant, session_id, lambda cur: (advance_seq(cur, tenant, session_id, at_least), [], None))
        return state.next_seq

    def sessions(self, tenant: str | None = None) -> Iterator[tuple[str, str]]:
        pattern = f"vicw:t:{tenant}:s:*:window" if tenant else "vicw:t:*:s:*:window"
        for key in self.r.scan_iter(match=pattern, count=500):
            _, _, t, _, rest = key.decode().split(":", 4)
            yield t, rest.rsplit(":", 1)[0].strip("{}")

    # --- outbox ------------------------------------------------------------------------------
    def outbox_done(self, job_id: str) -> None:
        with self.r.pipeline() as pipe:
            pipe.hdel(OUTBOX, job_id)
            pipe.zrem(OUTBOX_SINCE, job_id)
            pipe.execute()

    def outbox_pending(self, older_than: float = 0.0, limit: int = 100) -> list[OffloadJob]:
        ids = self.r.zrangebyscore(OUTBOX_SINCE, "-inf", time.time() - older_than, start=0, num=limit)
        if not ids:
            return []
        raws = self.r.hmget(OUTBOX, ids)
        return [OffloadJob.model_validate_json(raw) for raw in raws if raw]

    def outbox_size(self) -> int:
        return int(self.r.hlen(OUTBOX))

    def ping(self) -> None:
        self.r.ping()
