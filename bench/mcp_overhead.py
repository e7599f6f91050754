"""What the MCP layer costs per call, next to the HTTP route doing the same work.

Against `vicw local`'s path (API Gateway stand-in -> Mangum -> FastAPI) with real local servers,
timed at the client, interleaved in one run so the machine's noise hits both sides alike:

* `get_session` as an MCP `tools/call` (one stateless POST to /mcp, what a client sends after its
  handshake) vs `GET /sessions/{id}`;
* `add_messages` (one message) vs `POST /sessions/{id}/messages`;
* the first /mcp request of a process, which imports the MCP SDK (other routes never pay that).

    python bench/mcp_overhead.py [--calls 300] [--json out.json]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path
from bench.hot_path import local_servers, summary  # noqa: E402

KEY = "bench-mcp-key-0001"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def configure(parser) -> None:
    parser.add_argument("--calls", type=int, default=300, help="calls per operation (default 300)")


def run(args) -> dict:
    import httpx

    from vicw.local.runner import LocalVicw

    with local_servers() as env:
        os.environ.update({k: v for k, v in env.items() if k != "BENCH_TMP"} | {"VICW_API_KEYS": f"{KEY}:bench"})
        local = LocalVicw(Path(env["BENCH_TMP"]) / "vicw", port=0, redis_url=env["REDIS_URL"],
                          aws_endpoint=os.environ["AWS_ENDPOINT_URL"], cold_path=False).start()
        try:
            with httpx.Client(base_url=local.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
                def tool(name: str, arguments: dict, rid: int) -> None:
                    r = http.post("/mcp", headers=MCP_HEADERS, json={"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                                                                    "params": {"name": name, "arguments": arguments}})
                    assert r.status_code == 200 and not r.json()["result"].get("isError"), r.text

                started = time.perf_counter()
                tool("get_session", {"session_id": "bench"}, 0)
                first_ms = (time.perf_counter() - started) * 1000
                times: dict[str, list[float]] = {k: [] for k in ("http_get", "mcp_get", "http_append", "mcp_append")}
                for i in range(args.calls):
                    msg = [{"role": "user", "content": f"turn {i}: the shipment left on Tuesday with {i % 97} pallets."}]
                    steps = {
                        "http_get": lambda: http.get("/sessions/bench").raise_for_status(),
                        "mcp_get": lambda: tool("get_session", {"session_id": "bench"}, i + 1),
                        "http_append": lambda: http.post("/sessions/bench/messages", json={"messages": msg}).raise_for_status(),
                        "mcp_append": lambda: tool("add_messages", {"session_id": "bench", "messages": msg}, i + 1),
                    }
                    for name, step in steps.items():
                        t0 = time.perf_counter()
                        step()
                        times[name].append((time.perf_counter() - t0) * 1000)
        finally:
            local.stop()
    out = {name: summary(values) for name, values in times.items()}
    out["first_mcp_request_ms"] = round(first_ms, 1)
    out["ratio_get_p50"] = round(out["mcp_get"]["p50"] / out["http_get"]["p50"], 2)
    out["ratio_append_p50"] = round(out["mcp_append"]["p50"] / out["http_append"]["p50"], 2)
    return out


def markdown(data: dict) -> str:
    rows = ["| Operation | p50 ms | p95 ms | n |", "|---|---|---|---|"]
    for name, label in (("http_get", "GET /sessions/{id}"), ("mcp_get", "MCP get_session"),
                        ("http_append", "POST /sessions/{id}/messages"), ("mcp_append", "MCP add_messages")):
        s = data[name]
        rows.append(f"| {label} | {s['p50']} | {s['p95']} | {s['n']} |")
    rows.append("")
    rows.append(f"MCP / HTTP at p50: get {data['ratio_get_p50']}x, append {data['ratio_append_p50']}x; "
                f"first /mcp request of the process (imports the SDK): {data['first_mcp_request_ms']} ms")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(bench_cli(__doc__, configure, run, markdown))
