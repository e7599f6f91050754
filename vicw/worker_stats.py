"""Cold-path counters kept in Redis, so /stats shows processed and failed records per function."""

from __future__ import annotations

import redis

KEY = "vicw:workers"


def record_outcome(client: redis.Redis, function: str, processed: int, failed: int) -> None:
    with client.pipeline(transaction=False) as pipe:
        pipe.hincrby(KEY, f"{function}:processed", processed)
        pipe.hincrby(KEY, f"{function}:failed", failed)
        pipe.execute()


def record_quarantined(client: redis.Redis, function: str, turns: int) -> None:
    """Turns a function left out of their jobs because they could not be processed (see the WARNING logs)."""
    client.hincrby(KEY, f"{function}:quarantined_turns", turns)


def read_worker_stats(client: redis.Redis) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for field, value in client.hgetall(KEY).items():
        function, _, what = field.decode().partition(":")
        out.setdefault(function, {"processed": 0, "failed": 0})[what] = int(value)
    return out
