"""Per-session window state in Redis, updated atomically, with a durable outbox for offload jobs.

Every change is read-compute-write under WATCH/MULTI: if another request changed the session in
between, the transaction is retried with the fresh state, so concurrent requests on one session can
neither lose nor duplicate a turn. Offload jobs are written to the outbox *in the same transaction*
as the window change, so a job exists durably before its turns leave the window.

A job leaves the outbox only when every consumer it was sent to (offload and graph behind the SNS
topic, offload alone when jobs go straight to its queue) has confirmed it. Its life:

    unsent      OUTBOX_SINCE, scored by when it was written; re-sent after OUTBOX_RESEND_AFTER_SECONDS
    sent        OUTBOX_SENT, scored by when it is due again if nobody confirms it meanwhile
                (OUTBOX_CONFIRM_AFTER_SECONDS, doubling with each send up to 64x)
    confirmed   by all expected consumers: removed (job, both sets, its OUTBOX_ACKS fields)

OUTBOX_ACKS holds, per job, `{job}|expect` (consumer names), `{job}|sends` and one `{job}|{consumer}`
field per confirmation. The transitions are Lua scripts, so a confirmation racing a send can
never leave a half-removed job behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import redis

from vicw.errors import VicwError
from vicw.models import OffloadJob, WindowState

T = TypeVar("T")
OUTBOX = "vicw:outbox"  # hash job_id -> job JSON
OUTBOX_SINCE = "vicw:outbox:since"  # zset job_id -> epoch seconds when written (not sent yet)
OUTBOX_SENT = "vicw:outbox:sent"  # zset job_id -> epoch seconds when to re-send it if still unconfirmed
OUTBOX_ACKS = "vicw:outbox:acks"  # hash "{job_id}|expect" / "|sends" / "|{consumer}"
OUTBOX_KEYS = [OUTBOX, OUTBOX_SINCE, OUTBOX_SENT, OUTBOX_ACKS]
MAX_BACKOFF_DOUBLINGS = 6

# KEYS = OUTBOX_KEYS. Each returns -1 when the job is no longer in the outbox.
_PREPARE_SEND = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('HSET', KEYS[4], ARGV[1] .. '|expect', ARGV[2])
return 1
"""
_MARK_SENT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local sends = redis.call('HINCRBY', KEYS[4], ARGV[1] .. '|sends', 1)
local doublings = math.min(sends - 1, tonumber(ARGV[4]))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + tonumber(ARGV[3]) * (2 ^ doublings), ARGV[1])
return sends
"""
_REMOVE = """
local expect = redis.call('HGET', KEYS[4], ARGV[1] .. '|expect')
if expect then
  for name in string.gmatch(expect, '[^,]+') do redis.call('HDEL', KEYS[4], ARGV[1] .. '|' .. name) end
end
redis.call('HDEL', KEYS[4], ARGV[1] .. '|expect', ARGV[1] .. '|sends')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
"""
_CONFIRM = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('HSET', KEYS[4], ARGV[1] .. '|' .. ARGV[2], 1)
local expect = redis.call('HGET', KEYS[4], ARGV[1] .. '|expect')
if not expect then return 0 end
for name in string.gmatch(expect, '[^,]+') do
  if redis.call('HEXISTS', KEYS[4], ARGV[1] .. '|' .. name) == 0 then return 0 end
end
""" + _REMOVE.replace("return redis.call('HDEL', KEYS[1], ARGV[1])", "redis.call('HDEL', KEYS[1], ARGV[1])\nreturn 1")


class ConflictRetriesExhausted(VicwError, RuntimeError):
    """Too many concurrent writers on one session: the client should retry shortly."""

    status = 503
    kind = "service_unavailable"
    retry_after = 1


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
    def _script(self, name: str, body: str):  # noqa: ANN202 - a redis-py Script
        scripts = self.__dict__.setdefault("_scripts", {})
        if name not in scripts:
            scripts[name] = self.r.register_script(body)
        return scripts[name]

    def outbox_done(self, job_id: str) -> int:
        """Remove a job from the outbox whatever its state (it needs no further delivery). 1 if it was there."""
        return int(self._script("remove", _REMOVE)(keys=OUTBOX_KEYS, args=[job_id]))

    def outbox_prepare_send(self, job_ids: list[str], consumers: tuple[str, ...]) -> None:
        """Record which consumers must confirm these jobs, before they are sent."""
        script = self._script("prepare", _PREPARE_SEND)
        with self.r.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                script(keys=OUTBOX_KEYS, args=[job_id, ",".join(consumers)], client=pipe)
            pipe.execute()

    def outbox_mark_sent(self, job_id: str, confirm_after: float, now: float | None = None) -> int:
        """The queue accepted the job: wait for confirmations. Returns how often it was sent (-1: gone)."""
        now = time.time() if now is None else now
        return int(self._script("sent", _MARK_SENT)(keys=OUTBOX_KEYS, args=[job_id, now, confirm_after, MAX_BACKOFF_DOUBLINGS]))

    def outbox_confirm(self, job_id: str, consumer: str) -> int:
        """`consumer` finished the job. 1: it was the last one, the job left the outbox; 0: others
        have not confirmed yet; -1: the job is not in the outbox (confirmed already, or never there)."""
        return int(self._script("confirm", _CONFIRM)(keys=OUTBOX_KEYS, args=[job_id, consumer]))

    def outbox_unconfirmed_ids(self) -> list[bytes]:
        return list(self.r.zrange(OUTBOX_SENT, 0, -1))

    def outbox_jobs(self, ids: list[bytes]) -> list[OffloadJob]:
        return self._jobs(ids)

    def _jobs(self, ids: list[bytes]) -> list[OffloadJob]:
        if not ids:
            return []
        raws = self.r.hmget(OUTBOX, ids)
        return [OffloadJob.model_validate_json(raw) for raw in raws if raw]

    def outbox_pending(self, older_than: float = 0.0, limit: int = 100) -> list[OffloadJob]:
        """Jobs not sent yet, written at least `older_than` seconds ago."""
        return self._jobs(self.r.zrangebyscore(OUTBOX_SINCE, "-inf", time.time() - older_than, start=0, num=limit))

    def outbox_unconfirmed(self, limit: int = 100) -> list[OffloadJob]:
        """Jobs sent but not confirmed by every consumer, due for a re-send."""
        return self._jobs(self.r.zrangebyscore(OUTBOX_SENT, "-inf", time.time(), start=0, num=limit))

    def outbox_size(self) -> int:
        """Jobs waiting to be sent (every job in the outbox that is not waiting for confirmations)."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hlen(OUTBOX)
            pipe.zcard(OUTBOX_SENT)
            jobs, sent = pipe.execute()
        return max(0, int(jobs) - int(sent))

    def outbox_unconfirmed_size(self) -> int:
        """Jobs sent and not yet confirmed by every consumer."""
        return int(self.r.zcard(OUTBOX_SENT))

    def ping(self) -> None:
        self.r.ping()
