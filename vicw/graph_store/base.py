"""The knowledge-graph interface every backend implements, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from vicw.extraction import Extraction, StateItem
from vicw.models import Turn

DEFAULT_STATUSES = ("active", "completed")


class GraphStoreError(RuntimeError):
    """A graph backend failed or is misconfigured."""


class GraphHit(BaseModel):
    """An entity matching a query, with where it was mentioned and the state items about it."""

    entity_key: str
    name: str
    type: str
    score: float
    mentions: dict[str, list[int]] = Field(default_factory=dict)  # session_id -> turn seqs
    items: list[StateItem] = Field(default_factory=list)

    @property
    def turn_seqs(self) -> list[int]:
        return sorted({seq for seqs in self.mentions.values() for seq in seqs})


@runtime_checkable
class GraphStore(Protocol):
    def write(self, tenant: str, session_id: str | None, job_id: str, extraction: Extraction, turns: list[Turn]) -> None:
        """Idempotent MERGE of one job's extraction (a replay leaves the graph unchanged)."""
        ...

    def state_items(
        self, tenant: str, session_id: str, statuses: Sequence[str] = DEFAULT_STATUSES, limit: int = 50
    ) -> list[StateItem]: ...

    def related(self, tenant: str, session_id: str | None, terms: list[str], limit: int = 10) -> list[GraphHit]:
        """Entities whose name contains a query term as a whole word, best first."""
        ...

    def counts(self, tenant: str | None = None) -> dict[str, int]: ...

    def delete_session(self, tenant: str, session_id: str) -> dict[str, int]:
        """Remove a session's nodes; entities still mentioned by another session of the tenant stay."""
        ...

    def delete_tenant(self, tenant: str) -> dict[str, int]: ...

    def export(self, tenant: str | None = None) -> dict[str, Any]: ...

    def import_(self, data: dict[str, Any]) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...
