"""The graph store against real servers.

* The contract suite (`store` fixture) runs on FalkorDB over RESP always, and on a real Neo4j
  when NEO4J_URI is set (NEO4J_USER / NEO4J_PASSWORD / NEO4J_DATABASE as in production).
* The Neo4j adapter's driver code path is smoke-tested against FalkorDB's Bolt listener.
"""

from __future__ import annotations

import json
import os
import random
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vicw.config import load_settings
from vicw.extraction import Entity, Extraction, extract
from vicw.graph_store import GraphStore, GraphStoreError, build_graph_store, graph_session_id, process_graph_job
from vicw.graph_store.falkordb import FalkorDBGraphStore
from vicw.graph_store.neo4j import Neo4jGraphStore
from vicw.local.services import free_port, redis_server, wait_for_port
from vicw.models import OffloadJob, Turn

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ALL = ("active", "completed", "invalid")


def make_job(tenant: str, session_id: str | None, *messages: str, first_seq: int = 0, name: str | None = None) -> OffloadJob:
    turns = [
        Turn(seq=first_seq + i, role="user", name=name, content=text, timestamp=T0 + timedelta(minutes=first_seq + i), tokens=8)
        for i, text in enumerate(messages)
    ]
    job_id = OffloadJob.make_id(tenant, session_id, turns[0].seq, turns[-1].seq)
    return OffloadJob(job_id=job_id, tenant=tenant, session_id=session_id, turns=turns, token_count=8 * len(turns))


TRIP = (
    "I need to book flights to Tokyo for the conference.",
    "I live in Lisbon and I work at Acme Corp.",
    "We decided to use Postgres for the billing service.",
    "My goal is to run the Lisbon Marathon next year.",
)


# --- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(params=["falkordb", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request, redis_url):
    if request.param == "falkordb":
        graph = FalkorDBGraphStore.from_url(redis_url, f"test_{uuid.uuid4().hex[:12]}")
        yield graph
        graph.drop()
        graph.close()
        return
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.skip("NEO4J_URI is not set: the same contract runs against a real Neo4j when one is configured")
    graph = Neo4jGraphStore.connect(
        uri, os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD"), database=os.environ.get("NEO4J_DATABASE")
    )
    graph.ensure_schema()
    graph.created_tenants = []
    yield graph
    for tenant in graph.created_tenants:
        graph.delete_tenant(tenant)
    graph.close()


@pytest.fixture()
def tenant(store):
    """A fresh tenant name per call (tests on a shared Neo4j never see each other's data)."""

    def make(label: str = "t") -> str:
        name = f"{label}-{uuid.uuid4().hex[:8]}"
        getattr(store, "created_tenants", []).append(name)
        return name

    return make


def texts(items) -> set[str]:
    return {i.text for i in items}


# --- the contract ------------------------------------------------------------------------------
def test_satisfies_the_protocol(store):
    assert isinstance(store, GraphStore)
    store.ping()


def test_writing_the_same_job_three_times_changes_nothing(store, tenant):
    t = tenant()
    job = make_job(t, "s1", *TRIP)
    process_graph_job(job, store)
    first = store.counts(t)
    items = store.state_items(t, "s1")
    assert first["nodes"] > 10 and first["edges"] > first["nodes"]
    for _ in range(2):
        process_graph_job(job, store)
        assert store.counts(t) == first
    assert store.state_items(t, "s1") == items
    assert {i.kind for i in items} == {"task", "fact", "decision", "goal"}


def test_counts_match_the_extraction(store, tenant):
    t = tenant()
    job = make_job(t, "s1", "I live in Lisbon.", "I need to call Maria.")
    ex = extract(job)
    store.write(t, "s1", job.job_id, ex, job.turns)
    # Session + 2 turns + entities + items
    assert store.counts(t)["nodes"] == 1 + 2 + len(ex.entities) + len(ex.items)
    mentions = len(ex.entities)
    has_turn, has_state = 2, len(ex.items)
    from_turn = sum(len(i.turn_seqs) for i in ex.items)
    about = sum(len(i.entity_keys) for i in ex.items)
    assert store.counts(t)["edges"] == mentions + has_turn + has_state + from_turn + about


def test_tenants_sharing_a_session_id_never_see_each_other(store, tenant):
    a, b = tenant("a"), tenant("b")
    process_graph_job(make_job(a, "s1", "I live in Lisbon.", "I need to renew my passport."), store)
    process_graph_job(make_job(b, "s1", "I live in Tokyo.", "I need to buy a new laptop.", "I like Lisbon too."), store)
    counts_a, counts_b = store.counts(a), store.counts(b)
    assert counts_a != counts_b

    assert texts(store.state_items(a, "s1")) == {"I live in Lisbon", "I need to renew my passport"}
    assert texts(store.state_items(b, "s1")) == {"I live in Tokyo", "I need to buy a new laptop"}
    assert [h.entity_key for h in store.related(a, "s1", ["tokyo"])] == []
    [hit] = store.related(b, None, ["lisbon"])
    assert hit.mentions == {"s1": [2]} and hit.items == []  # b's Lisbon mention, not a's fact

    store.delete_session(a, "s1")
    assert store.counts(a) == {"nodes": 0, "edges": 0}
    assert store.counts(b) == counts_b
    store.delete_tenant(b)
    assert store.counts(b) == {"nodes": 0, "edges": 0}


def test_completion_in_a_later_job_updates_status_without_a_duplicate(store, tenant):
    t = tenant()
    plan = make_job(t, "s1", "I need to book flights to Tokyo.", "I want to learn Japanese.")
    done = make_job(t, "s1", "I finished booking the flights!", "Never mind about the Japanese lessons.", first_seq=5)
    process_graph_job(plan, store)
    assert {i.status for i in store.state_items(t, "s1")} == {"active"}

    result = process_graph_job(done, store)
    assert result["updates"] == 2
    items = {i.key: i for i in store.state_items(t, "s1", statuses=ALL)}
    assert set(items) == {"task:book flight tokyo", "goal:learn japanese"}
    task = items["task:book flight tokyo"]
    assert (task.status, task.status_seq, task.turn_seqs) == ("completed", 5, [0, 5])
    assert items["goal:learn japanese"].status == "invalid"
    assert [i.key for i in store.state_items(t, "s1")] == ["task:book flight tokyo"]  # invalid is hidden by default
    assert store.state_items(t, "s1", statuses=("active",)) == []

    # replaying the older job afterwards (a redelivery) does not resurrect the items
    process_graph_job(plan, store)
    process_graph_job(done, store)
    again = {i.key: i.status for i in store.state_items(t, "s1", statuses=ALL)}
    assert again == {"task:book flight tokyo": "completed", "goal:learn japanese": "invalid"}


def test_restated_fact_keeps_one_item_with_the_newest_text(store, tenant):
    t = tenant()
    process_graph_job(make_job(t, "s1", "I live in Lisbon."), store)
    process_graph_job(make_job(t, "s1", "I moved to Berlin.", first_seq=3), store)
    process_graph_job(make_job(t, "s1", "I live in Lisbon."), store)  # old job replayed last
    [fact] = store.state_items(t, "s1")
    assert (fact.key, fact.text, fact.turn_seqs) == ("fact:user:residence", "I moved to Berlin", [0, 3])


def test_delete_session_keeps_entities_other_sessions_mention(store, tenant):
    t = tenant()
    process_graph_job(make_job(t, "s1", "I live in Lisbon.", "I need to book flights to Tokyo."), store)
    before_s2 = store.counts(t)
    process_graph_job(make_job(t, "s2", "We should meet in Lisbon next week."), store)
    total = store.counts(t)

    removed = store.delete_session(t, "s1")
    after = store.counts(t)
    assert removed == {"nodes": total["nodes"] - after["nodes"], "edges": total["edges"] - after["edges"]}
    assert 0 < removed["nodes"] < before_s2["nodes"]  # Lisbon stays: s2 mentions it
    assert store.state_items(t, "s1") == []
    [lisbon] = store.related(t, None, ["Lisbon"])
    assert lisbon.mentions == {"s2": [0]}
    assert store.related(t, None, ["tokyo"]) == []  # only s1 mentioned Tokyo
    assert store.delete_session(t, "s1") == {"nodes": 0, "edges": 0}


def test_related_finds_entities_by_whole_words_with_their_items(store, tenant):
    t = tenant()
    process_graph_job(make_job(t, "s1", *TRIP), store)
    process_graph_job(make_job(t, "s2", "It was sunny in Lisbon today."), store)
    hits = store.related(t, "s1", ["Where", "is", "lisbon"])
    assert [h.entity_key for h in hits] == ["lisbon", "lisbon marathon"]  # same score: by key
    lisbon, marathon = hits
    assert lisbon.type == "place" and lisbon.turn_seqs == [1] and set(lisbon.mentions) == {"s1"}
    assert [i.key for i in lisbon.items] == ["fact:user:residence"]
    assert [i.kind for i in marathon.items] == ["goal"]
    assert store.related(t, None, ["lisb"]) == []  # no partial words
    assert {h.entity_key for h in store.related(t, None, ["lisbon"])} == {"lisbon", "lisbon marathon"}
    assert store.related(t, None, ["lisbon"], limit=1)[0].mentions.keys() == {"s1", "s2"}
    assert store.related(t, "s1", ["the", "a"]) == []


def test_export_import_round_trip(store, tenant):
    t = tenant()
    process_graph_job(make_job(t, "s1", *TRIP), store)
    process_graph_job(make_job(t, "s1", "I finished booking the flights.", first_seq=9), store)
    process_graph_job(make_job(t, None, "Acme Corp was founded in Lisbon."), store)
    backup = store.export(t)
    counts = store.counts(t)
    assert json.loads(json.dumps(backup)) == backup
    assert len(backup["nodes"]) == counts["nodes"] and len(backup["edges"]) == counts["edges"]

    store.delete_tenant(t)
    assert store.counts(t) == {"nodes": 0, "edges": 0}
    store.import_(backup)
    assert store.counts(t) == counts
    assert normalised(store.export(t)) == normalised(backup)
    store.import_(backup)  # importing twice merges, never duplicates
    assert store.counts(t) == counts


def normalised(backup: dict) -> list:
    def norm(value):
        if isinstance(value, list):
            return sorted((norm(v) for v in value), key=repr)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        return value

    return sorted(json.dumps(norm(x), sort_keys=True) for x in backup["nodes"] + backup["edges"])


def test_import_rejects_unknown_labels(store):
    with pytest.raises(ValueError):
        store.import_({"nodes": [{"label": "Secret", "props": {"tenant": "x"}}]})
    with pytest.raises(ValueError):
        store.import_({"nodes": [{"label": "Entity", "props": {"tenant": "x"}}]})  # no key


def test_document_jobs_live_in_their_own_pseudo_session(store, tenant):
    t = tenant()
    job = make_job(t, None, "We decided to use Stripe for payments.")
    job.metadata["document_id"] = "handbook"
    process_graph_job(job, store)
    assert graph_session_id(job) == "document:handbook"
    assert texts(store.state_items(t, "document:handbook")) == {"We decided to use Stripe for payments"}
    [hit] = store.related(t, None, ["stripe"])
    assert hit.mentions == {"document:handbook": [0]}


def test_large_jobs_are_written_in_bounded_batches(store, tenant):
    t = tenant()
    seen: list[int] = []
    run = store._run

    def recording(query, params, *, write):
        if "rows" in params:
            seen.append(len(params["rows"]))
        return run(query, params, write=write)

    store._run = recording
    turns = [Turn(seq=i, role="user", content=f"Note {i}", timestamp=T0, tokens=2) for i in range(120)]
    entities = [Entity(key=f"place {i}", name=f"Place {i}", type="place", turn_seqs=[i]) for i in range(120)]
    store.write(t, "s1", "job-big", Extraction(entities=entities), turns)
    assert seen and max(seen) <= store.batch_size and sum(seen) == 240
    assert store.counts(t)["nodes"] == 1 + 120 + 120


# --- FalkorDB (RESP) specifics -----------------------------------------------------------------
@pytest.fixture()
def falkor(redis_url):
    graph = FalkorDBGraphStore.from_url(redis_url, f"test_{uuid.uuid4().hex[:12]}")
    yield graph
    graph.drop()
    graph.close()


NASTY = [
    'She said "hi" and left',
    "back\\slash \\\" mixed \\\\ and 'single' quotes",
    "line one\nline two\ttabbed",
    "unicode: caf\u00e9 \u65e5\u672c \U0001f600",
    "x'}) MATCH (n) DETACH DELETE n //",
    '"}) RETURN 1 //',
]


@pytest.mark.parametrize("text", NASTY)
def test_strings_round_trip_exactly_through_parameters(falkor, text):
    job = make_job("t", "s1", "I need to pack.")
    extraction = extract(job)
    item = extraction.items[0].model_copy(update={"text": text, "key": "task:" + text})
    entity = Entity(key=text, name=text, type="thing", turn_seqs=[0])
    falkor.write("t", "s1", job.job_id, Extraction(entities=[entity], items=[item]), job.turns)
    falkor.write("other", "s1", job.job_id, extraction, job.turns)
    [stored] = falkor.state_items("t", "s1")
    assert stored.text == text and stored.key == "task:" + text
    names = {n["props"]["name"] for n in falkor.export("t")["nodes"] if n["label"] == "Entity"}
    assert names == {text}
    assert falkor.counts("other")["nodes"] > 0  # nothing was deleted by an injection attempt


def test_falkordb_creates_its_indexes_once(falkor):
    falkor.ensure_schema()  # second call: nothing to do, no error
    rows = falkor._run("CALL db.indexes() YIELD label, properties RETURN label, properties", {}, write=False).rows
    indexed = {r["label"]: set(r["properties"]) for r in rows}
    assert indexed["Entity"] >= {"tenant", "key"} and indexed["StateItem"] >= {"tenant", "session_id", "key", "status"}


def test_counts_without_tenant_cover_the_whole_graph(falkor):
    process_graph_job(make_job("a", "s1", "I live in Lisbon."), falkor)
    process_graph_job(make_job("b", "s1", "I live in Tokyo."), falkor)
    whole = falkor.counts()
    assert whole["nodes"] == falkor.counts("a")["nodes"] + falkor.counts("b")["nodes"]
    assert whole["edges"] == falkor.counts("a")["edges"] + falkor.counts("b")["edges"]
    assert len(falkor.export()["nodes"]) == whole["nodes"]


def test_unreachable_server_raises_graph_store_errors(tmp_path):
    with pytest.raises(GraphStoreError):
        FalkorDBGraphStore.from_url(f"redis://127.0.0.1:{free_port()}", "g")
    proc = redis_server(tmp_path, persist=False).start()
    try:
        graph = FalkorDBGraphStore.from_url(f"redis://127.0.0.1:{proc.port}", "g")
        graph.ping()
    finally:
        proc.stop()
    with pytest.raises(GraphStoreError):
        graph.ping()
    with pytest.raises(GraphStoreError):
        graph.counts()


def test_build_graph_store_from_settings(redis_url):
    assert build_graph_store(load_settings(graph_backend="none")) is None
    graph = build_graph_store(load_settings(graph_backend="falkordb", falkordb_url=redis_url, graph_name="test_factory"))
    try:
        assert isinstance(graph, FalkorDBGraphStore) and graph.graph_name == "test_factory"
        graph.ping()
    finally:
        graph.drop()
        graph.close()
    with pytest.raises(GraphStoreError, match="NEO4J_URI"):
        build_graph_store(load_settings(graph_backend="neo4j", neo4j_uri=None))


# --- the Neo4j adapter over FalkorDB's Bolt listener -------------------------------------------
def _free_bolt_port() -> int:
    # FalkorDB reads BOLT_PORT as a signed 16-bit value: ports above 32767 are silently ignored.
    for _ in range(200):
        port = random.randint(20000, 32767)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))  # the Bolt listener binds all interfaces
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768 for FalkorDB's Bolt listener")


@pytest.fixture(scope="module")
def bolt_store(tmp_path_factory):
    proc = redis_server(tmp_path_factory.mktemp("falkordb-bolt"), persist=False)
    port = _free_bolt_port()
    proc.args += ["BOLT_PORT", str(port)]
    proc.start()
    try:
        wait_for_port(port, proc=proc.proc)
        # FalkorDB's Bolt listener has no authentication: a password makes its HELLO fail.
        graph = Neo4jGraphStore.connect(f"bolt://127.0.0.1:{port}", None, None, batch_size=3)
        yield graph
        graph.close()
    finally:
        proc.stop()


# FalkorDB's Bolt server splices string parameters into the query unescaped and crashes on
# queries over ~4 KB, so these messages have no quotes or apostrophes and batches are small.
BOLT_TRIP = (
    "I need to book flights to Tokyo.",
    "I live in Lisbon.",
    "We decided to use Postgres for billing.",
)


def test_neo4j_adapter_over_bolt_write_counts_state_items(bolt_store):
    t = f"bolt-{uuid.uuid4().hex[:8]}"
    bolt_store.ping()
    job = make_job(t, "s1", *BOLT_TRIP)
    process_graph_job(job, bolt_store)
    counts = bolt_store.counts(t)
    assert counts["nodes"] == 1 + 3 + 3 + 3  # session, turns, entities (Tokyo, Lisbon, Postgres), items
    process_graph_job(job, bolt_store)
    assert bolt_store.counts(t) == counts
    items = {i.key: i for i in bolt_store.state_items(t, "s1")}
    assert set(items) == {"task:book flight tokyo", "fact:user:residence", "decision:use postgre bill"}
    assert items["fact:user:residence"].entity_keys == ["lisbon"]


def test_neo4j_adapter_over_bolt_status_update_related_and_delete(bolt_store):
    t = f"bolt-{uuid.uuid4().hex[:8]}"
    process_graph_job(make_job(t, "s1", *BOLT_TRIP), bolt_store)
    process_graph_job(make_job(t, "s1", "I finished booking the flights.", first_seq=5), bolt_store)
    statuses = {i.key: i.status for i in bolt_store.state_items(t, "s1", statuses=ALL)}
    assert statuses["task:book flight tokyo"] == "completed"
    [hit] = bolt_store.related(t, "s1", ["lisbon"])
    assert [i.key for i in hit.items] == ["fact:user:residence"]
    before = bolt_store.counts(t)
    removed = bolt_store.delete_session(t, "s1")
    assert removed["nodes"] == before["nodes"] and bolt_store.counts(t) == {"nodes": 0, "edges": 0}


def test_reads_on_a_graph_that_does_not_exist_yet_are_empty(redis_url):
    store = FalkorDBGraphStore.from_url(redis_url, f"never_written_{uuid.uuid4().hex[:8]}")
    assert store.counts() == {"nodes": 0, "edges": 0}
    assert store.export()["nodes"] == [] and store.state_items("t", "s") == []
