"""The MCP endpoint under limits and outages: the HTTP API's rate limits apply to it, and a store
that is down comes back as a tool error that names it (never a traceback)."""

from __future__ import annotations

import httpx2

from tests.conftest import API_KEY, running_vicw
from vicw.local.services import free_port

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "Authorization": f"Bearer {API_KEY}"}


def tool_call(http: httpx2.Client, url: str, name: str, arguments: dict, rid: int = 1) -> httpx2.Response:
    """One stateless JSON-RPC request, as an MCP client sends it after the handshake."""
    return http.post(f"{url}/mcp", headers=HEADERS, json={
        "jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name, "arguments": arguments}})


def test_rate_limits_apply_to_mcp_requests(tmp_path, redis_url, moto_endpoint, vicw_env, redis_client):
    env = {**vicw_env, "RATE_LIMITS": "default=3/60"}
    with running_vicw(tmp_path, redis_url, moto_endpoint, env) as local, httpx2.Client(timeout=60) as http:
        answers = [tool_call(http, local.url, "get_session", {"session_id": "s1"}, rid=i) for i in range(4)]
    assert [r.status_code for r in answers[:3]] == [200, 200, 200], answers[0].text
    assert answers[0].json()["result"]["structuredContent"]["session_id"] == "s1"
    limited = answers[3]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "rate limit exceeded" in limited.json()["error"]["message"]


def test_a_store_outage_is_a_tool_error_naming_it(tmp_path, moto_endpoint, vicw_env):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**vicw_env, "RATE_LIMITS": ""}
    with running_vicw(tmp_path, dead_redis, moto_endpoint, env) as local, httpx2.Client(timeout=60) as http:
        answer = tool_call(http, local.url, "get_session", {"session_id": "s1"})
        search = tool_call(http, local.url, "search_memory", {"query": "ferrets", "session_id": "s1"})
    for r in (answer, search):
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        assert result["isError"] is True
        text = result["content"][0]["text"]
        assert "the window store (Redis) is unavailable" in text and "Traceback" not in text, text
