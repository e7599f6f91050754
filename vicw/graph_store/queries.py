"""The Cypher both graph backends run (FalkorDB and Neo4j), in one place.

Only the portable subset: MERGE / ON CREATE SET, UNWIND $rows, CASE, list comprehensions,
epoch-int timestamps (no datetime()), no APOC, no CALL subqueries. Every node carries `tenant`
and every MATCH filters on it. Values always travel as parameters, never spliced into the text;
the only generated parts are labels and relationship types, taken from the constants below.
Per-backend DDL (indexes, constraints) lives with each adapter.
"""

from __future__ import annotations

# Node labels and the properties that identify a node of each label.
IDENTITY: dict[str, tuple[str, ...]] = {
    "Session": ("tenant", "session_id"),
    "Turn": ("tenant", "session_id", "seq"),
    "Entity": ("tenant", "key"),
    "StateItem": ("tenant", "session_id", "key"),
}
# Relationship types and the labels they connect.
EDGES: dict[str, tuple[str, str]] = {
    "HAS_TURN": ("Session", "Turn"),
    "HAS_STATE": ("Session", "StateItem"),
    "FROM_TURN": ("StateItem", "Turn"),
    "ABOUT": ("StateItem", "Entity"),
    "MENTIONED_IN": ("Entity", "Session"),
}
SESSION_LABELS = ("StateItem", "Turn", "Session")  # deleted with a session (entities are tenant-wide)


def _union(target: str, new: str) -> str:
    """A list property as a set union, without APOC: old values not in `new`, then `new`."""
    return f"{target} = [x IN coalesce({target}, []) WHERE NOT x IN {new}] + {new}"


def _newest(target: str, value: str) -> str:
    return f"{target} = CASE WHEN {target} IS NULL OR {target} < {value} THEN {value} ELSE {target} END"


MERGE_SESSION = f"""
MERGE (s:Session {{tenant: $tenant, session_id: $sid}})
ON CREATE SET s.created_at = $ts
SET {_newest("s.updated_at", "$ts")}
"""

MERGE_TURNS = """
UNWIND $rows AS r
MATCH (s:Session {tenant: $tenant, session_id: $sid})
MERGE (t:Turn {tenant: $tenant, session_id: $sid, seq: r.seq})
SET t.role = r.role, t.speaker = r.speaker, t.ts = r.ts, t.job_id = $job_id
MERGE (s)-[:HAS_TURN]->(t)
"""

# An entity's type only moves from the generic "thing" to something specific, never back.
MERGE_ENTITIES = f"""
UNWIND $rows AS r
MATCH (s:Session {{tenant: $tenant, session_id: $sid}})
MERGE (e:Entity {{tenant: $tenant, key: r.key}})
ON CREATE SET e.name = r.name, e.type = r.type, e.created_at = r.ts
SET e.type = CASE WHEN e.type = 'thing' THEN r.type ELSE e.type END, {_newest("e.updated_at", "r.ts")}
MERGE (e)-[m:MENTIONED_IN]->(s)
SET {_union("m.turn_seqs", "r.turn_seqs")}
"""

# Status and text follow the statement with the highest turn seq, so jobs replayed in any order
# converge on the same state; list properties accumulate as sets.
MERGE_ITEMS = f"""
UNWIND $rows AS r
MATCH (s:Session {{tenant: $tenant, session_id: $sid}})
MERGE (i:StateItem {{tenant: $tenant, session_id: $sid, key: r.key}})
ON CREATE SET i.kind = r.kind, i.created_at = r.updated_at, i.status_seq = -1
WITH s, i, r, r.status_seq >= i.status_seq AS newer
SET i.status = CASE WHEN newer THEN r.status ELSE i.status END,
    i.text = CASE WHEN newer THEN r.text ELSE i.text END,
    i.subject = CASE WHEN newer THEN r.subject ELSE i.subject END,
    i.updated_at = CASE WHEN newer THEN r.updated_at ELSE i.updated_at END,
    i.status_seq = CASE WHEN newer THEN r.status_seq ELSE i.status_seq END,
    {_union("i.turn_seqs", "r.turn_seqs")}, {_union("i.entity_keys", "r.entity_keys")},
    {_union("i.dates", "r.dates")}, {_union("i.amounts", "r.amounts")}
MERGE (s)-[:HAS_STATE]->(i)
"""

APPLY_STATUS = f"""
UNWIND $rows AS r
MATCH (i:StateItem {{tenant: $tenant, session_id: $sid, key: r.key}})
WITH i, r, r.seq >= i.status_seq AS newer
SET i.status = CASE WHEN newer THEN r.status ELSE i.status END,
    i.updated_at = CASE WHEN newer THEN r.updated_at ELSE i.updated_at END,
    i.status_seq = CASE WHEN newer THEN r.seq ELSE i.status_seq END,
    {_union("i.turn_seqs", "[r.seq]")}
"""

LINK_ITEM_TURNS = """
UNWIND $rows AS r
MATCH (i:StateItem {tenant: $tenant, session_id: $sid, key: r.key})
MATCH (t:Turn {tenant: $tenant, session_id: $sid, seq: r.seq})
MERGE (i)-[:FROM_TURN]->(t)
"""

LINK_ITEM_ENTITIES = """
UNWIND $rows AS r
MATCH (i:StateItem {tenant: $tenant, session_id: $sid, key: r.key})
MATCH (e:Entity {tenant: $tenant, key: r.entity})
MERGE (i)-[:ABOUT]->(e)
"""

ITEM_FIELDS = """i.key AS key, i.kind AS kind, i.status AS status, i.text AS text, i.subject AS subject,
i.turn_seqs AS turn_seqs, i.entity_keys AS entity_keys, i.dates AS dates, i.amounts AS amounts,
i.status_seq AS status_seq, i.updated_at AS updated_at, i.session_id AS session_id"""

STATE_ITEMS = f"""
MATCH (i:StateItem {{tenant: $tenant, session_id: $sid}})
WHERE i.status IN $statuses
RETURN {ITEM_FIELDS}
ORDER BY i.updated_at DESC, i.key
LIMIT $limit
"""

# Whole-word match of a query term inside an entity key ("lisbon" finds "lisbon marathon").
RELATED_ENTITIES = """
MATCH (e:Entity {tenant: $tenant})-[m:MENTIONED_IN]->(s:Session {tenant: $tenant})
WHERE ($sid IS NULL OR s.session_id = $sid)
  AND any(w IN $terms WHERE e.key = w OR e.key STARTS WITH (w + ' ') OR e.key ENDS WITH (' ' + w)
          OR e.key CONTAINS (' ' + w + ' '))
RETURN e.key AS key, e.name AS name, e.type AS type, s.session_id AS session_id, m.turn_seqs AS turn_seqs
LIMIT $cap
"""

RELATED_ITEMS = f"""
MATCH (i:StateItem {{tenant: $tenant}})-[:ABOUT]->(e:Entity {{tenant: $tenant}})
WHERE e.key IN $keys AND i.status <> 'invalid' AND ($sid IS NULL OR i.session_id = $sid)
RETURN e.key AS entity_key, {ITEM_FIELDS}
LIMIT $cap
"""

SESSION_ENTITY_KEYS = """
MATCH (e:Entity {tenant: $tenant})-[:MENTIONED_IN]->(s:Session {tenant: $tenant, session_id: $sid})
RETURN e.key AS key
"""

DELETE_ORPHAN_ENTITIES = """
UNWIND $keys AS k
MATCH (e:Entity {tenant: $tenant, key: k})
WHERE NOT (e)-[:MENTIONED_IN]->()
DETACH DELETE e
RETURN count(e) AS deleted
"""

PING = "RETURN 1 AS ok"


def count_nodes(label: str) -> str:
    return f"MATCH (n:{label}) WHERE $tenant IS NULL OR n.tenant = $tenant RETURN count(n) AS n"


def count_edges(rel: str) -> str:
    src, dst = EDGES[rel]
    return f"MATCH (a:{src})-[r:{rel}]->(b:{dst}) WHERE $tenant IS NULL OR a.tenant = $tenant RETURN count(r) AS n"


def delete_batch(label: str, *, session: bool) -> str:
    """One bounded batch of DETACH DELETE (run until it deletes fewer than $batch)."""
    where = "{tenant: $tenant, session_id: $sid}" if session else "{tenant: $tenant}"
    return f"MATCH (n:{label} {where}) WITH n LIMIT $batch DETACH DELETE n RETURN count(n) AS deleted"


def export_nodes(label: str) -> str:
    return f"MATCH (n:{label}) WHERE $tenant IS NULL OR n.tenant = $tenant RETURN properties(n) AS props"


def _identity_fields(var: str, label: str) -> str:
    return ", ".join(f"{var}.{p} AS {var}_{p}" for p in IDENTITY[label])


def export_edges(rel: str) -> str:
    src, dst = EDGES[rel]
    return (
        f"MATCH (a:{src})-[r:{rel}]->(b:{dst}) WHERE $tenant IS NULL OR a.tenant = $tenant "
        f"RETURN {_identity_fields('a', src)}, {_identity_fields('b', dst)}, properties(r) AS props"
    )


def _match_map(label: str, row: str) -> str:
    return "{" + ", ".join(f"{p}: {row}.{p}" for p in IDENTITY[label]) + "}"


def import_nodes(label: str) -> str:
    return f"UNWIND $rows AS r MERGE (n:{label} {_match_map(label, 'r.id')}) SET n += r.props"


def import_edges(rel: str) -> str:
    src, dst = EDGES[rel]
    return (
        f"UNWIND $rows AS r MATCH (a:{src} {_match_map(src, 'r.src')}) MATCH (b:{dst} {_match_map(dst, 'r.dst')}) "
        f"MERGE (a)-[x:{rel}]->(b) SET x += r.props"
    )
