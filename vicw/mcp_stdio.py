"""`vicw mcp`: VICW's MCP tools over stdio, for local MCP clients (Claude Desktop, Cursor, ...).

A thin proxy: it serves the MCP protocol on stdin/stdout and forwards `tools/list` and
`tools/call` to a running VICW's `/mcp` endpoint (streamable HTTP) with the caller's API key, so
the tools, their validation, tenancy and rate limits are exactly the server's. Each forwarded
call is one stateless HTTP request: a VICW restarted between two calls is simply used again.

Nothing but protocol messages goes to stdout; problems are reported on stderr and, for a tool
call, as a tool error naming the VICW URL (never the key).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vicw.redaction import mask_credentials

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Target:
    url: str  # the VICW base URL, e.g. http://127.0.0.1:8000
    key: str

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + "/mcp"


def resolve_target(url: str | None, key_file: str | None) -> Target:
    """--url / $VICW_URL; the key from --key-file / $VICW_API_KEY_FILE, then $VICW_API_KEY, then the
    development key `vicw local` writes. Raises ValueError with what to do when there is no key."""
    from vicw.status import default_api_key

    base = url or os.environ.get("VICW_URL") or DEFAULT_URL
    path = key_file or os.environ.get("VICW_API_KEY_FILE")
    if path:
        try:
            key = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the API key file {path}: {exc.strerror}") from None
    else:
        key = default_api_key() or ""
    if not key:
        raise ValueError("no API key: pass --key-file, or set VICW_API_KEY_FILE or VICW_API_KEY")
    return Target(base, key)


async def serve(target: Target) -> None:
    """Serve on this process's stdin/stdout until the client closes it."""
    import httpx2
    import mcp_types as types
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server.lowlevel.server import Server
    from mcp.server.stdio import stdio_server
    from mcp.shared.exceptions import MCPError
    from mcp_types.version import LATEST_MODERN_VERSION

    from vicw.api.mcp_server import INSTRUCTIONS

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {target.key}"},
                                  timeout=httpx2.Timeout(30.0, read=120.0)) as http:

        def remote() -> Client:
            # One request per call (the server is stateless): no handshake, no session to lose.
            transport = streamable_http_client(target.endpoint, http_client=http, terminate_on_close=False)
            return Client(transport, mode=LATEST_MODERN_VERSION, cache=None)

        def failure(exc: BaseException) -> str:
            return mask_credentials(f"VICW at {target.url} could not be used: {_describe(exc)}")

        async def list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
            try:
                async with remote() as client:
                    return await client.list_tools()
            except MCPError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported to the client, which shows it
                print(failure(exc), file=sys.stderr, flush=True)
                raise MCPError(types.INTERNAL_ERROR, failure(exc)) from None

        async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            try:
                async with remote() as client:
                    return await client.call_tool(params.name, params.arguments or {})
            except MCPError as exc:
                return types.CallToolResult(content=[types.TextContent(type="text", text=exc.error.message)], is_error=True)
            except Exception as exc:  # noqa: BLE001 - the model reads this and can tell the user
                print(failure(exc), file=sys.stderr, flush=True)
                return types.CallToolResult(content=[types.TextContent(type="text", text=failure(exc))], is_error=True)

        server: Server[Any] = Server("vicw", version="0.1.0", instructions=INSTRUCTIONS,
                                     on_list_tools=list_tools, on_call_tool=call_tool)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


def _describe(exc: BaseException) -> str:
    """A one-line reason, without the key (httpx errors carry the URL, never the headers)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return "the API key was refused (HTTP 401)"
    if status == 429:
        return "rate limit exceeded (HTTP 429); retry shortly"
    if status is not None:
        return f"HTTP {status}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(url: str | None, key_file: str | None) -> int:
    import anyio

    try:
        target = resolve_target(url, key_file)
    except ValueError as exc:
        print(f"vicw mcp: {exc}", file=sys.stderr)
        return 2
    print(mask_credentials(f"vicw mcp: serving VICW's memory tools on stdio for {target.endpoint}"), file=sys.stderr, flush=True)
    anyio.run(serve, target)
    return 0
