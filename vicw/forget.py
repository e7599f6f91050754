"""Forgetting a session in every store, with a receipt of what was removed where."""

from __future__ import annotations

from vicw import container


def forget_session(tenant: str, session_id: str) -> dict:
    receipt: dict[str, object] = {"session_id": session_id, "deleted": {}}
    deleted: dict[str, object] = receipt["deleted"]  # type: ignore[assignment]
    deleted["window_keys"] = container.window_store().delete(tenant, session_id)
    for name, getter in (("vectors", container.vector_store), ("graph", container.graph_store), ("archive", container.archive)):
        store = getter()
        deleted[name] = store.delete_session(tenant, session_id) if store is not None else None
    return receipt
