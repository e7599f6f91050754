"""The MCP server, with the SDK's own client over real HTTP against an in-process `vicw local`
(requests go through the API Gateway stand-in and the chat Lambda handler, Mangum included), and
through `vicw mcp` (stdio) in a subprocess. The cold path runs: 300 turns are appended, shed,
embedded into Qdrant and extracted into FalkorDB before the searches.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx2
import pytest
import redis
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import API_KEY, API_KEY_B, running_vicw, wait_until
from tests.integration.test_forget import footprint, graph_query
from vicw import container
from vicw.aws import client as aws_client

T = TypeVar("T")

TOOLS = {"search_memory", "get_context", "add_messages", "get_session", "list_state", "forget_session"}
FACT = "My sister Ottilie keeps three ferrets named Pip, Mango and Sergeant in Reykjavik."
ENV = {"MAX_CONTEXT_TOKENS": "1024", "LLM_MAX_TOKENS": "128", "COLD_PATH_WORKERS": "1", "COLD_PATH_BATCH_SIZE": "10"}


def filler(i: int) -> str:
    topics = ["the weather forecast", "a recipe for lentil soup", "train timetables", "a chess opening",
              "gardening tips for tomatoes", "the history of lighthouses", "a jazz record", "saving for a bike"]
    return f"Turn {i}: let us talk about {topics[i % len(topics)]} for a while, detail number {i * 7}."


def conversation(n: int = 300) -> list[dict]:
    said = [
        {"role": "user", "content": FACT, "name": "Dana", "timestamp": "2024-03-02T09:15:00Z"},
        {"role": "user", "content": "I decided to book the venue in Lisbon by Friday.", "name": "Dana"},
        {"role": "user", "content": "My goal is to run the Lisbon marathon in April.", "name": "Dana"},
        {"role": "user", "content": "I need to renew my passport before the trip.", "name": "Dana"},
        {"role": "user", "content": "I finished renewing my passport.", "name": "Dana"},
    ]
    return said + [{"role": "user" if i % 2 else "assistant", "content": filler(i)} for i in range(len(said), n)]


# --- the SDK's client -------------------------------------------------------------------------------
@asynccontextmanager
async def http_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0)) as http:
        async with streamable_http_client(f"{url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def stdio_session(url: str, key_file) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "vicw.cli", "mcp", "--url", url, "--key-file", str(key_file)])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def over_http(url: str, key: str | None, work: Callable[[ClientSession], Awaitable[T]]) -> T:
    async def run() -> T:
        async with http_session(url, key) as session:
            return await work(session)

    return asyncio.run(run())


def call(url: str, key: str, tool: str, **arguments: Any):
    return over_http(url, key, lambda session: session.call_tool(tool, arguments))


def innermost(exc: BaseException) -> BaseException:
    """The error inside the task groups the SDK's client raises it through."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def ok(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result) -> str:
    assert result.is_error, result.structured_content
    text = " ".join(c.text for c in result.content)
    assert "Traceback" not in text and 'File "' not in text, text
    return text


# --- one VICW with its cold path, and a drained 300-turn session -------------------------------------
@pytest.fixture(scope="module")
def cold(tmp_path_factory, redis_url, moto_endpoint, vicw_env, scripted_llm):
    from vicw.aws_resources import ensure_local_resources

    redis.Redis.from_url(redis_url).flushdb()
    resources = ensure_local_resources()
    for name in ("OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL"):  # jobs left by other tests' hot-path-only runs
        aws_client("sqs").purge_queue(QueueUrl=resources[name])
    scripted_llm.reset()
    with running_vicw(tmp_path_factory.mktemp("mcp"), redis_url, moto_endpoint, {**vicw_env, **ENV}, cold_path=True) as local:
        yield local


def wait_stored(tenant: str, session_id: str, stats: dict, timeout: float = 240) -> None:
    """Until every shed turn is in Qdrant and in the graph, and nothing waits in the outbox."""
    def stored() -> dict | None:
        fp = footprint(container.window_store().r, tenant, session_id)
        turns = graph_query("MATCH (t:Turn {tenant: $t, session_id: $s}) RETURN count(t)", {"t": tenant, "s": session_id})
        done = fp["vectors"] >= stats["offloaded_turns"] and turns == stats["offloaded_turns"] and fp["outbox"] == 0
        return fp if done else None

    wait_until(stored, timeout, every=1.0, what=f"{session_id}'s shed turns stored")


@pytest.fixture(scope="module")
def seeded(cold) -> dict:
    """tenant-a's session "apollo": 300 turns appended through MCP, the shed ones stored."""
    turns = conversation()
    for i in range(0, len(turns), 100):
        appended = ok(call(cold.url, API_KEY, "add_messages", session_id="apollo", messages=turns[i : i + 100]))
        assert appended["appended"] == 100
    stats = ok(call(cold.url, API_KEY, "get_session", session_id="apollo"))
    assert stats["total_turns"] >= 300 and stats["offloaded_turns"] > 250 and stats["tokens"] <= stats["budget"]
    wait_stored("tenant-a", "apollo", stats)
    return stats


# --- the tests ------------------------------------------------------------------------------------------
def test_lists_the_tools_with_the_http_api_schemas(cold):
    tools = {t.name: t for t in over_http(cold.url, API_KEY, lambda s: s.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 120, tool.name  # written for a model to use well
    message = tools["add_messages"].input_schema
    assert message["required"] == ["session_id", "messages"]
    roles = str(message)  # the MessageIn schema of POST /sessions/{id}/messages
    assert all(r in roles for r in ("system", "user", "assistant", "tool")) and "additionalProperties" in roles
    assert tools["get_session"].input_schema["properties"]["session_id"]["pattern"] == "^[A-Za-z0-9._-]{1,128}$"
    assert tools["forget_session"].annotations.destructive_hint is True
    assert tools["search_memory"].annotations.read_only_hint is True


def test_search_memory_finds_an_offloaded_fact(cold, seeded):
    found = ok(call(cold.url, API_KEY, "search_memory", query="Where does Ottilie keep her ferrets?", session_id="apollo", limit=5))
    top = found["memories"]
    assert top and any("Ottilie" in m["text"] for m in top[:3]), top
    fact = next(m for m in top if "Ottilie" in m["text"])
    assert fact["speaker"] == "Dana" and fact["date"].startswith("2024-03-02") and fact["score"] > 0 and fact["source"]
    assert fact["session_id"] == "apollo" and fact["id"]
    assert len(top) <= 5
    # Without a session: every session of the tenant.
    anywhere = ok(call(cold.url, API_KEY, "search_memory", query="Ottilie's ferrets in Reykjavik"))
    assert any("Ottilie" in m["text"] and m["session_id"] == "apollo" for m in anywhere["memories"]), anywhere


def test_get_context_and_list_state(cold, seeded):
    ctx = ok(call(cold.url, API_KEY, "get_context", session_id="apollo", query="How many ferrets does Ottilie keep?"))
    assert ctx["prompt_tokens"] <= ctx["budget"]
    assert ctx["messages"][-1] == {"role": "user", "content": "How many ferrets does Ottilie keep?"}
    assert any("Ottilie" in m["content"] and "<memories>" in m["content"] for m in ctx["messages"][:-1]), ctx["messages"]
    after = ok(call(cold.url, API_KEY, "get_session", session_id="apollo"))
    assert after["total_turns"] == seeded["total_turns"]  # a preview stores nothing

    state = ok(call(cold.url, API_KEY, "list_state", session_id="apollo"))
    active = {(i["kind"], i["text"]) for i in state["active"]}
    assert ("decision", "I decided to book the venue in Lisbon by Friday") in active, state
    assert ("goal", "My goal is to run the Lisbon marathon in April") in active, state
    assert [i["kind"] for i in state["completed"]] == ["task"] and "passport" in state["completed"][0]["text"]


def test_another_tenant_finds_nothing(cold, seeded):
    for args in ({"session_id": "apollo"}, {}):
        other = ok(call(cold.url, API_KEY_B, "search_memory", query="Where does Ottilie keep her ferrets?", **args))
        assert other["memories"] == [], other
    assert ok(call(cold.url, API_KEY_B, "get_session", session_id="apollo"))["total_turns"] == 0
    state = ok(call(cold.url, API_KEY_B, "list_state", session_id="apollo"))
    assert state["active"] == [] and state["completed"] == []
    ctx = ok(call(cold.url, API_KEY_B, "get_context", session_id="apollo", query="Where does Ottilie keep her ferrets?"))
    assert "Ottilie" not in str(ctx["messages"][:-1])
    # Forgetting "apollo" as tenant-b touches nothing of tenant-a's.
    before = footprint(container.window_store().r, "tenant-a", "apollo")
    receipt = ok(call(cold.url, API_KEY_B, "forget_session", session_id="apollo"))
    assert receipt["tenant"] == "tenant-b" and receipt["deleted"]["vectors"] == 0
    assert footprint(container.window_store().r, "tenant-a", "apollo") == before


@pytest.mark.parametrize("key", [None, "not-a-known-key-123", "Basic abc"])
def test_a_bad_key_is_refused(cold, key):
    with pytest.raises(BaseException) as refused:
        over_http(cold.url, key, lambda s: s.list_tools())
    error = innermost(refused.value)
    assert isinstance(error, MCPError) and any(w in str(error) for w in ("API key", "Authorization")), error
    with httpx2.Client(timeout=30) as http:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        raw = http.post(f"{cold.url}/mcp", headers=headers,
                        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                              "params": {"name": "get_session", "arguments": {"session_id": "apollo"}}})
    assert raw.status_code == 401 and raw.headers["www-authenticate"] == "Bearer"
    assert raw.json()["error"]["message"] and "apollo" not in raw.text


def test_bad_input_is_a_tool_error_with_a_clear_message(cold):
    bad_role = error_text(call(cold.url, API_KEY, "add_messages", session_id="x1", messages=[{"role": "wizard", "content": "hi"}]))
    assert "role" in bad_role
    too_long = "a" * (container.settings().max_message_chars + 1)
    assert "MAX_MESSAGE_CHARS" in error_text(
        call(cold.url, API_KEY, "add_messages", session_id="x1", messages=[{"role": "user", "content": too_long}])
    )
    assert "session_id" in error_text(call(cold.url, API_KEY, "get_session", session_id="../etc"))
    assert "limit" in error_text(call(cold.url, API_KEY, "search_memory", query="ferrets", limit=500))
    assert "query" in error_text(call(cold.url, API_KEY, "search_memory", query="   "))
    extra = error_text(call(cold.url, API_KEY, "add_messages", session_id="x1", messages=[{"role": "user", "content": "hi", "sudo": True}]))
    assert "sudo" in extra
    assert ok(call(cold.url, API_KEY, "get_session", session_id="x1"))["total_turns"] == 0  # nothing half-stored


def test_stdio_transport(cold, seeded, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY + "\n")

    async def run() -> None:
        async with stdio_session(cold.url, key_file) as session:
            assert {t.name for t in (await session.list_tools()).tools} == TOOLS
            question = {"query": "Where does Ottilie keep her ferrets?", "session_id": "apollo"}
            found = await session.call_tool("search_memory", question)
            assert not found.is_error and any("Ottilie" in m["text"] for m in found.structured_content["memories"])
            bad = await session.call_tool("get_session", {"session_id": "no spaces allowed"})
            assert bad.is_error and "session_id" in bad.content[0].text

    asyncio.run(run())

    key_file.write_text(API_KEY_B)

    async def other_tenant() -> None:
        async with stdio_session(cold.url, key_file) as session:
            found = await session.call_tool("search_memory", {"query": "Where does Ottilie keep her ferrets?"})
            assert not found.is_error and found.structured_content["memories"] == []

    asyncio.run(other_tenant())

    key_file.write_text("not-a-known-key-123")

    async def refused() -> None:
        async with stdio_session(cold.url, key_file) as session:
            result = await session.call_tool("get_session", {"session_id": "apollo"})
            assert result.is_error and "invalid API key" in result.content[0].text, result.content
            assert "not-a-known-key" not in result.content[0].text

    asyncio.run(refused())


def test_forget_session_empties_every_store(cold):
    turns = conversation(40)
    ok(call(cold.url, API_KEY, "add_messages", session_id="doomed", messages=turns))
    stats = ok(call(cold.url, API_KEY, "get_session", session_id="doomed"))
    assert stats["offloaded_turns"] > 0
    wait_stored("tenant-a", "doomed", stats)
    rds = container.window_store().r
    before = footprint(rds, "tenant-a", "doomed")
    assert all(before[s] > 0 for s in ("redis", "vectors", "graph")), before

    receipt = ok(call(cold.url, API_KEY, "forget_session", session_id="doomed"))
    assert receipt["session_id"] == "doomed" and receipt["deleted"]["vectors"] == before["vectors"]
    assert footprint(rds, "tenant-a", "doomed") == {"redis": 0, "vectors": 0, "graph": 0, "archive": 0, "outbox": 0}
    gone = ok(call(cold.url, API_KEY, "search_memory", query="Where does Ottilie keep her ferrets?", session_id="doomed"))
    assert gone["memories"] == []
    assert ok(call(cold.url, API_KEY, "get_session", session_id="doomed"))["total_turns"] == 0
