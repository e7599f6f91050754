"""JSON request bodies that every layer behind the edge can handle.

JSON may carry `\\ud800`-style escapes (or raw UTF-8 encoded surrogates, which `json.loads` lets
through) that decode to lone UTF-16 surrogates: Python strings that cannot be encoded as UTF-8.
Left in, they break whatever encodes text next — tiktoken, Redis, the JSON response — as a 500.
Every route's body is therefore checked once, right after parsing, wherever a string sits (keys
included, in fields the models ignore too): a lone surrogate is a 422 naming its location.
Proper surrogate pairs (`\\ud83d\\ude00`) decode to one character and are ordinary text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

_SURROGATE = re.compile("[\ud800-\udfff]")


def find_lone_surrogate(value: Any) -> str | None:
    """The dotted location of the first string (or key) holding a lone surrogate, else None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # iterative: parsed JSON can be nested as deep as json.loads allows
        where, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{where}.{key}" if where else str(key)
                if _SURROGATE.search(key):
                    return f"{where or 'body'} (a key)"
                stack.append((path, child))
        elif isinstance(item, list):
            stack.extend((f"{where}.{i}" if where else str(i), child) for i, child in enumerate(item))
    return None


class CheckedJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            parsed = json.loads(await self.body())
            where = find_lone_surrogate(parsed)
            if where is not None:
                safe = where.encode("utf-8", "backslashreplace").decode()
                raise HTTPException(
                    422, f"invalid request: {safe}: text contains a lone UTF-16 surrogate (not valid Unicode); "
                         "send UTF-8 text, or escape characters outside the BMP as surrogate pairs")
            self._json = parsed
        return self._json


class CheckedJSONRoute(APIRoute):
    """An APIRoute whose handlers read the body through CheckedJSONRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(CheckedJSONRequest(request.scope, request.receive))

        return checked
