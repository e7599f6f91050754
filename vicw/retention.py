"""RETENTION_DAYS: sessions nobody has written to for that long are forgotten in every store.

`sweep(stores, now, retention_days)` walks every session's window (WindowState.updated_at is its last write) and runs the
same deletion as DELETE /sessions/{id} on the expired ones. The maintenance function calls it on a
schedule; `now` is a parameter so the clock is the caller's (tests move it freely).

What counts as "last update" is the window: a session whose window is gone (deleted or reset)
has nothing left to expire in Redis, and its cold-path data was removed with it by the deletion.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from vicw.forget import Stores, forget_session
from vicw.models import WindowState
from vicw.observability import logger


def expired(state: WindowState, now: datetime, retention: timedelta) -> bool:
    updated = state.updated_at if state.updated_at.tzinfo else state.updated_at.replace(tzinfo=UTC)
    return now - updated > retention


def sweep(stores: Stores, now: datetime | None = None, retention_days: int | None = None, limit: int | None = None) -> dict[str, Any]:
    """Forget every session idle for longer than `retention_days` (the caller passes RETENTION_DAYS;
    None: keep everything).

    Returns a receipt: sessions scanned, the ones forgotten with their per-store counts, and any
    that failed (a failure never stops the sweep; the next run retries it).
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    days = retention_days
    receipt: dict[str, Any] = {"now": now.isoformat(), "retention_days": days, "scanned": 0, "forgotten": [], "failed": []}
    if days is None:
        receipt["skipped"] = "RETENTION_DAYS is not set: data is kept"
        return receipt
    retention = timedelta(days=days)
    ws = stores.windows()
    for tenant, session_id in list(ws.sessions()):
        receipt["scanned"] += 1
        state = ws.load(tenant, session_id)
        if state is None or not expired(state, now, retention):
            continue
        try:
            done = forget_session(stores, tenant, session_id)
        except Exception as exc:  # noqa: BLE001 - one store's hiccup must not stop the sweep
            logger.warning("retention: deletion failed", extra={"tenant": tenant, "session_id": session_id,
                                                                "error": type(exc).__name__})
            receipt["failed"].append({"tenant": tenant, "session_id": session_id, "error": type(exc).__name__})
            continue
        receipt["forgotten"].append({"tenant": tenant, "session_id": session_id, "deleted": done["deleted"]})
        if limit is not None and len(receipt["forgotten"]) >= limit:
            receipt["truncated"] = True
            break
    logger.info("retention sweep", extra={"scanned": receipt["scanned"], "forgotten": len(receipt["forgotten"]),
                                          "failed": len(receipt["failed"])})
    return receipt
