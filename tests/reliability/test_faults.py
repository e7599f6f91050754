"""Fault injection against a real local stack: a conversation keeps flowing while Redis (and with it
the FalkorDB graph, the same redis-server process locally), Qdrant, the SQS endpoint or the LLM
fail and come back. Afterwards nothing the API acknowledged is missing, every offload job is
indexed exactly once (after the dead-letter queues are replayed), clients only ever saw clear 5xx
JSON errors, and no request hung (each one came back within a generous client timeout; how fast is
not asserted: the machine running the tests may be busy). Each phase of a fault waits for what
it needs to have happened (an error seen, a job in the outbox, a success after recovery), never
for a fixed time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Self

import httpx
import pytest

from tests.conftest import ADMIN_KEY, HTTP_TIMEOUT, llm_timeout
from tests.fakes.llm_server import Reply, ScriptedLLM
from tests.reliability.conftest import own_stack, process, stack_env, wait_until

CLIENT_TIMEOUT = HTTP_TIMEOUT  # a request that does not come back within this has hung
TENANT = "tenant-a"


@dataclass
class Outcome:
    content: str
    route: str
    status: int | None
    elapsed: float
    body: dict | str | None


@dataclass
class Driver:
    """Sends one user turn after another (every third through /chat) on its own thread."""

    client: httpx.Client
    session: str
    pause: float = 0.05
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            content = f"[{self.session}#{i}] note about harbour cranes, ledger line {i * 37} and the tide table."
            route = "chat" if i % 3 == 2 else "messages"
            started = time.monotonic()
            try:
                if route == "chat":
                    r = self.client.post("/chat", json={"session_id": self.session, "message": content, "use_rag": True})
                else:
                    r = self.client.post(f"/sessions/{self.session}/messages",
                                         json={"messages": [{"role": "user", "content": content}]})
                try:
                    body = r.json()
                except ValueError:
                    body = r.text
                self.outcomes.append(Outcome(content, route, r.status_code, time.monotonic() - started, body))
            except httpx.HTTPError as exc:
                self.outcomes.append(Outcome(content, route, None, time.monotonic() - started, repr(exc)))
            i += 1
            self._stop.wait(self.pause)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(CLIENT_TIMEOUT + 5)

    def wait_for(self, predicate, what: str, after: int = 0) -> None:
        """Until some outcome from index `after` on satisfies `predicate`."""
        wait_until(lambda: any(predicate(o) for o in self.outcomes[after:]), 60, every=0.05, what=what)

    @property
    def acked(self) -> list[str]:
        return [o.content for o in self.outcomes if o.status == 200]


def assert_errors_were_clear(outcomes: list[Outcome], allowed: set[int]) -> None:
    for o in outcomes:
        assert o.status is not None, f"request failed at transport level (hung or dropped): {o.body}"
        if o.status != 200:
            assert o.status in allowed, (o.status, o.body)
            assert isinstance(o.body, dict) and o.body["error"]["message"], o.body


# --- the stack and its recovery helpers ------------------------------------------------------------
QUICK_VISIBILITY = "2"  # seconds before a failed record is redelivered (the template says 720)


def quick_redelivery() -> None:
    from vicw import container
    from vicw.aws import client

    s = container.settings()
    for url in (s.offload_queue_url, s.graph_queue_url):
        client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": QUICK_VISIBILITY})


@pytest.fixture(scope="module")
def llm():
    with ScriptedLLM() as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory, llm):
    with own_stack(tmp_path_factory.mktemp("faults"), stack_env(llm.url, COLD_PATH_BATCH_SIZE="5")) as local:
        quick_redelivery()
        yield local


@pytest.fixture()
def api(stack, client_for, llm):
    llm.reset()
    return client_for(stack.url, timeout=CLIENT_TIMEOUT)


def queue_stats(api: httpx.Client) -> dict:
    r = api.get("/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # queue depths: admin only
    assert r.status_code == 200, r.text
    return r.json()


def drain(api: httpx.Client, timeout: float = 90) -> dict:
    """Wait for the outbox (unsent and unconfirmed jobs) and both queues to empty (DLQs may hold messages)."""
    from vicw import container

    def idle():
        ws = container.window_store()
        if ws.outbox_size() or ws.outbox_unconfirmed_size():
            return None
        stats = queue_stats(api)
        q = stats["queues"]
        return stats if all(q[n]["visible"] == 0 and q[n]["in_flight"] == 0 for n in ("offload", "graph")) else None

    return wait_until(idle, timeout, every=0.5, what="outbox and queues drained")


def replay_dead_letters(api: httpx.Client) -> dict:
    """What an operator does once the cause is fixed: `vicw replay dlq` for both queues, then drain."""
    from vicw.replay import replay_dlq

    moved = {"offload": 0, "graph": 0}
    for _ in range(4):
        stats = drain(api)
        if not any(stats["queues"][n]["dlq"] for n in moved):
            return moved
        for name in moved:
            if stats["queues"][name]["dlq"]:
                moved[name] += replay_dlq(name)["moved"]
    raise AssertionError(f"dead-letter queues do not empty: {queue_stats(api)['queues']}")


def assert_nothing_lost(session: str, acked: list[str]) -> None:
    """Every acknowledged turn is in the window or indexed; each shed turn exactly once."""
    from vicw import container

    state = container.window_store().load(TENANT, session)
    assert state is not None
    live = {t.seq: t for t in state.turns}
    records = list(container.vector_store().scroll(TENANT, session, include_tenant_wide_documents=False))
    parts: dict[int, list] = {}
    for rec in records:
        parts.setdefault(rec.seq, []).append(rec)
    for seq, recs in parts.items():
        assert sorted(r.part for r in recs) == list(range(recs[0].parts)), f"turn {seq} indexed {len(recs)} times"
        assert seq not in live, f"turn {seq} is both live and offloaded"
    assert set(live) | set(parts) == set(range(state.next_seq)), "a turn is neither in the window nor indexed"
    assert len(parts) == state.offloaded_turns
    assert state.tokens <= container.settings().window_budget
    stored = [t.content for t in state.turns] + [" ".join(r.text for r in sorted(recs, key=lambda r: r.part))
                                                 for recs in parts.values()]
    missing = [c for c in acked if not any(c in s for s in stored)]
    assert not missing, f"{len(missing)} acknowledged turns missing, e.g. {missing[:2]}"
    user_turns = sum(1 for t in state.turns if t.role == "user") + sum(1 for recs in parts.values() if recs[0].role == "user")
    assert user_turns >= len(acked)


# --- the faults -------------------------------------------------------------------------------------
def test_redis_and_graph_restart_mid_conversation(api, stack):
    redis_proc = process(stack, "redis")
    with Driver(api, "redis-fault") as driver:
        driver.wait_for(lambda o: o.status == 200, "a turn acknowledged before the fault")
        redis_proc.stop()  # the window store AND FalkorDB (same redis-server process here)
        driver.wait_for(lambda o: o.status == 503, "the outage noticed by a client")
        redis_proc.start()  # same port; AOF brings the windows back
        back = len(driver.outcomes)
        driver.wait_for(lambda o: o.status == 200, "a turn acknowledged after the restart", after=back)
        back = len(driver.outcomes)
        driver.wait_for(lambda o: o.status == 200, "and the next one", after=back)
    assert_errors_were_clear(driver.outcomes, {503})
    assert any(o.status == 503 for o in driver.outcomes), "the outage was not noticed"
    assert driver.outcomes[-1].status == 200, "did not recover"
    replay_dead_letters(api)  # graph jobs that failed while FalkorDB was down
    assert_nothing_lost("redis-fault", driver.acked)


def test_qdrant_unavailable_then_back(api, stack):
    from vicw import container

    store = container.vector_store()
    with Driver(api, "qdrant-fault") as driver:
        driver.wait_for(lambda o: o.status == 200, "a turn acknowledged before the fault")
        store._shard.close()  # the local engine gone: searches and upserts raise
        driver.wait_for(lambda o: o.route == "chat", "a chat turn while the engine is gone", after=len(driver.outcomes))
        health = api.get("/health")
        assert health.status_code == 503 and health.json()["checks"]["vectors"]["status"] == "error"
        wait_until(lambda: queue_stats(api)["queues"]["offload"]["dlq"] > 0, 30, what="failed offload jobs reach the DLQ")
        with store._lock:  # the engine is back: reopened on next use
            store._shard = None
        driver.wait_for(lambda o: o.status == 200, "a turn after the engine is back", after=len(driver.outcomes))
    # Retrieval is an enhancement: chat kept answering from the live window the whole time.
    assert_errors_were_clear(driver.outcomes, set())
    moved = replay_dead_letters(api)
    assert moved["offload"] > 0
    assert_nothing_lost("qdrant-fault", driver.acked)


def test_sqs_endpoint_restart_resends_the_outbox(api, stack):
    from vicw import container
    from vicw.aws_resources import ensure_local_resources

    drain(api)
    moto = process(stack, "moto")
    with Driver(api, "sqs-fault") as driver:
        driver.wait_for(lambda o: o.status == 200, "a turn acknowledged before the fault")
        moto.stop()
        # turns shed now stay in the Redis outbox
        pending = wait_until(lambda: container.window_store().outbox_size(), 90, what="a job waiting in the outbox")
        moto.start()  # an in-memory emulator: it comes back empty
        ensure_local_resources()
        quick_redelivery()
        driver.wait_for(lambda o: o.status == 200, "a turn after the endpoint is back", after=len(driver.outcomes))
    assert pending > 0, "no job was shed during the outage; the test proved nothing"
    assert_errors_were_clear(driver.outcomes, set())  # the hot path never waits for SQS
    drain(api)  # the flusher sent every job still in the outbox, and again those lost inside moto
    replay_dead_letters(api)
    assert_nothing_lost("sqs-fault", driver.acked)


def test_llm_timeouts_and_500s_are_clear_and_keep_the_message(api, llm):
    llm.script(Reply(text="late", delay=4.0), Reply.error(500), Reply.error(503), "fine again")
    seen = []
    with llm_timeout(2.0):  # the scripted reply comes after 4 s
        for i in range(4):
            r = api.post("/chat", json={"session_id": "llm-fault", "message": f"question {i} about the ferry timetable"})
            seen.append((r.status_code, r.json()))
    (s1, b1), (s2, b2), (s3, b3), (s4, b4) = seen
    assert s1 == 504 and "did not answer within 2s" in b1["error"]["message"]
    assert s2 in (500, 502) and b2["error"]["message"] and s3 in (502, 503) and b3["error"]["message"]
    assert "saved" in b1["error"]["message"]
    assert s4 == 200 and b4["response"] == "fine again"
    session = api.get("/sessions/llm-fault").json()
    # Four user messages and one reply were stored; nothing was lost or duplicated by the failures.
    assert session["total_turns"] == 1 + 4 + 1  # system prompt + questions + the one reply
