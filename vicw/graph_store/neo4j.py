"""Neo4j over Bolt with the official driver: the production graph backend."""

from __future__ import annotations

from typing import Any

from vicw.graph_store.base import GraphStoreError
from vicw.graph_store.cypher import CypherGraphStore, Outcome

# Uniqueness constraints on each label's identity (Community edition supports composite ones;
# each also creates the index lookups use), plus tenant indexes for tenant-wide scans.
SCHEMA: tuple[str, ...] = (
    "CREATE CONSTRAINT vicw_session_id IF NOT EXISTS FOR (n:Session) REQUIRE (n.tenant, n.session_id) IS UNIQUE",
    "CREATE CONSTRAINT vicw_turn_id IF NOT EXISTS FOR (n:Turn) REQUIRE (n.tenant, n.session_id, n.seq) IS UNIQUE",
    "CREATE CONSTRAINT vicw_entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE (n.tenant, n.key) IS UNIQUE",
    "CREATE CONSTRAINT vicw_state_id IF NOT EXISTS FOR (n:StateItem) REQUIRE (n.tenant, n.session_id, n.key) IS UNIQUE",
    "CREATE INDEX vicw_session_tenant IF NOT EXISTS FOR (n:Session) ON (n.tenant)",
    "CREATE INDEX vicw_turn_tenant IF NOT EXISTS FOR (n:Turn) ON (n.tenant)",
    "CREATE INDEX vicw_entity_tenant IF NOT EXISTS FOR (n:Entity) ON (n.tenant)",
    "CREATE INDEX vicw_state_tenant IF NOT EXISTS FOR (n:StateItem) ON (n.tenant)",
    "CREATE INDEX vicw_state_status IF NOT EXISTS FOR (n:StateItem) ON (n.tenant, n.session_id, n.status)",
)


class Neo4jGraphStore(CypherGraphStore):
    backend = "neo4j"

    def __init__(self, driver: Any, *, database: str | None = None, batch_size: int = 50) -> None:
        super().__init__(batch_size=batch_size)
        self._driver = driver
        self.database = database

    @classmethod
    def connect(
        cls, uri: str, user: str | None, password: str | None, *, database: str | None = None, **kwargs: Any
    ) -> Neo4jGraphStore:
        from neo4j import GraphDatabase

        auth = (user, password) if user and password is not None else None
        return cls(GraphDatabase.driver(uri, auth=auth), database=database, **kwargs)

    def _run(self, query: str, params: dict[str, Any], *, write: bool) -> Outcome:
        from neo4j.exceptions import Neo4jError, ServiceUnavailable

        def work(tx: Any) -> Outcome:
            result = tx.run(query, params)
            rows = [record.data() for record in result]
            counters = result.consume().counters
            return Outcome(rows, counters.nodes_deleted, counters.relationships_deleted)

        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_write(work) if write else session.execute_read(work)
        except (Neo4jError, ServiceUnavailable) as exc:
            raise GraphStoreError(f"neo4j query failed: {exc}") from exc

    def ensure_schema(self) -> None:
        for statement in SCHEMA:
            self._run(statement, {}, write=True)

    def close(self) -> None:
        self._driver.close()
